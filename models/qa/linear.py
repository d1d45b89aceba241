"""The transparent QA model: per rubric item a logistic regression over the call's features, calibrated.

Stored as JSON (feature names, standardisation, weights, Platt scaling, decision threshold, typical
points lost), read and applied with numpy alone. Every prediction can be explained exactly: the logit is
a sum of per-feature contributions, and the largest of them are the reasons given to the inspector.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from callqa.data.files import write_json
from callqa.models.qa.base import ItemPrediction
from callqa.qa.timeline import CallView

MODEL_KIND = "qa-linear"


@dataclass
class ItemModel:
    """One item's calibrated logistic regression."""

    features: list[str]
    mean: list[float]
    scale: list[float]
    coef: list[float]
    intercept: float
    #: Platt scaling of the logit, fitted on out-of-fold predictions: p = sigmoid(a * logit + b).
    platt: tuple[float, float] = (1.0, 0.0)
    #: P(defect) at or above which the item is called a defect (chosen for F1 on out-of-fold data).
    threshold: float = 0.5
    #: Points an inspector typically deducts for this defect.
    points: float = 0.0
    #: Training positives and calls, so a reader knows how much evidence stands behind it.
    positives: int = 0
    calls: int = 0
    #: The inverse L2 strength it was fitted with.
    c: float = 1.0

    def contributions(self, x: Mapping[str, float]) -> np.ndarray:
        v = np.array([float(x.get(n, 0.0)) for n in self.features])
        return (v - np.array(self.mean)) / np.array(self.scale) * np.array(self.coef)

    def probability(self, x: Mapping[str, float]) -> float:
        logit = float(self.contributions(x).sum() + self.intercept)
        a, b = self.platt
        return 1.0 / (1.0 + math.exp(-max(-50.0, min(50.0, a * logit + b))))

    def reasons(self, x: Mapping[str, float], k: int = 3) -> list[str]:
        """The ``k`` features that pushed hardest (either way), as "name=value (+0.8)"."""
        c = self.contributions(x)
        top = np.argsort(-np.abs(c))[:k]
        return [f"{self.features[i]}={float(x.get(self.features[i], 0.0)):.3g} ({c[i]:+.2f})" for i in top]


@dataclass
class LinearQa:
    """Item models of one rubric, with what they were trained on."""

    rubric: dict[str, Any]
    items: dict[str, ItemModel]
    meta: dict[str, Any] = field(default_factory=dict)
    kind: str = MODEL_KIND

    @property
    def item_ids(self) -> list[str]:
        return list(self.items)

    @property
    def version(self) -> str | None:
        return str(self.meta.get("fingerprint") or "") or None

    def predict_items(self, view: CallView, features: Mapping[str, float]) -> dict[str, ItemPrediction]:
        return {
            item: ItemPrediction(m.probability(features), m.threshold, m.points, m.reasons(features))
            for item, m in self.items.items()
        }

    def save(self, path: str | os.PathLike[str]) -> Path:
        write_json(path, asdict(self))
        return Path(path)

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> LinearQa:
        try:
            raw = json.loads(Path(path).read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as exc:
            raise ValueError(f"{path}: cannot read a QA model ({exc})") from None
        kind = raw.get("kind") if isinstance(raw, dict) else None
        if kind != MODEL_KIND:
            raise ValueError(f"{path}: not a {MODEL_KIND} model (kind: {kind!r})")
        order = [i for i in raw["rubric"].get("ids", []) if i in raw["items"]]  # JSON keys come back sorted
        order += [i for i in raw["items"] if i not in order]
        items = {k: ItemModel(**{**raw["items"][k], "platt": tuple(raw["items"][k]["platt"])}) for k in order}
        return cls(raw["rubric"], items, raw.get("meta", {}))
