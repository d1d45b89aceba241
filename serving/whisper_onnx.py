"""Whisper transcription on onnxruntime alone (greedy, no torch), from export_whisper_onnx's files."""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import onnxruntime as ort
from tokenizers import Tokenizer

from callqa.models.tokenizer import normalize
from callqa.serving.asr_onnx import Transcript
from callqa.serving.sessions import providers


class OnnxWhisper:
    def __init__(self, encoder: str | os.PathLike[str], threads: int | None = None):
        opts = ort.SessionOptions()
        if threads:
            opts.intra_op_num_threads = threads
        self.encoder = ort.InferenceSession(str(encoder), opts, providers=providers())
        meta = self.encoder.get_modelmeta().custom_metadata_map
        if meta.get("callqa.kind") != "asr-whisper":
            raise ValueError(
                f"{encoder}: not a callqa Whisper encoder (callqa.kind={meta.get('callqa.kind')!r})"
            )
        self.decoder = ort.InferenceSession(
            str(Path(encoder).parent / meta["callqa.decoder"]), opts, providers=providers()
        )
        self.tokenizer = Tokenizer.from_str(meta["callqa.tokenizer"])
        decoding = json.loads(meta["callqa.decoding"])
        self.prefix, self.eot, self.max_new = decoding["prefix"], decoding["eot"], decoding["max_new_tokens"]
        self.sample_rate = int(meta["callqa.sample_rate"])

    def transcribe(
        self, waves: Sequence[np.ndarray], beam: int = 1, hotwords: object = None, lm: object = None
    ) -> list[Transcript]:
        """Greedy decoding; ``beam``, ``hotwords`` and ``lm`` are accepted for a common interface and
        ignored (Whisper's decoder is its own language model)."""
        n = max(max(len(w) for w in waves), self.sample_rate // 10)
        batch = np.zeros((len(waves), n), dtype=np.float32)
        for k, w in enumerate(waves):
            batch[k, : len(w)] = w
        (encoded,) = self.encoder.run(None, {"wave": batch})
        ids = np.array([self.prefix] * len(waves), dtype=np.int64)
        done = np.zeros(len(waves), dtype=bool)
        for _ in range(self.max_new):
            (logits,) = self.decoder.run(None, {"ids": ids, "encoded": encoded})
            nxt = np.where(done, self.eot, logits[:, -1].argmax(-1))
            ids = np.concatenate([ids, nxt[:, None]], axis=1)
            done |= nxt == self.eot
            if done.all():
                break
        return [self._transcript(row[len(self.prefix) :].tolist()) for row in ids]

    def _transcript(self, ids: list[int]) -> Transcript:
        if self.eot in ids:
            ids = ids[: ids.index(self.eot)]
        return Transcript(normalize(self.tokenizer.decode(ids, skip_special_tokens=True)), ids)
