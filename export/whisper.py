"""Whisper to ONNX as two graphs: encoder (8 kHz audio in, front-end inside) and one decoder step.

A decoder step without a key/value cache recomputes the prefix each token, which is quadratic in the
transcript length but simple and exact; call-centre turns are short. Both graphs go through the
TorchScript exporter with dynamic batch and length axes (torch.export trips over Hugging Face's
attention masks, see hf_ctc.py). The encoder file carries the tokenizer and decoding settings.
"""

from __future__ import annotations

import io
import json
import os
from pathlib import Path

import onnx
import torch
from torch import nn

from callqa import __version__
from callqa.data.constants import SAMPLE_RATE
from callqa.data.files import atomic_path
from callqa.models.asr.whisper import WhisperASR


class _Encoder(nn.Module):
    def __init__(self, asr: WhisperASR):
        super().__init__()
        self.asr = asr

    def forward(self, wave: torch.Tensor) -> torch.Tensor:
        return self.asr.encode(wave)


class _DecoderStep(nn.Module):
    def __init__(self, asr: WhisperASR):
        super().__init__()
        self.asr = asr

    def forward(self, ids: torch.Tensor, encoded: torch.Tensor) -> torch.Tensor:
        return self.asr.decode_step(ids, encoded)


def _export(
    module: nn.Module, args: tuple, names: tuple[list[str], list[str]], axes: dict
) -> onnx.ModelProto:
    buf = io.BytesIO()
    torch.onnx.export(
        module.eval(),
        args,
        buf,
        dynamo=False,
        opset_version=17,
        input_names=names[0],
        output_names=names[1],
        dynamic_axes=axes,
    )
    return onnx.load_from_string(buf.getvalue())


def _save(proto: onnx.ModelProto, path: Path) -> None:
    with atomic_path(path) as tmp:
        onnx.save(proto, str(tmp))


def export_whisper_onnx(asr: WhisperASR, out: str | os.PathLike[str]) -> tuple[Path, Path]:
    """Write ``whisper-encoder.onnx`` and ``whisper-decoder.onnx`` into ``out``."""
    out = Path(out)
    asr = asr.eval()
    wave = torch.randn(2, 3 * SAMPLE_RATE) * 0.1
    with torch.no_grad():
        encoded = asr.encode(wave)
    ids = torch.tensor([asr.cfg.prefix] * 2)
    enc = _export(
        _Encoder(asr),
        (wave,),
        (["wave"], ["encoded"]),
        {"wave": {0: "batch", 1: "samples"}, "encoded": {0: "batch"}},
    )
    dec = _export(
        _DecoderStep(asr),
        (ids, encoded),
        (["ids", "encoded"], ["logits"]),
        {"ids": {0: "batch", 1: "tokens"}, "encoded": {0: "batch"}, "logits": {0: "batch", 1: "tokens"}},
    )
    meta = {
        "callqa.kind": "asr-whisper",
        "callqa.version": __version__,
        "callqa.sample_rate": str(SAMPLE_RATE),
        "callqa.max_seconds": "30",
        "callqa.decoder": "whisper-decoder.onnx",
        "callqa.tokenizer": asr.cfg.tokenizer_json,
        "callqa.decoding": json.dumps(
            {"prefix": asr.cfg.prefix, "eot": asr.cfg.eot, "max_new_tokens": asr.cfg.max_new_tokens}
        ),
    }
    for k, v in meta.items():
        enc.metadata_props.add(key=k, value=v)
    _save(enc, out / "whisper-encoder.onnx")
    _save(dec, out / "whisper-decoder.onnx")
    return out / "whisper-encoder.onnx", out / "whisper-decoder.onnx"
