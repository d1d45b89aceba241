"""Conformer encoder blocks (Gulati et al., 2020) that keep padded frames out of every computation.

torchaudio's Conformer masks attention but not its convolution module, so the zeros a batch is padded
with leak into the last frames of shorter utterances and, through attention in the next layer, into
all of them: the same call would score differently depending on what it was batched with. Here the
depthwise convolution sees zeros past each utterance's end, and normalisation is per frame (LayerNorm,
not BatchNorm), so an utterance's output is the same alone or in any batch.
"""

from __future__ import annotations

import torch
from torch import nn


def padding_mask(lengths: torch.Tensor, frames: int) -> torch.Tensor:
    """(batch, frames) bool, True where a frame is padding."""
    return torch.arange(frames, device=lengths.device)[None, :] >= lengths[:, None]


class FeedForward(nn.Module):
    def __init__(self, d_model: int, ffn_dim: int, dropout: float):
        super().__init__()
        self.net = nn.Sequential(
            nn.LayerNorm(d_model),
            nn.Linear(d_model, ffn_dim),
            nn.SiLU(),
            nn.Dropout(dropout),
            nn.Linear(ffn_dim, d_model),
            nn.Dropout(dropout),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class ConvModule(nn.Module):
    """Pointwise conv + GLU, masked depthwise conv over time, LayerNorm, SiLU, pointwise conv."""

    def __init__(self, d_model: int, kernel_size: int, dropout: float):
        super().__init__()
        if kernel_size % 2 == 0:
            raise ValueError(f"kernel_size must be odd, got {kernel_size}")
        self.norm = nn.LayerNorm(d_model)
        self.pointwise_in = nn.Conv1d(d_model, 2 * d_model, 1)
        self.depthwise = nn.Conv1d(d_model, d_model, kernel_size, padding=kernel_size // 2, groups=d_model)
        self.depth_norm = nn.LayerNorm(d_model)
        self.pointwise_out = nn.Conv1d(d_model, d_model, 1)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor, pad: torch.Tensor) -> torch.Tensor:
        y = nn.functional.glu(self.pointwise_in(self.norm(x).transpose(1, 2)), dim=1)
        y = self.depthwise(y.masked_fill(pad[:, None, :], 0.0))
        y = nn.functional.silu(self.depth_norm(y.transpose(1, 2))).transpose(1, 2)
        return self.dropout(self.pointwise_out(y).transpose(1, 2))


class ConformerBlock(nn.Module):
    """Half-step FFN, self-attention, convolution, half-step FFN, final LayerNorm."""

    def __init__(self, d_model: int, num_heads: int, ffn_dim: int, kernel_size: int, dropout: float):
        super().__init__()
        self.ff1 = FeedForward(d_model, ffn_dim, dropout)
        self.attn_norm = nn.LayerNorm(d_model)
        self.attn = nn.MultiheadAttention(d_model, num_heads, dropout=dropout, batch_first=True)
        self.attn_dropout = nn.Dropout(dropout)
        self.conv = ConvModule(d_model, kernel_size, dropout)
        self.ff2 = FeedForward(d_model, ffn_dim, dropout)
        self.out_norm = nn.LayerNorm(d_model)

    def forward(self, x: torch.Tensor, pad: torch.Tensor) -> torch.Tensor:
        x = x + 0.5 * self.ff1(x)
        q = self.attn_norm(x)
        x = x + self.attn_dropout(self.attn(q, q, q, key_padding_mask=pad, need_weights=False)[0])
        x = x + self.conv(x, pad)
        x = x + 0.5 * self.ff2(x)
        return self.out_norm(x)


class ConformerEncoder(nn.Module):
    def __init__(
        self, d_model: int, num_heads: int, ffn_dim: int, num_layers: int, kernel_size: int, dropout: float
    ):
        super().__init__()
        self.layers = nn.ModuleList(
            ConformerBlock(d_model, num_heads, ffn_dim, kernel_size, dropout) for _ in range(num_layers)
        )

    def forward(self, x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        pad = padding_mask(lengths, x.shape[1])
        for layer in self.layers:
            x = layer(x, pad)
        return x.masked_fill(pad[:, :, None], 0.0)
