"""``callqa score``: one judged record per call, evidence masked, bad files listed, runs resumed."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from callqa.cli import app
from callqa.data.pii import find_pii
from callqa.data.rubric import load_rubric
from callqa.data.schema import CallRecord
from callqa.data.scores import CallScore
from tests.pipeline_fakes import SpyAsr, bad_files


def _read(path: Path) -> list[CallScore]:
    return [CallScore.model_validate(json.loads(ln)) for ln in path.read_text(encoding="utf-8").splitlines()]


def test_a_calls_file_is_judged_from_its_transcripts(
    tiny_corpus: Path, tiny_calls: list[CallRecord], tmp_path: Path
) -> None:
    out = tmp_path / "scores.jsonl"
    result = CliRunner().invoke(app, ["score", str(tiny_corpus / "calls.jsonl"), "--out", str(out)])
    assert result.exit_code == 0, result.output
    scores = _read(out)
    assert [s.id for s in scores] == [c.id for c in tiny_calls]
    rubric = load_rubric()
    truth = {c.id: set(c.truth.defects) for c in tiny_calls if c.truth}
    for s in scores:
        assert [i.item for i in s.items] == rubric.ids
        lost = {i.item: i.points_lost for i in s.items}
        assert s.total == pytest.approx(rubric.total(lost, s.fatal)) and s.band == rubric.band(s.total)
        assert all(e.item in rubric.ids and e.evidence is not None for e in s.events)
        assert ("forbidden" in s.fatal) == ("forbidden" in truth[s.id])  # the fatal rules on clean text
    leaks = [c.id for c in tiny_calls if c.truth and "confidentiality" in c.truth.defects]
    assert leaks and all("confidentiality" in s.fatal for s in scores if s.id in leaks)
    assert not any(find_pii(e.evidence) for s in scores for e in s.events)  # masked by default
    assert not (tmp_path / "scores.errors.jsonl").exists()


def test_an_interrupted_run_resumes_where_it_stopped(
    tiny_corpus: Path, tiny_calls: list[CallRecord], tmp_path: Path
) -> None:
    out = tmp_path / "scores.jsonl"
    runner = CliRunner()
    assert runner.invoke(app, ["score", str(tiny_corpus), "--out", str(out)]).exit_code == 0
    first, second = out.read_text(encoding="utf-8").splitlines()[:2]
    partial = tmp_path / "scores.jsonl.partial"
    partial.write_text(first + "\n" + second[: len(second) // 2], encoding="utf-8")  # torn mid-line
    out.unlink()
    result = runner.invoke(app, ["-v", "score", str(tiny_corpus), "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "1 kept from an interrupted run" in " ".join(result.output.split())
    assert [s.id for s in _read(out)] == [c.id for c in tiny_calls] and not partial.exists()


def test_audio_with_bad_files_lists_them_and_scores_the_rest(
    monkeypatch: pytest.MonkeyPatch, tiny_corpus: Path, tiny_calls: list[CallRecord], tmp_path: Path
) -> None:
    monkeypatch.setattr("callqa.serving.asr_onnx.load_asr", lambda path, threads=None: SpyAsr())
    good = tiny_corpus / tiny_calls[0].audio
    bad = {k: v for k, v in bad_files(tmp_path, good).items() if k != "folder"}
    out = tmp_path / "scores.jsonl"
    args = ["score", *map(str, [*bad.values(), good]), "--out", str(out), "-m", "asr.onnx"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 1 and "Traceback" not in result.output
    (scored,) = _read(out)
    assert scored.id == good.stem and scored.call is not None and scored.call.turns
    assert scored.models["asr"].kind and scored.masked
    errors = [json.loads(ln) for ln in (tmp_path / "scores.errors.jsonl").read_text().splitlines()]
    assert [e["input"] for e in errors] == [str(p) for p in bad.values()]
    assert all(e["input"] in e["error"] for e in errors)


def test_without_a_model_audio_is_an_error_not_a_crash(
    tmp_path: Path, tiny_corpus: Path, tiny_calls: list[CallRecord]
) -> None:
    out = tmp_path / "s.jsonl"
    result = CliRunner().invoke(app, ["score", str(tiny_corpus / tiny_calls[0].audio), "--out", str(out)])
    assert result.exit_code == 1 and "--model" in (tmp_path / "s.errors.jsonl").read_text()
