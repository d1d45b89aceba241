"""Utterance manifests as Hugging Face ``datasets`` with an ``Audio`` column, and back.

Manifests point into call recordings (offset + duration); a Dataset holds each utterance's own audio.
Going to a Dataset cuts the audio out (stored as 16-bit WAV bytes, so nothing is decoded until used);
coming back writes one WAV per row and a manifest beside them. Decoding the Audio column itself goes
through torchcodec, which ``datasets`` requires.
"""

from __future__ import annotations

import io
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np
import soundfile as sf
from datasets import Audio, Dataset, Features, Value

from callqa.data.audio import resample, write_audio
from callqa.data.constants import SAMPLE_RATE
from callqa.data.schema import Utterance, write_records
from callqa.data.segments import load_utterance

#: Manifest fields carried as plain columns; audio/offset/duration become the Audio column.
_COLUMNS: dict[str, Value] = {
    "id": Value("string"),
    "text": Value("string"),
    "speaker": Value("string"),
    "emotion": Value("string"),
    "split": Value("string"),
    "channel": Value("int32"),
    "call_id": Value("string"),
    "voice": Value("string"),
    "snr_db": Value("float32"),
}


def features(sample_rate: int = SAMPLE_RATE) -> Features:
    return Features({**_COLUMNS, "audio": Audio(sampling_rate=sample_rate)})


def _wav_bytes(samples: np.ndarray, sample_rate: int) -> bytes:
    buf = io.BytesIO()
    sf.write(buf, samples, sample_rate, format="WAV", subtype="PCM_16")
    return buf.getvalue()


def to_hf_dataset(
    utterances: Iterable[Utterance], root: str | os.PathLike[str], sample_rate: int = SAMPLE_RATE
) -> Dataset:
    """Cut every utterance out of its recording into a Dataset with an ``audio`` column."""
    rows: list[dict[str, Any]] = []
    for u in utterances:
        samples = load_utterance(u, root, sample_rate)
        row = {k: getattr(u, k) for k in _COLUMNS}
        row["audio"] = {"bytes": _wav_bytes(samples, sample_rate), "path": f"{u.id}.wav"}
        rows.append(row)
    return Dataset.from_list(rows, features=features(sample_rate))


def _samples(value: Any) -> tuple[np.ndarray, int]:
    """Audio from any form a Dataset row can hold: a torchcodec decoder, raw bytes, or an array."""
    if hasattr(value, "get_all_samples"):
        s = value.get_all_samples()
        return s.data.numpy().mean(axis=0).astype(np.float32), int(s.sample_rate)
    if value.get("bytes") is not None:
        data, sr = sf.read(io.BytesIO(value["bytes"]), dtype="float32", always_2d=True)
        return data.mean(axis=1), sr
    if value.get("array") is not None:
        return np.asarray(value["array"], dtype=np.float32), int(value["sampling_rate"])
    data, sr = sf.read(value["path"], dtype="float32", always_2d=True)
    return data.mean(axis=1), sr


def from_hf_dataset(
    dataset: Dataset, out_dir: str | os.PathLike[str], sample_rate: int = SAMPLE_RATE
) -> list[Utterance]:
    """Write each row's audio to ``out_dir/audio/ID.wav`` and ``out_dir/utterances.jsonl``; return the
    manifest. Rows need ``id`` and ``audio``; the other manifest fields are taken when present."""
    out = Path(out_dir)
    manifest = []
    for row in dataset:
        samples, sr = _samples(row["audio"])
        if sr != sample_rate:
            samples = resample(samples, sr, sample_rate)
        rel = f"audio/{row['id']}.wav"
        write_audio(out / rel, samples, sample_rate)
        fields = {k: row.get(k) for k in _COLUMNS if k != "id" and row.get(k) is not None}
        manifest.append(
            Utterance(
                id=row["id"],
                audio=rel,
                offset=0.0,
                duration=len(samples) / sample_rate,
                **{**fields, "channel": 0},
            )
        )
    write_records(out / "utterances.jsonl", manifest)
    return manifest
