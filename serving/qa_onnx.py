"""The neural QA model at run time: onnxruntime and NumPy, no torch. Everything it needs (encoding,
items, calibration, thresholds, points, the rubric it was trained for) is read from the file.

And :func:`load_qa_model`, which opens either kind of QA model by its file: the transparent model's
JSON or the neural model's ONNX.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from callqa.models.qa.base import ItemPrediction, QaModel
from callqa.models.qa.turn_inputs import TurnEncoding, batch_arrays, encode_call
from callqa.qa.timeline import CallView
from callqa.serving.sessions import open_session

MODEL_KIND = "qa-turns"
#: Turns named as an item's evidence: those it attended to most.
REASON_TURNS = 2


class OnnxQa:
    kind = MODEL_KIND

    def __init__(self, path: str | os.PathLike[str], threads: int | None = None):
        self.path = str(path)
        self.session, meta = open_session(path, MODEL_KIND, threads)
        self.meta = meta
        self._version = hashlib.sha256(Path(path).read_bytes()).hexdigest()[:12]
        self.encoding = TurnEncoding(**json.loads(meta["callqa.encoding"]))
        self._items: list[str] = json.loads(meta["callqa.items"])
        cal = json.loads(meta["callqa.calibration"])
        self.platt = np.array([cal[i]["platt"] for i in self._items], dtype=np.float64)
        self.thresholds = np.array([cal[i]["threshold"] for i in self._items], dtype=np.float64)
        self.points: dict[str, float] = json.loads(meta.get("callqa.points", "{}"))
        self.rubric: dict[str, Any] = json.loads(meta.get("callqa.rubric", "{}"))

    @property
    def item_ids(self) -> list[str]:
        return list(self._items)

    @property
    def version(self) -> str | None:
        return self._version

    def logits(self, feed: Mapping[str, np.ndarray]) -> np.ndarray:
        return self.session.run(["logits"], dict(feed))[0]

    def probabilities(self, logits: np.ndarray) -> np.ndarray:
        z = self.platt[:, 0] * logits.astype(np.float64) + self.platt[:, 1]
        return 1.0 / (1.0 + np.exp(-np.clip(z, -50, 50)))

    def decisions(self, logits: np.ndarray) -> np.ndarray:
        return self.probabilities(logits) >= self.thresholds

    def predict_items(self, view: CallView, features: Mapping[str, float]) -> dict[str, ItemPrediction]:
        feed = batch_arrays([encode_call(view, features, self.encoding)])
        logits, attention = self.session.run(["logits", "attention"], feed)
        probs = self.probabilities(logits)[0]
        turns = view.turns
        out = {}
        for k, item in enumerate(self._items):
            reasons = []
            for t in np.argsort(-attention[0, k])[: min(REASON_TURNS, len(turns))]:
                turn = turns[int(t)]
                reasons.append(
                    f"looked at the {turn.speaker or 'unknown'} turn at {turn.start:.1f}-{turn.end:.1f} s "
                    f"(attention {attention[0, k, t]:.3f})"
                )
            out[item] = ItemPrediction(
                float(probs[k]), float(self.thresholds[k]), float(self.points.get(item, 0.0)), reasons
            )
        return out


def load_qa_model(path: str | os.PathLike[str]) -> QaModel:
    """A QA model by its file: ``.onnx`` is the neural model, anything else the transparent one's JSON."""
    if Path(path).suffix.lower() == ".onnx":
        return OnnxQa(path)
    from callqa.models.qa.linear import LinearQa

    return LinearQa.load(path)
