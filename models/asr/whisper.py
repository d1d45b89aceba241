"""Fine-tuning a pretrained Whisper (Chinese transcription) from a local directory.

The folder holds ``save_pretrained`` output of the model, its tokenizer and its feature extractor;
nothing is fetched. Whisper's own log-mel (16 kHz, 30 s window, log10 clamped to max - 8) is rebuilt
here as an exportable module, so the exported encoder takes 8 kHz telephone audio like the CTC models.
Decoding is a plain greedy loop over the decoder, the same in PyTorch and onnxruntime; its prefix is
<|startoftranscript|><|zh|><|transcribe|><|notimestamps|>.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import torch
from torch import nn
from transformers import (
    WhisperConfig,
    WhisperFeatureExtractor,
    WhisperForConditionalGeneration,
    WhisperTokenizer,
)

from callqa.data.constants import SAMPLE_RATE
from callqa.models.asr.hf_ctc import Upsample
from callqa.models.tokenizer import normalize


@dataclass
class WhisperASRConfig:
    path: str = ""
    language: str = "zh"
    task: str = "transcribe"
    max_new_tokens: int = 96
    freeze_encoder: bool = False
    # filled from the folder on first build, so a checkpoint rebuilds offline without it
    hf_config: dict[str, Any] = field(default_factory=dict)
    tokenizer_json: str = ""
    prefix: list[int] = field(default_factory=list)
    eot: int = -1
    pad: int = -1
    mel_filters: list[list[float]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class WhisperFrontend(nn.Module):
    """8 kHz waveform -> Whisper's normalised log-mel, (batch, n_mels, 3000) for a 30 s window."""

    def __init__(self, mel_filters: torch.Tensor, n_fft: int = 400, hop: int = 160, window_s: int = 30):
        super().__init__()
        self.upsample = Upsample(16000 // SAMPLE_RATE)
        self.n_fft, self.hop, self.samples = n_fft, hop, 16000 * window_s
        n_freq = n_fft // 2 + 1
        k = torch.arange(n_freq, dtype=torch.float64)[:, None]
        n = torch.arange(n_fft, dtype=torch.float64)[None, :]
        angle = 2 * torch.pi * k * n / n_fft
        window = torch.hann_window(n_fft, periodic=True, dtype=torch.float64)
        basis = torch.cat([torch.cos(angle), -torch.sin(angle)]) * window
        self.register_buffer("basis", basis.float()[:, None, :], persistent=False)
        self.register_buffer("mel", mel_filters.float(), persistent=False)  # (n_freq, n_mels)

    def forward(self, wave: torch.Tensor) -> torch.Tensor:
        x = self.upsample(wave)[:, : self.samples]
        x = nn.functional.pad(x, (0, self.samples - x.shape[1]))
        x = nn.functional.pad(x[:, None, :], (self.n_fft // 2, self.n_fft // 2), mode="reflect")
        re, im = nn.functional.conv1d(x, self.basis, stride=self.hop).chunk(2, dim=1)
        power = (re * re + im * im)[:, :, :-1]
        logmel = torch.log10(torch.clamp(torch.einsum("bft,fm->bmt", power, self.mel), min=1e-10))
        top = logmel.amax(dim=(1, 2), keepdim=True)
        return (torch.maximum(logmel, top - 8.0) + 4.0) / 4.0


class WhisperASR(nn.Module):
    def __init__(self, cfg: WhisperASRConfig, load_weights: bool = True):
        super().__init__()
        if load_weights and cfg.path:
            self.model = WhisperForConditionalGeneration.from_pretrained(cfg.path, local_files_only=True)
            tok = WhisperTokenizer.from_pretrained(
                cfg.path,
                language=cfg.language,
                task=cfg.task,
                predict_timestamps=False,
                local_files_only=True,
            )
            fe = WhisperFeatureExtractor.from_pretrained(cfg.path, local_files_only=True)
            cfg.hf_config = self.model.config.to_dict()
            cfg.tokenizer_json = tok.backend_tokenizer.to_str()
            cfg.prefix = list(tok.prefix_tokens)
            cfg.eot = tok.convert_tokens_to_ids("<|endoftext|>")
            cfg.pad = tok.pad_token_id if tok.pad_token_id is not None else cfg.eot
            cfg.mel_filters = fe.mel_filters.tolist()
        elif cfg.hf_config:
            self.model = WhisperForConditionalGeneration(WhisperConfig.from_dict(cfg.hf_config))
        else:
            raise ValueError(
                "WhisperASRConfig needs a local `path` with model, tokenizer and feature extractor"
            )
        self.cfg = cfg
        self.frontend = WhisperFrontend(torch.tensor(cfg.mel_filters))
        if cfg.freeze_encoder:
            for p in self.model.model.encoder.parameters():
                p.requires_grad = False
        from tokenizers import Tokenizer

        self.tokenizer = Tokenizer.from_str(cfg.tokenizer_json)

    def encode(self, wave: torch.Tensor) -> torch.Tensor:
        return self.model.model.encoder(self.frontend(wave)).last_hidden_state

    def decode_step(self, ids: torch.Tensor, encoded: torch.Tensor) -> torch.Tensor:
        hidden = self.model.model.decoder(input_ids=ids, encoder_hidden_states=encoded).last_hidden_state
        return self.model.proj_out(hidden)

    def targets(self, texts: list[str]) -> torch.Tensor:
        """prefix + text tokens + <|endoftext|>, right-padded with -100 (ignored by the loss)."""
        seqs = [
            self.cfg.prefix
            + self.tokenizer.encode(normalize(t), add_special_tokens=False).ids
            + [self.cfg.eot]
            for t in texts
        ]
        out = torch.full((len(seqs), max(map(len, seqs))), -100, dtype=torch.long)
        for k, s in enumerate(seqs):
            out[k, : len(s)] = torch.tensor(s)
        return out

    def loss(self, wave: torch.Tensor, texts: list[str]) -> torch.Tensor:
        ids = self.targets(texts).to(wave.device)
        inputs = ids[:, :-1].clamp(min=0).masked_fill(ids[:, :-1] < 0, self.cfg.pad)
        logits = self.decode_step(inputs, self.encode(wave))
        labels = ids[:, 1:].masked_fill(
            torch.arange(ids.shape[1] - 1, device=ids.device) < len(self.cfg.prefix) - 1, -100
        )
        return nn.functional.cross_entropy(logits.transpose(1, 2), labels, ignore_index=-100)

    @torch.no_grad()
    def transcribe(self, wave: torch.Tensor) -> list[str]:
        encoded = self.encode(wave)
        ids = torch.tensor([self.cfg.prefix] * wave.shape[0], device=wave.device)
        done = torch.zeros(wave.shape[0], dtype=torch.bool, device=wave.device)
        for _ in range(self.cfg.max_new_tokens):
            nxt = self.decode_step(ids, encoded)[:, -1].argmax(-1)
            nxt = nxt.masked_fill(done, self.cfg.eot)
            ids = torch.cat([ids, nxt[:, None]], dim=1)
            done |= nxt == self.cfg.eot
            if bool(done.all()):
                break
        return [self.text(row[len(self.cfg.prefix) :].tolist()) for row in ids]

    def text(self, ids: list[int]) -> str:
        if self.cfg.eot in ids:
            ids = ids[: ids.index(self.cfg.eot)]
        return normalize(self.tokenizer.decode(ids, skip_special_tokens=True))

    def num_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters())
