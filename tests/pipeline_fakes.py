"""Stand-ins for the pipeline's models: a recording ASR spy, a CTC model that spells what it is told,
and a speech-emotion model with the OnnxSer contract (labels, sample_rate, threshold, classify)."""

from __future__ import annotations

import wave
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import soundfile as sf

from callqa.data.constants import EMOTIONS
from callqa.models.tokenizer import CharTokenizer
from callqa.serving.asr_onnx import OnnxAsr


@dataclass
class Heard:
    text: str


@dataclass
class SpyAsr:
    """Says one character per 0.25 s of audio and remembers every batch it was given."""

    sample_rate: int = 8000
    batches: list[list[int]] = field(default_factory=list)

    def transcribe(self, waves: Sequence[np.ndarray], beam: int = 1, hotwords=None, lm=None) -> list[Heard]:
        self.batches.append([len(w) for w in waves])
        return [Heard("好" * max(1, round(len(w) / self.sample_rate * 4))) for w in waves]

    @property
    def lengths(self) -> list[int]:
        return [n for b in self.batches for n in b]


@dataclass
class FakeSer:
    """Confident "angry" on the louder half of a speaker's segments, unsure on the rest."""

    labels: tuple[str, ...] = EMOTIONS
    sample_rate: int = 8000
    threshold: float = 0.5
    calls: list[int] = field(default_factory=list)

    def classify(self, waves: Sequence[np.ndarray]) -> np.ndarray:
        self.calls.append(len(waves))
        level = np.array([float(np.sqrt(np.mean(w**2))) for w in waves])
        probs = np.full((len(waves), len(self.labels)), 0.3 / (len(self.labels) - 1))
        loud = level >= np.median(level)
        probs[loud] = 0.1 / (len(self.labels) - 1)
        probs[loud, self.labels.index("angry")] = 0.9
        probs[~loud, self.labels.index("neutral")] = 0.2
        return probs / probs.sum(1, keepdims=True)


def bad_files(tmp_path: Path, good: Path) -> dict[str, Path]:
    """One of each kind of input that is not a usable call recording, as a batch meets them."""
    files = {}
    files["empty"] = tmp_path / "empty.wav"
    files["empty"].write_bytes(b"")
    files["truncated"] = tmp_path / "truncated.wav"
    files["truncated"].write_bytes(good.read_bytes()[:5000])
    files["nan"] = tmp_path / "nan.wav"
    samples = np.zeros(8000, np.float32)
    samples[100] = np.nan
    sf.write(files["nan"], samples, 8000, subtype="FLOAT")
    files["one-sample"] = tmp_path / "one.wav"
    sf.write(files["one-sample"], np.zeros(1, np.float32), 8000)
    files["1-hz"] = tmp_path / "one-hertz.wav"
    with wave.open(str(files["1-hz"]), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(1)
        w.writeframes(np.zeros(50, np.int16).tobytes())
    files["three-channels"] = tmp_path / "three.wav"
    sf.write(files["three-channels"], np.zeros((8000, 3), np.float32), 8000)
    files["text"] = tmp_path / "notes.wav"
    files["text"].write_text("not audio at all", encoding="utf-8")
    files["folder"] = tmp_path / "a-folder"
    files["folder"].mkdir()
    return files


class SpellingCtc(OnnxAsr):
    """A CTC model on the real OnnxAsr decoding and spotting path, with ``run`` standing in for
    onnxruntime: 40 ms frames, blank where the wave is quiet, and the voiced frames spelling ``loud``
    when the wave peaks above 0.3, else ``soft``, one character at the start of each equal share."""

    def __init__(self, loud: str, soft: str) -> None:
        self.loud, self.soft = loud, soft
        self.tokenizer = CharTokenizer(sorted(set(loud + soft)))
        self.sample_rate, self.min_samples, self.hop = 8000, 320, 320

    def run(self, wave: np.ndarray, lengths: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        frames = wave.shape[1] // self.hop
        logp = np.full((len(wave), frames, len(self.tokenizer)), np.log(0.01))
        logp[:, :, self.tokenizer.blank_id] = np.log(0.9)
        for k, row in enumerate(wave):
            n = int(lengths[k]) // self.hop
            rms = np.sqrt((row[: n * self.hop].reshape(n, self.hop) ** 2).mean(axis=1))
            voiced = np.flatnonzero(rms > 0.01)
            word = self.loud if np.abs(row).max() > 0.3 else self.soft
            for ch, share in zip(word, np.array_split(voiced, len(word)), strict=True):
                logp[k, share[0], self.tokenizer.blank_id] = np.log(0.01)
                logp[k, share[0], self.tokenizer.encode(ch)[0]] = np.log(0.9)
        return logp, lengths // self.hop
