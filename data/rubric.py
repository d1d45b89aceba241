"""The scoring sheet (评分表): items with points, fatal vetoes and score bands, loaded from YAML.

Centres edit the YAML; nothing here hard-codes an item. Item ``params`` carry the thresholds the rubric
implies (silence length, overlap length, speech-rate range) so that the corpus generator, the rules and
the models all read the same numbers.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Mapping
from importlib import resources
from pathlib import Path
from typing import Annotated, Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from callqa.data.constants import BANDS, FULL_MARKS
from callqa.data.schema import SchemaError, _describe


class RubricItem(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str
    name_zh: str
    name_en: str = ""
    points: Annotated[float, Field(gt=0)]
    fatal: bool = False
    description: str = ""
    params: dict[str, Any] = Field(default_factory=dict)
    #: The detector that checks this item (``detector:`` plus its options; see callqa.qa.rules), or none.
    rule: dict[str, Any] | None = None


class Band(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    min: Annotated[float, Field(ge=0, le=FULL_MARKS)]


class Rubric(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = "default"
    version: str = "1"
    #: Named phrase lists that several rules share through YAML anchors (``&forbidden`` here, ``*forbidden``
    #: in a rule): written once, so that the lists cannot drift apart.
    phrase_lists: dict[str, list[str]] = Field(default_factory=dict)
    items: list[RubricItem]
    bands: list[Band] = Field(default_factory=lambda: [Band(name=n, min=m) for n, m in BANDS])

    @model_validator(mode="after")
    def _check(self) -> Rubric:
        ids = [i.id for i in self.items]
        dupes = sorted({i for i in ids if ids.count(i) > 1})
        if dupes:
            raise ValueError(f"duplicate item ids: {dupes}")
        total = sum(i.points for i in self.items)
        if abs(total - FULL_MARKS) > 1e-6:
            raise ValueError(f"item points add to {total:g}, not {FULL_MARKS:g}")
        mins = [b.min for b in self.bands]
        if mins != sorted(mins, reverse=True) or not mins or mins[-1] != 0:
            raise ValueError("bands must be listed best first with descending minimums ending at 0")
        return self

    @property
    def ids(self) -> list[str]:
        return [i.id for i in self.items]

    def __getitem__(self, item_id: str) -> RubricItem:
        for item in self.items:
            if item.id == item_id:
                return item
        raise KeyError(f"no rubric item {item_id!r}; items are {self.ids}")

    def param(self, item_id: str, key: str, default: float) -> float:
        """A threshold from an item's params, or ``default`` when the centre's rubric lacks the item or the
        key (so a rubric without, say, a speech-rate item still drives the same corpus and rules)."""
        for item in self.items:
            if item.id == item_id:
                return float(item.params.get(key, default))
        return default

    def total(self, points_lost: Mapping[str, float], fatal: list[str] | tuple[str, ...] = ()) -> float:
        """Score a sheet: full marks minus the points lost (each capped at the item's points); a fatal item
        zeroes the call whatever else happened."""
        if fatal:
            return 0.0
        lost = sum(min(float(v), self[k].points) for k, v in points_lost.items())
        return max(0.0, FULL_MARKS - lost)

    def rules_fingerprint(self) -> str:
        """A short hash of every item's rule block and params: the settings a QA model's features were
        computed with, so that a model applied under other phrase lists or thresholds can say so."""
        spec = [(i.id, i.rule, i.params) for i in self.items]
        return hashlib.sha256(json.dumps(spec, sort_keys=True, ensure_ascii=False).encode()).hexdigest()[:16]

    def band(self, total: float) -> str:
        for b in self.bands:
            if total >= b.min:
                return b.name
        return self.bands[-1].name


def rules_from(corpus_rubric: Rubric, path: str | os.PathLike[str] | None) -> Rubric:
    """The rubric whose rules judge a labelled corpus: the corpus's own snapshot (written when it was
    generated, so an old corpus carries old phrase lists), or the file at ``path``, which must score the
    same items as the corpus's inspectors did."""
    if path is None:
        return corpus_rubric
    other = load_rubric(path)
    if other.ids != corpus_rubric.ids:
        raise SchemaError(
            f"{path}: items {other.ids} are not the corpus's {corpus_rubric.ids}; the inspectors' labels "
            "are per item"
        )
    return other


def default_rubric_path() -> Path:
    return Path(str(resources.files("callqa.configs") / "rubric" / "default.yaml"))


def load_rubric(path: str | os.PathLike[str] | None = None) -> Rubric:
    """Load and validate a rubric YAML (the packaged default when no path is given)."""
    path = Path(path) if path is not None else default_rubric_path()
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise SchemaError(f"{path}: cannot read rubric ({exc})") from None
    try:
        return Rubric.model_validate(raw)
    except ValidationError as exc:
        raise SchemaError(f"{path}: rubric {_describe(exc)}") from None
