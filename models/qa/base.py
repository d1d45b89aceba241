"""What every QA model gives the score sheet, whatever it is made of: per item the calibrated
P(defect), the threshold at which that is called a defect, the points it typically costs, and the
reasons a person can check."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from callqa.qa.timeline import CallView


@dataclass
class ItemPrediction:
    probability: float
    threshold: float
    points: float
    reasons: list[str] = field(default_factory=list)


class QaModel(Protocol):
    #: The model's name in score records (``source`` of each item).
    kind: str
    #: The rubric it was trained for: name, version, item ids and the rules' fingerprint.
    rubric: dict[str, Any]

    @property
    def item_ids(self) -> list[str]: ...

    @property
    def version(self) -> str | None:
        """What tells two trainings apart in score records."""
        ...

    def predict_items(self, view: CallView, features: Mapping[str, float]) -> dict[str, ItemPrediction]:
        """Each known item's prediction for one heard call and its feature row."""
        ...
