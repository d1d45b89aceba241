"""Log-mel features computed inside the model, so an exported ONNX file takes raw 8 kHz audio.

The short-time Fourier transform is a strided 1-D convolution with fixed cosine/sine kernels: every op
exports to ONNX and runs the same in onnxruntime, and the mel matrix, window and normalisation
statistics travel as buffers in the checkpoint and the ONNX file.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torchaudio
from torch import nn

from callqa.data.constants import SAMPLE_RATE


@dataclass
class FrontendConfig:
    sample_rate: int = SAMPLE_RATE
    n_fft: int = 256  # 32 ms at 8 kHz
    win_length: int = 200  # 25 ms
    hop_length: int = 80  # 10 ms
    n_mels: int = 40
    f_min: float = 20.0
    f_max: float | None = None  # Nyquist when None


class LogMelFrontend(nn.Module):
    """(batch, samples) waveform -> (batch, frames, n_mels) normalised log-mel, with frame counts."""

    def __init__(self, cfg: FrontendConfig):
        super().__init__()
        self.cfg = cfg
        n_freq = cfg.n_fft // 2 + 1
        window = torch.zeros(cfg.n_fft)
        start = (cfg.n_fft - cfg.win_length) // 2
        window[start : start + cfg.win_length] = torch.hann_window(cfg.win_length, periodic=True)
        k = torch.arange(n_freq, dtype=torch.float64)[:, None]
        n = torch.arange(cfg.n_fft, dtype=torch.float64)[None, :]
        angle = 2 * math.pi * k * n / cfg.n_fft
        basis = torch.cat([torch.cos(angle), -torch.sin(angle)]) * window.double()
        self.register_buffer("basis", basis.float()[:, None, :], persistent=False)
        fb = torchaudio.functional.melscale_fbanks(
            n_freq, cfg.f_min, cfg.f_max or cfg.sample_rate / 2, cfg.n_mels, cfg.sample_rate, mel_scale="htk"
        )
        self.register_buffer("mel", fb, persistent=False)
        # Global mean/variance normalisation, estimated on training data (see set_normalization).
        self.register_buffer("mean", torch.zeros(cfg.n_mels))
        self.register_buffer("inv_std", torch.ones(cfg.n_mels))

    def frames(self, lengths: torch.Tensor) -> torch.Tensor:
        return torch.clamp((lengths - self.cfg.n_fft) // self.cfg.hop_length + 1, min=0)

    def log_mel(self, wave: torch.Tensor) -> torch.Tensor:
        spec = nn.functional.conv1d(wave[:, None, :], self.basis, stride=self.cfg.hop_length)
        re, im = spec.chunk(2, dim=1)
        power = (re * re + im * im).transpose(1, 2)
        return torch.log(power @ self.mel + 1e-6)

    def forward(self, wave: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return (self.log_mel(wave) - self.mean) * self.inv_std, self.frames(lengths)

    @torch.no_grad()
    def set_normalization(self, waves: list[torch.Tensor]) -> None:
        """Estimate the global mean and standard deviation from a sample of training audio."""
        feats = torch.cat([self.log_mel(w[None, :])[0] for w in waves if len(w) >= self.cfg.n_fft])
        self.mean.copy_(feats.mean(dim=0))
        self.inv_std.copy_(1.0 / feats.std(dim=0).clamp(min=1e-3))
