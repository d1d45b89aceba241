"""Speech emotion on onnxruntime + NumPy alone (no torch on this path): the call pipeline's SER.

``classify`` takes ALL the speech segments of ONE speaker in ONE call, because the model judges each
segment against that speaker's others (their typical pitch, level and pace), computed here across the
segments given; a single segment works too, judged on its own prosody. Everything the model needs
(labels, feature settings, calibration temperature, "uncertain" threshold) is read from the ONNX file.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence

import numpy as np

from callqa.data.constants import UNCERTAIN
from callqa.models.ser.features import (
    FeatureConfig,
    FeatureExtractor,
    SerInput,
    context_window,
    pad_batch,
    speaker_inputs,
)
from callqa.serving.sessions import open_session

#: Segments per onnxruntime call: bounds memory for a speaker with hundreds of segments in a long call.
BATCH = 16


def context_rounds(meta: dict[str, str]) -> int:
    """Rounds of message passing between turns in an exported model (0: each turn judged alone)."""
    return int(json.loads(meta.get("callqa.model_config", "{}")).get("context_rounds", 0))


def context_span(peers: np.ndarray, idx: np.ndarray, rounds: int) -> tuple[int, int]:
    """The turns ``[lo, hi)`` whose states turns ``idx`` depend on after ``rounds`` of message passing
    over the peer mask (n, n): a window of the speaker's turns that gives the same result as all of them,
    so a long call costs time in proportion to its length."""
    reach = np.zeros(len(peers), bool)
    reach[idx] = True
    for _ in range(rounds):
        reach |= peers[reach].any(axis=0)
    where = np.flatnonzero(reach)
    return int(where[0]), int(where[-1]) + 1


def segment_feed(
    xs: Sequence[SerInput],
    waves: Sequence[np.ndarray] | None,
    idx: np.ndarray,
    names: set[str] | Sequence[str],
    rounds: int = 0,
) -> dict[str, np.ndarray]:
    """The graph inputs, by name, that judge turns ``idx`` of one speaker's turns ``xs`` in one call:
    their features (or waves, for a model that takes audio) and, for a model with call context, the
    window of the speaker's turns they are judged among."""
    frames, lengths, stats = pad_batch([xs[i] for i in idx])
    feed = {"frames": frames, "lengths": lengths, "stats": stats}
    if "wave" in names and waves is not None:
        n = np.array([max(len(waves[i]), 400) for i in idx], dtype=np.int64)
        wave = np.zeros((len(idx), int(n.max())), dtype=np.float32)
        for j, i in enumerate(idx):
            wave[j, : len(waves[i])] = waves[i]
        feed.update(wave=wave, wave_lengths=n)
    if "peer_stats" in names:
        lo, hi = context_span(np.stack([x.peers for x in xs]), idx, rounds)
        feed["peer_stats"], feed["peer_pairs"], feed["peer_mask"] = context_window([(xs, lo, hi)])
        feed["index"] = (np.asarray(idx) - lo).astype(np.int64)
    return {k: v for k, v in feed.items() if k in names}


class OnnxSer:
    def __init__(self, path: str | os.PathLike[str], threads: int | None = None):
        self.path = str(path)
        self.session, meta = open_session(path, "ser", threads)
        self.meta = meta
        self.labels: tuple[str, ...] = tuple(json.loads(meta["callqa.labels"]))
        self.sample_rate = int(meta["callqa.sample_rate"])
        self.temperature = float(meta.get("callqa.temperature", 1.0))
        self.threshold = float(meta.get("callqa.threshold", 0.0))
        features = FeatureConfig.from_dict(json.loads(meta["callqa.features"]), self.path)
        self.extractor = FeatureExtractor(features)
        self.inputs = {i.name for i in self.session.get_inputs()}
        self.context_rounds = context_rounds(meta)

    def logits(self, waves: Sequence[np.ndarray]) -> np.ndarray:
        """(n, labels) uncalibrated logits of one speaker's segments in one call."""
        waves = [np.asarray(w, dtype=np.float32).reshape(-1) for w in waves]
        if not waves:
            return np.zeros((0, len(self.labels)), dtype=np.float32)
        xs = speaker_inputs(waves, self.extractor)
        out = np.zeros((len(waves), len(self.labels)), dtype=np.float32)
        # with call context, neighbours together (one small window per batch); else similar lengths
        # together (little padding)
        context = "peer_stats" in self.inputs
        order = np.arange(len(xs)) if context else np.argsort([len(x.frames) for x in xs])
        for k in range(0, len(order), BATCH):
            idx = order[k : k + BATCH]
            feed = segment_feed(xs, waves, idx, self.inputs, self.context_rounds)
            out[idx] = self.session.run(None, feed)[0]
        return out

    def classify(self, waves: Sequence[np.ndarray]) -> np.ndarray:
        """(n, len(labels)) calibrated probabilities for one speaker's segments in one call."""
        z = self.logits(waves).astype(np.float64) / self.temperature
        z -= z.max(axis=1, keepdims=True)
        p = np.exp(z)
        return (p / p.sum(axis=1, keepdims=True)).astype(np.float32)

    def decide(self, probs: np.ndarray) -> list[str]:
        """The label of each row, or ``uncertain`` where the calibrated confidence is below threshold."""
        return [self.labels[int(np.argmax(p))] if p.max() >= self.threshold else UNCERTAIN for p in probs]


def load_ser(path: str | os.PathLike[str], threads: int | None = None) -> OnnxSer:
    return OnnxSer(path, threads)
