"""CTC fine-tuning of a pretrained wav2vec2 / HuBERT encoder from a local directory.

The encoder comes from ``path`` (``save_pretrained`` output; nothing is fetched from a hub) and a new
linear head predicts our Chinese characters. Telephone audio is 8 kHz and these encoders were trained
at 16 kHz, so the wrapper upsamples inside the model: callers and the exported ONNX file take 8 kHz,
like the Conformer. The Hugging Face config is kept with the checkpoint, so export can rebuild the
architecture without the original folder.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import torch
from torch import nn
from transformers import AutoConfig, AutoModel

from callqa.data.constants import SAMPLE_RATE


@dataclass
class HFCTCConfig:
    path: str = ""  # local folder with config.json + weights
    vocab_size: int = 0
    freeze_feature_encoder: bool = True
    encoder_sample_rate: int = 16000
    dropout: float = 0.1
    hf_config: dict[str, Any] = field(default_factory=dict)  # filled on first build; rebuilds offline

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class Upsample(nn.Module):
    """Integer-ratio upsampling: insert zeros, then a fixed windowed-sinc low-pass at the old Nyquist.

    Exactly ``ratio`` times as many samples out, with static shapes, so it exports to ONNX (torchaudio's
    resample computes its output length in a way torch.export cannot trace).
    """

    def __init__(self, ratio: int, taps_per_phase: int = 16):
        super().__init__()
        self.ratio = ratio
        half = taps_per_phase * ratio
        t = torch.arange(-half, half + 1, dtype=torch.float64) / ratio
        kernel = torch.sinc(t) * torch.hann_window(2 * half + 1, periodic=False, dtype=torch.float64)
        self.register_buffer("kernel", kernel.float()[None, None, :], persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.ratio == 1:
            return x
        b, n = x.shape
        stuffed = torch.cat([x[:, :, None], x.new_zeros(b, n, self.ratio - 1)], dim=2).reshape(
            b, 1, n * self.ratio
        )
        pad = self.kernel.shape[-1] // 2
        return nn.functional.conv1d(stuffed, self.kernel, padding=pad)[:, 0]


class HFCTC(nn.Module):
    """(batch, samples) 8 kHz waveform + lengths -> (batch, frames, vocab) CTC log-probabilities."""

    #: Under torch.export, Hugging Face's attention builds a padding mask whose size is tied to the
    #: sample count, and onnxruntime then needs gigabytes for a minute of audio; the TorchScript exporter
    #: gives a graph with dynamic batch and time and parity of a few 1e-6.
    onnx_exporter = "torchscript"

    def __init__(self, cfg: HFCTCConfig, load_weights: bool = True):
        super().__init__()
        if load_weights and cfg.path:
            self.encoder = AutoModel.from_pretrained(cfg.path, local_files_only=True)
            cfg.hf_config = self.encoder.config.to_dict()
        elif cfg.hf_config:
            hf_cfg = AutoConfig.for_model(**cfg.hf_config)
            self.encoder = AutoModel.from_config(hf_cfg)
        else:
            raise ValueError("HFCTCConfig needs a local `path` to a pretrained model (or a saved hf_config)")
        self.cfg = cfg
        if cfg.freeze_feature_encoder:
            for p in self.encoder.feature_extractor.parameters():
                p.requires_grad = False
        if cfg.encoder_sample_rate % SAMPLE_RATE:
            raise ValueError(f"encoder_sample_rate must be a multiple of {SAMPLE_RATE}")
        self.upsample = Upsample(cfg.encoder_sample_rate // SAMPLE_RATE)
        self.dropout = nn.Dropout(cfg.dropout)
        self.head = nn.Linear(self.encoder.config.hidden_size, cfg.vocab_size)

    def forward(self, wave: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = self.upsample(wave)
        lengths = lengths * self.upsample.ratio
        mask = torch.arange(x.shape[1], device=x.device)[None, :] < lengths[:, None]
        # per-utterance zero mean, unit variance over the real samples (what wav2vec2 feature extractors do)
        n = lengths[:, None].to(x.dtype)
        mean = (x * mask).sum(dim=1, keepdim=True) / n
        var = (((x - mean) * mask) ** 2).sum(dim=1, keepdim=True) / n
        x = ((x - mean) / torch.sqrt(var + 1e-7)) * mask
        # No attention_mask: Hugging Face's mask path builds a tensor quadratic in the *sample* count,
        # which onnxruntime cannot allocate for a minute of audio. Padding is zeroed (as group-norm
        # wav2vec2 models expect), so batched outputs differ slightly from single ones near the end.
        hidden = self.encoder(x).last_hidden_state
        out_lengths = self.encoder._get_feat_extract_output_lengths(lengths)
        return self.head(self.dropout(hidden)).log_softmax(dim=-1), out_lengths

    @property
    def min_samples(self) -> int:
        return SAMPLE_RATE // 2

    def features(self) -> dict[str, Any]:
        return {
            "type": "raw",
            "encoder_sample_rate": self.cfg.encoder_sample_rate,
            "model_type": self.encoder.config.model_type,
        }

    def num_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters())
