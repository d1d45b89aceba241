"""Layers shared by the models: a padding mask from lengths and a pre-norm self-attention block written
with plain matmuls, so every model built from them exports to ONNX the same way."""

from __future__ import annotations

import torch
from torch import nn


def length_mask(lengths: torch.Tensor, t: int) -> torch.Tensor:
    return torch.arange(t, device=lengths.device)[None, :] < lengths[:, None]


class AttentionBlock(nn.Module):
    """Pre-norm multi-head self-attention + feed-forward, padding masked (own einsum, so it exports)."""

    def __init__(self, dim: int, heads: int, dropout: float):
        super().__init__()
        self.heads = heads
        self.norm1, self.norm2 = nn.LayerNorm(dim), nn.LayerNorm(dim)
        self.qkv, self.out = nn.Linear(dim, 3 * dim), nn.Linear(dim, dim)
        self.ff = nn.Sequential(
            nn.Linear(dim, 2 * dim), nn.GELU(), nn.Dropout(dropout), nn.Linear(2 * dim, dim)
        )
        self.drop = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        b, t, d = x.shape
        q, k, v = self.qkv(self.norm1(x)).chunk(3, dim=-1)
        h = self.heads
        q, k, v = (z.reshape(b, t, h, d // h).transpose(1, 2) for z in (q, k, v))
        scores = q @ k.transpose(-1, -2) / (d // h) ** 0.5
        scores = scores.masked_fill(~mask[:, None, None, :], -1e4)
        att = (scores.softmax(dim=-1) @ v).transpose(1, 2).reshape(b, t, d)
        x = x + self.drop(self.out(att))
        return (x + self.drop(self.ff(self.norm2(x)))) * mask[..., None]
