"""A SER head on a pretrained self-supervised encoder (wav2vec2 / HuBERT) from a local folder.

8 kHz in, upsampled inside to the encoder's rate (as :mod:`callqa.models.asr.hf_ctc` does), hidden
states pooled with attentive statistics, and the same speaker-relative prosody vector as the
from-scratch model joined in before the classifier: what an SSL encoder hears in one turn says little
about how that turn differs from the speaker's others. The Hugging Face config is kept so that export
rebuilds the architecture without the original folder.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import torch
from torch import nn
from transformers import AutoConfig, AutoModel

from callqa.data.constants import EMOTIONS, SAMPLE_RATE
from callqa.models.asr.hf_ctc import Upsample
from callqa.models.blocks import length_mask
from callqa.models.ser.encoder import AttentiveStatsPooling
from callqa.models.ser.features import FeatureConfig


@dataclass
class HFSerConfig:
    path: str = ""
    stats_dim: int = FeatureConfig().stats_dim
    n_classes: int = len(EMOTIONS)
    freeze_encoder: bool = False
    freeze_feature_encoder: bool = True
    encoder_sample_rate: int = 16000
    stats_hidden: int = 64
    dropout: float = 0.1
    stats_norm: list[list[float]] = field(default_factory=list)
    hf_config: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict:
        return asdict(self)


class HFSer(nn.Module):
    """(wave (B, N) 8 kHz, wave_lengths (B,), stats (B, S)) -> logits (B, n_classes)."""

    input_kind = "wave"
    onnx_exporter = "torchscript"  # see HFCTC: torch.export ties HF's masks to the sample count

    def __init__(self, cfg: HFSerConfig, load_weights: bool = True):
        super().__init__()
        if load_weights and cfg.path:
            self.encoder = AutoModel.from_pretrained(cfg.path, local_files_only=True)
            cfg.hf_config = self.encoder.config.to_dict()
        elif cfg.hf_config:
            self.encoder = AutoModel.from_config(AutoConfig.for_model(**cfg.hf_config))
        else:
            raise ValueError("HFSerConfig needs a local `path` to a pretrained model (or a saved hf_config)")
        self.cfg = cfg
        frozen = (
            self.encoder.parameters()
            if cfg.freeze_encoder
            else (self.encoder.feature_extractor.parameters() if cfg.freeze_feature_encoder else [])
        )
        for p in frozen:
            p.requires_grad = False
        if cfg.encoder_sample_rate % SAMPLE_RATE:
            raise ValueError(f"encoder_sample_rate must be a multiple of {SAMPLE_RATE}")
        self.upsample = Upsample(cfg.encoder_sample_rate // SAMPLE_RATE)
        mean, std = cfg.stats_norm or [[0.0] * cfg.stats_dim, [1.0] * cfg.stats_dim]
        self.register_buffer("stats_mean", torch.tensor(mean, dtype=torch.float32))
        self.register_buffer("stats_std", torch.tensor(std, dtype=torch.float32))
        hidden = self.encoder.config.hidden_size
        self.pool = AttentiveStatsPooling(hidden)
        self.stats_mlp = nn.Sequential(nn.Linear(cfg.stats_dim, cfg.stats_hidden), nn.GELU())
        self.head = nn.Sequential(
            nn.Dropout(cfg.dropout), nn.Linear(2 * hidden + cfg.stats_hidden, cfg.n_classes)
        )

    def set_stats_norm(self, norm: list[list[float]]) -> None:
        self.cfg.stats_norm = norm
        self.stats_mean.copy_(torch.tensor(norm[0]))
        self.stats_std.copy_(torch.tensor(norm[1]))

    def forward(self, wave: torch.Tensor, wave_lengths: torch.Tensor, stats: torch.Tensor) -> torch.Tensor:
        x = self.upsample(wave)
        lengths = wave_lengths * self.upsample.ratio
        mask = length_mask(lengths, x.shape[1])
        n = lengths[:, None].to(x.dtype)
        mean = (x * mask).sum(dim=1, keepdim=True) / n
        var = (((x - mean) * mask) ** 2).sum(dim=1, keepdim=True) / n
        x = ((x - mean) / torch.sqrt(var + 1e-7)) * mask
        hidden = self.encoder(x).last_hidden_state
        frames = self.encoder._get_feat_extract_output_lengths(lengths)
        pooled = self.pool(hidden, length_mask(frames, hidden.shape[1]))
        s = self.stats_mlp((stats - self.stats_mean) / self.stats_std)
        return self.head(torch.cat([pooled, s], dim=-1))
