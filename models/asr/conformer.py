"""Conformer-CTC for Chinese characters: log-mel front-end, convolutional subsampling, Conformer blocks
(encoder.py), and a linear CTC head.

The whole path from waveform to log-probabilities is one module, so export gives a self-contained ONNX
graph. SpecAugment lives here too, active only in training mode, so it never reaches an exported model.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import torch
from torch import nn

from callqa.models.asr.encoder import ConformerEncoder, padding_mask
from callqa.models.asr.frontend import FrontendConfig, LogMelFrontend


@dataclass
class SpecAugmentConfig:
    freq_masks: int = 2
    freq_width: int = 8
    time_masks: int = 2
    time_width: float = 0.05  # fraction of the utterance, so short turns are not wiped out


@dataclass
class ConformerCTCConfig:
    vocab_size: int = 0  # set from the tokenizer
    frontend: FrontendConfig = field(default_factory=FrontendConfig)
    subsampling: int = 4  # 4 or 8: each factor of 2 is one stride-2 convolution
    d_model: int = 144
    num_heads: int = 4
    ffn_dim: int = 576
    num_layers: int = 6
    kernel_size: int = 15
    dropout: float = 0.1
    specaugment: SpecAugmentConfig = field(default_factory=SpecAugmentConfig)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ConformerCTCConfig:
        d = dict(d)
        d["frontend"] = FrontendConfig(**d.get("frontend", {}))
        d["specaugment"] = SpecAugmentConfig(**d.get("specaugment", {}))
        return cls(**d)


class ConvSubsampling(nn.Module):
    """Stride-2 3x3 convolutions over (time, mel): each halves the frame rate the Conformer attends over."""

    def __init__(self, n_mels: int, d_model: int, factor: int):
        super().__init__()
        if factor not in (4, 8):
            raise ValueError(f"subsampling must be 4 or 8, got {factor}")
        self.layers = factor.bit_length() - 1
        convs: list[nn.Module] = []
        freq, channels = n_mels, 1
        for _ in range(self.layers):
            convs += [nn.Conv2d(channels, d_model, kernel_size=3, stride=2), nn.ReLU()]
            freq, channels = (freq - 3) // 2 + 1, d_model
        self.conv = nn.Sequential(*convs)
        self.out = nn.Linear(d_model * freq, d_model)

    def forward(self, x: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = self.conv(x[:, None])  # (B, C, T', F')
        b, c, t, f = x.shape
        x = self.out(x.permute(0, 2, 1, 3).reshape(b, t, c * f))
        for _ in range(self.layers):
            lengths = (lengths - 3) // 2 + 1
        return x, torch.clamp(lengths, min=0)


def spec_augment(feats: torch.Tensor, cfg: SpecAugmentConfig) -> torch.Tensor:
    """Zero random mel bands and time stretches of each utterance (Park et al., 2019)."""
    b, t, f = feats.shape
    out = feats.clone()
    dev = feats.device
    for _ in range(cfg.freq_masks):
        width = torch.randint(0, cfg.freq_width + 1, (b, 1), device=dev)
        start = (torch.rand(b, 1, device=dev) * (f - width).clamp(min=1)).long()
        band = torch.arange(f, device=dev)[None, :]
        out = out.masked_fill(((band >= start) & (band < start + width))[:, None, :], 0.0)
    for _ in range(cfg.time_masks):
        width = (torch.rand(b, 1, device=dev) * cfg.time_width * t).long()
        start = (torch.rand(b, 1, device=dev) * (t - width).clamp(min=1)).long()
        steps = torch.arange(t, device=dev)[None, :]
        out = out.masked_fill(((steps >= start) & (steps < start + width))[:, :, None], 0.0)
    return out


def _zero_padding(x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """Zero the frames past each utterance's end, so that what a batch is padded with cannot leak into
    the subsampling convolutions."""
    return x.masked_fill(padding_mask(lengths, x.shape[1])[:, :, None], 0.0)


class ConformerCTC(nn.Module):
    """(batch, samples) 8 kHz waveform + lengths -> (batch, frames, vocab) CTC log-probabilities."""

    def __init__(self, cfg: ConformerCTCConfig):
        super().__init__()
        if cfg.vocab_size < 3:
            raise ValueError("vocab_size must include blank, unk and at least one character")
        self.cfg = cfg
        self.frontend = LogMelFrontend(cfg.frontend)
        self.subsample = ConvSubsampling(cfg.frontend.n_mels, cfg.d_model, cfg.subsampling)
        self.encoder = ConformerEncoder(
            cfg.d_model, cfg.num_heads, cfg.ffn_dim, cfg.num_layers, cfg.kernel_size, cfg.dropout
        )
        self.head = nn.Linear(cfg.d_model, cfg.vocab_size)

    def forward(self, wave: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        feats, lengths = self.frontend(wave, lengths)
        if self.training:
            feats = spec_augment(feats, self.cfg.specaugment)
        x, lengths = self.subsample(_zero_padding(feats, lengths), lengths)
        x = self.encoder(x, lengths)
        return self.head(x).log_softmax(dim=-1), lengths

    @property
    def min_samples(self) -> int:
        """Shortest input that still yields output frames after subsampling."""
        return self.cfg.frontend.n_fft * 8

    def features(self) -> dict[str, Any]:
        fe = self.cfg.frontend
        return {
            "type": "log-mel",
            "n_mels": fe.n_mels,
            "n_fft": fe.n_fft,
            "win_length": fe.win_length,
            "hop_length": fe.hop_length,
        }

    def num_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters())
