"""The data contracts reject bad records with the file, line and field, and round-trip good ones."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from callqa.data.rubric import load_rubric
from callqa.data.schema import CallRecord, SchemaError, Utterance, read_calls, read_utterances, write_records

CALL = {
    "id": "c1",
    "audio": "audio/c1.wav",
    "sample_rate": 8000,
    "channels": {"agent": 0, "customer": 1},
    "duration": 10.0,
    "agent_id": "A1",
    "started_at": "2026-01-05T09:00:00",
    "turns": [{"speaker": "agent", "start": 0.5, "end": 2.0, "text": "您好", "emotion": "neutral"}],
    "inspections": [
        {
            "inspector_id": "QA01",
            "at": "2026-01-06T09:00:00",
            "items": {"greeting": 8},
            "total": 92,
            "kind": "sample",
        }
    ],
}


def _write(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    return path


def test_call_round_trip(tmp_path: Path) -> None:
    calls = read_calls(_write(tmp_path / "calls.jsonl", [CALL]))
    write_records(tmp_path / "again.jsonl", calls)
    assert read_calls(tmp_path / "again.jsonl") == calls
    assert calls[0].channel_of("customer") == 1


@pytest.mark.parametrize(
    ("patch", "field"),
    [
        ({"turns": [{"speaker": "agent", "start": 3.0, "end": 2.0, "text": "x"}]}, "turns.0"),
        ({"turns": [{"speaker": "boss", "start": 0.0, "end": 2.0, "text": "x"}]}, "turns.0.speaker"),
        (
            {"turns": [{"speaker": "agent", "start": 0.0, "end": 2.0, "text": "x", "emotion": "bored"}]},
            "turns.0.emotion",
        ),
        ({"duration": -1}, "duration"),
        ({"channels": {"agent": 0}}, "channels"),
        ({"sample_rate": "fast"}, "sample_rate"),
        ({"turns": [{"speaker": "agent", "start": 0.0, "end": 20.0, "text": "x"}]}, "after the call"),
        (
            {"inspections": [{"inspector_id": "Q", "at": "2026-01-06T09:00:00", "total": 130}]},
            "inspections.0.total",
        ),
        (
            {
                "inspections": [
                    {"inspector_id": "Q", "at": "2026-01-06T09:00:00", "total": 90, "kind": "guess"}
                ]
            },
            "inspections.0.kind",
        ),
        ({"agnet_id": "typo"}, "agnet_id"),
    ],
)
def test_bad_call_names_line_and_field(tmp_path: Path, patch: dict, field: str) -> None:
    path = _write(tmp_path / "calls.jsonl", [CALL, {**CALL, **patch}])
    with pytest.raises(SchemaError) as err:
        read_calls(path)
    msg = str(err.value)
    assert f"{path}:2:" in msg
    assert field in msg


def test_bad_json_line(tmp_path: Path) -> None:
    path = tmp_path / "u.jsonl"
    path.write_text('{"id": "u1", "audio": "a.wav", "duration": 1.0}\n{oops\n', encoding="utf-8")
    with pytest.raises(SchemaError, match=r"u\.jsonl:2: not valid JSON"):
        read_utterances(path)


def test_utterance_requires_positive_duration(tmp_path: Path) -> None:
    path = _write(tmp_path / "u.jsonl", [{"id": "u1", "audio": "a.wav", "duration": 0}])
    with pytest.raises(SchemaError, match=r":1: Utterance duration"):
        read_utterances(path)
    assert Utterance(id="u", audio="a.wav", duration=1.0).offset == 0.0


def test_mono_call_has_no_channel() -> None:
    call = CallRecord.model_validate({**CALL, "channels": "mono"})
    assert call.channel_of("agent") is None


def test_default_rubric_adds_to_100_and_bands() -> None:
    r = load_rubric()
    assert sum(i.points for i in r.items) == 100
    assert {"forbidden", "confidentiality"} <= {i.id for i in r.items if i.fatal}
    assert r.total({"greeting": 8, "polite": 3}) == 89
    assert r.total({"greeting": 50}) == 92  # a deduction never exceeds the item's points
    assert r.total({"greeting": 8}, fatal=["forbidden"]) == 0
    assert [r.band(t) for t in (95, 85, 70, 40)] == ["优秀", "良好", "合格", "不合格"]


def test_rubric_errors_name_the_file(tmp_path: Path) -> None:
    bad = tmp_path / "r.yaml"
    bad.write_text(
        "items:\n  - {id: a, name_zh: 甲, points: 60}\n  - {id: b, name_zh: 乙, points: 30}\n",
        encoding="utf-8",
    )
    with pytest.raises(SchemaError, match=r"r\.yaml: rubric .*add to 90"):
        load_rubric(bad)
    dup = tmp_path / "d.yaml"
    dup.write_text(
        "items:\n  - {id: a, name_zh: 甲, points: 50}\n  - {id: a, name_zh: 乙, points: 50}\n",
        encoding="utf-8",
    )
    with pytest.raises(SchemaError, match="duplicate item ids"):
        load_rubric(dup)
