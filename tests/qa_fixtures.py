"""A "heard" file made from the ground truth, so QA tests run without an ASR model: each turn's text as
written and its emotion as a one-hot probability, on the channel of its speaker."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

from callqa.data.constants import EMOTIONS
from callqa.data.results import CallResult, ChannelInfo, TurnResult
from callqa.data.schema import CallRecord


def heard_from_truth(calls: Sequence[CallRecord]) -> list[CallResult]:
    out = []
    for c in calls:
        turns = [
            TurnResult(
                channel=0 if t.speaker == "agent" else 1,
                speaker=t.speaker,
                start=t.start,
                end=t.end,
                text=t.text,
                emotion=t.emotion,
                emotion_probs={e: float(e == t.emotion) for e in EMOTIONS},
                chars_per_minute=60.0 * len(t.text) / (t.end - t.start),
            )
            for t in c.turns
        ]
        channels = [ChannelInfo(index=0, speaker="agent"), ChannelInfo(index=1, speaker="customer")]
        out.append(
            CallResult(
                id=c.id, duration=c.duration, sample_rate=8000, channels=channels, turns=turns, masked=False
            )
        )
    return out


def write_heard(calls: Sequence[CallRecord], path: Path) -> Path:
    path.write_text(
        "".join(json.dumps(r.to_json(), ensure_ascii=False) + "\n" for r in heard_from_truth(calls)),
        encoding="utf-8",
    )
    return path


def train_on_truth(corpus: Path, calls: Sequence[CallRecord], root: Path) -> tuple[Path, Path]:
    """``callqa train qa`` on every call of ``corpus``, heard as written; returns (heard, model)."""
    from typer.testing import CliRunner

    from callqa.cli import app

    heard = write_heard(calls, root / "heard.jsonl")
    model = root / "qa.json"
    args = [
        "train",
        "qa",
        "--corpus",
        str(corpus),
        "--heard",
        str(heard),
        "--out",
        str(model),
        "--split",
        "all",
    ]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    return heard, model
