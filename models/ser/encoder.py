"""The from-scratch SER model: a small conv + self-attention encoder over speaker-normalised frames,
attentive statistics pooling, and the utterance's relative prosody joined in before the classifier.

Inputs are the NumPy features of :mod:`callqa.models.ser.features` (so the exported graph and the
runtime share one feature code path): frames (batch, time, frame_dim), their lengths, and the
utterance stats vector (batch, stats_dim); with ``context_rounds`` > 0 also the speaker's call context
(:mod:`callqa.models.ser.context`): the window's stats, pair offsets and peer mask, and each batch
turn's index in the window. Output: (batch, n_classes) logits.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import torch
from torch import nn

from callqa.data.constants import EMOTIONS
from callqa.models.blocks import AttentionBlock, length_mask
from callqa.models.ser.context import CallContext
from callqa.models.ser.features import PAIR_DIM, FeatureConfig


@dataclass
class SerEncoderConfig:
    frame_dim: int = FeatureConfig().frame_dim
    stats_dim: int = FeatureConfig().stats_dim
    n_classes: int = len(EMOTIONS)
    channels: int = 96
    kernel_size: int = 5
    conv_layers: int = 3
    attention_heads: int = 4
    attention_layers: int = 1
    stats_hidden: int = 64
    dropout: float = 0.2
    #: rounds of message passing between one speaker's turns (0: each turn judged alone)
    context_rounds: int = 0
    context_dim: int = 128
    #: mean and std of the stats vector over train (filled by the training module), applied inside
    stats_norm: list[list[float]] = field(default_factory=list)
    #: standard deviation of each pair offset over train (filled like ``stats_norm``)
    pair_scale: list[float] = field(default_factory=list)

    def to_dict(self) -> dict:
        return asdict(self)


class AttentiveStatsPooling(nn.Module):
    """Attention-weighted mean and standard deviation over valid frames (Okabe et al., 2018)."""

    def __init__(self, dim: int, hidden: int = 64):
        super().__init__()
        self.score = nn.Sequential(nn.Linear(dim, hidden), nn.Tanh(), nn.Linear(hidden, 1))

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        w = self.score(x).squeeze(-1).masked_fill(~mask, -1e4).softmax(dim=1)[..., None]
        mean = (w * x).sum(dim=1)
        var = (w * (x - mean[:, None]) ** 2).sum(dim=1)
        return torch.cat([mean, torch.sqrt(var.clamp(min=1e-6))], dim=-1)


class ConvBlock(nn.Module):
    def __init__(self, cin: int, cout: int, k: int, dropout: float):
        super().__init__()
        self.conv = nn.Conv1d(cin, cout, k, padding=k // 2)
        self.norm = nn.GroupNorm(1, cout)
        self.drop = nn.Dropout(dropout)
        self.skip = nn.Identity() if cin == cout else nn.Conv1d(cin, cout, 1)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        y = self.drop(nn.functional.gelu(self.norm(self.conv(x))))
        return (self.skip(x) + y) * mask[:, None, :]


class SerEncoder(nn.Module):
    """(frames (B, T, F), lengths (B,), stats (B, S)) -> logits (B, n_classes)."""

    input_kind = "features"

    def __init__(self, cfg: SerEncoderConfig):
        super().__init__()
        self.cfg = cfg
        mean, std = cfg.stats_norm or [[0.0] * cfg.stats_dim, [1.0] * cfg.stats_dim]
        self.register_buffer("stats_mean", torch.tensor(mean, dtype=torch.float32))
        self.register_buffer("stats_std", torch.tensor(std, dtype=torch.float32))
        # rebuilt from the config, so checkpoints of models without call context load as they were saved
        scale = torch.tensor(cfg.pair_scale or [1.0] * PAIR_DIM, dtype=torch.float32)
        self.register_buffer("pair_scale", scale, persistent=False)
        c = cfg.channels
        self.inp = nn.Sequential(nn.Linear(cfg.frame_dim, c), nn.GELU())
        # two stride-2 convolutions: 40 ms steps, a sixteenth of the attention cost of 10 ms frames
        self.down = nn.ModuleList(nn.Conv1d(c, c, 3, stride=2, padding=1) for _ in range(2))
        self.convs = nn.ModuleList(
            ConvBlock(c, c, cfg.kernel_size, cfg.dropout) for _ in range(cfg.conv_layers)
        )
        self.attn = nn.ModuleList(
            AttentionBlock(c, cfg.attention_heads, cfg.dropout) for _ in range(cfg.attention_layers)
        )
        self.pool = AttentiveStatsPooling(c)
        self.stats_mlp = nn.Sequential(
            nn.Linear(cfg.stats_dim, cfg.stats_hidden), nn.GELU(), nn.Dropout(cfg.dropout)
        )
        self.context = None
        if cfg.context_rounds > 0:
            self.context = CallContext(
                cfg.stats_dim, PAIR_DIM, cfg.context_dim, cfg.attention_heads, cfg.context_rounds, cfg.dropout
            )
        context_dim = cfg.context_dim if self.context is not None else 0
        self.head = nn.Sequential(
            nn.Linear(2 * c + cfg.stats_hidden + context_dim, 128),
            nn.GELU(),
            nn.Dropout(cfg.dropout),
            nn.Linear(128, cfg.n_classes),
        )

    def set_stats_norm(self, norm: list[list[float]]) -> None:
        self.cfg.stats_norm = norm
        self.stats_mean.copy_(torch.tensor(norm[0]))
        self.stats_std.copy_(torch.tensor(norm[1]))

    def set_pair_scale(self, scale: list[float]) -> None:
        self.cfg.pair_scale = scale
        self.pair_scale.copy_(torch.tensor(scale))

    def forward(
        self,
        frames: torch.Tensor,
        lengths: torch.Tensor,
        stats: torch.Tensor,
        peer_stats: torch.Tensor | None = None,
        peer_pairs: torch.Tensor | None = None,
        peer_mask: torch.Tensor | None = None,
        index: torch.Tensor | None = None,
    ) -> torch.Tensor:
        x = self.inp(frames).transpose(1, 2)
        for down in self.down:
            x = nn.functional.gelu(down(x))
            lengths = torch.div(lengths + 1, 2, rounding_mode="floor")
        mask = length_mask(lengths, x.shape[2])
        x = x * mask[:, None, :]
        for conv in self.convs:
            x = conv(x, mask)
        x = x.transpose(1, 2)
        for block in self.attn:
            x = block(x, mask)
        s = self.stats_mlp((stats - self.stats_mean) / self.stats_std)
        parts = [self.pool(x, mask), s]
        if self.context is not None:
            if peer_stats is None or peer_pairs is None or peer_mask is None or index is None:
                raise ValueError("this SER model judges turns in their call context: give the peer inputs")
            peers = (peer_stats - self.stats_mean) / self.stats_std
            parts.append(self.context(peers, peer_pairs / self.pair_scale, peer_mask, index))
        return self.head(torch.cat(parts, dim=-1))
