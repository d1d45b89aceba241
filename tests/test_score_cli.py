"""``callqa score``: one judged record per call, evidence masked, bad files listed, runs resumed."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from typer.testing import CliRunner

from callqa.cli import app
from callqa.data.constants import CUSTOMER
from callqa.data.pii import find_pii
from callqa.data.rubric import load_rubric
from callqa.data.schema import CallRecord
from callqa.data.scores import CallScore
from callqa.qa.rules import RuleSet
from callqa.qa.sheet import judge_call
from callqa.qa.timeline import CallView
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


def _interrupted(corpus: Path, tmp_path: Path, torn: bool) -> tuple[Path, Path]:
    """A finished run cut back to a partial file of one whole line (and half of the next, ``torn``)."""
    out, partial = tmp_path / "scores.jsonl", tmp_path / "scores.jsonl.partial"
    assert CliRunner().invoke(app, ["score", str(corpus), "--out", str(out)]).exit_code == 0
    first, second = out.read_text(encoding="utf-8").splitlines()[:2]
    partial.write_text(first + "\n" + (second[: len(second) // 2] if torn else ""), encoding="utf-8")
    out.unlink()
    return out, partial


def test_an_interrupted_run_resumes_where_it_stopped(
    tiny_corpus: Path, tiny_calls: list[CallRecord], tmp_path: Path
) -> None:
    out, partial = _interrupted(tiny_corpus, tmp_path, torn=True)
    result = CliRunner().invoke(app, ["-v", "score", str(tiny_corpus), "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "1 kept from an interrupted run" in " ".join(result.output.split())
    assert [s.id for s in _read(out)] == [c.id for c in tiny_calls] and not partial.exists()


def test_a_run_refuses_to_resume_lines_another_set_up_wrote(tiny_corpus: Path, tmp_path: Path) -> None:
    out, partial = _interrupted(tiny_corpus, tmp_path, torn=False)
    result = CliRunner().invoke(app, ["score", str(tiny_corpus), "--raw", "--out", str(out)])
    message = str(result.exception)  # main() prints it as the one-line error
    assert isinstance(result.exception, ValueError)
    assert "scores.jsonl.partial:1" in message and "masked: True (now False)" in message
    assert partial.exists() and not out.exists()  # nothing scored, nothing lost


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


def test_silence_is_not_judged_but_reported(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, tiny_corpus: Path, tiny_calls: list[CallRecord]
) -> None:
    """A dead line must not come out as a call that forgot its greeting and closing: no total, no band,
    judged false with the reason, in the results (not the errors), and the batch goes on."""
    monkeypatch.setattr("callqa.serving.asr_onnx.load_asr", lambda path, threads=None: SpyAsr())
    silent = tmp_path / "silent.wav"
    sf.write(silent, np.zeros((8000 * 30, 2), np.float32), 8000)
    good = tiny_corpus / tiny_calls[0].audio
    out = tmp_path / "s.jsonl"
    result = CliRunner().invoke(app, ["score", str(silent), str(good), "--out", str(out), "-m", "asr.onnx"])
    assert result.exit_code == 0, result.output
    dead, heard = _read(out)
    assert dead.id == "silent" and not dead.judged and dead.total is None and dead.band is None
    assert "no speech" in dead.warnings[0] and not any(i.judged or i.defect for i in dead.items)
    assert heard.judged and heard.total is not None
    assert not (tmp_path / "s.errors.jsonl").exists()


def test_a_call_without_the_agent_is_not_judged(tiny_calls: list[CallRecord]) -> None:
    """Stereo with words only on the customer's side is a wrong channel mapping far more often than an
    agent who never spoke: say so instead of failing every agent item."""
    call = tiny_calls[0]
    only_customer = call.model_copy(update={"turns": [t for t in call.turns if t.speaker == CUSTOMER]})
    s = judge_call(CallView.from_record(only_customer), RuleSet(load_rubric()))
    assert not s.judged and s.total is None and "agent's channel" in s.warnings[0]
    assert judge_call(CallView.from_record(call), RuleSet(load_rubric())).judged


def test_a_killed_batch_resumes_to_what_an_uninterrupted_run_writes(
    tiny_corpus: Path, tiny_calls: list[CallRecord], tmp_path: Path
) -> None:
    """SIGKILL mid-batch (no chance to clean up), then the same command again: no call twice, no torn
    line, and the same records as a run that was never interrupted."""
    import os
    import signal
    import subprocess
    import sys
    import time

    calls = tmp_path / "calls.jsonl"
    with open(calls, "w", encoding="utf-8") as fh:  # enough calls that the kill lands mid-batch
        for k in range(300):
            for c in tiny_calls:
                fh.write(c.model_copy(update={"id": f"{c.id}-{k:03d}"}).model_dump_json() + "\n")
    total = 300 * len(tiny_calls)
    callqa = [str(Path(sys.executable).parent / "callqa"), "score", str(calls)]
    subprocess.run([*callqa, "--out", str(tmp_path / "whole.jsonl")], check=True, capture_output=True)
    out, partial = tmp_path / "killed.jsonl", tmp_path / "killed.jsonl.partial"
    run = subprocess.Popen([*callqa, "--out", str(out)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    while run.poll() is None and (not partial.exists() or partial.stat().st_size < 200_000):
        time.sleep(0.01)
    os.kill(run.pid, signal.SIGKILL)
    run.wait()
    done = len(partial.read_text(encoding="utf-8").splitlines())
    assert not out.exists() and 0 < done < total, done
    subprocess.run([*callqa, "--out", str(out)], check=True, capture_output=True)

    def records(path: Path) -> list[dict]:
        rows = [json.loads(ln) for ln in path.read_text(encoding="utf-8").splitlines()]
        return [{k: v for k, v in r.items() if k != "processing_seconds"} for r in rows]

    resumed = records(out)
    assert len({r["id"] for r in resumed}) == len(resumed) == total
    assert resumed == records(tmp_path / "whole.jsonl")


def test_ray_scores_the_same_records_as_the_local_path(tiny_corpus: Path, tmp_path: Path) -> None:
    """``--ray ''`` starts a local Ray, scores on a pool of two actors and writes what the local path
    writes, in the same order; a rerun resumes from the finished file's partial like the local path."""
    pytest.importorskip("ray")
    runner = CliRunner()
    local, on_ray = tmp_path / "local.jsonl", tmp_path / "ray.jsonl"
    assert runner.invoke(app, ["score", str(tiny_corpus), "--out", str(local)]).exit_code == 0
    result = runner.invoke(
        app, ["score", str(tiny_corpus), "--out", str(on_ray), "--ray", "", "--ray-workers", "2"]
    )
    assert result.exit_code == 0, result.output

    def records(path: Path) -> list[dict]:
        rows = [json.loads(ln) for ln in path.read_text(encoding="utf-8").splitlines()]
        return [{k: v for k, v in r.items() if k != "processing_seconds"} for r in rows]

    assert records(on_ray) == records(local) and len(records(local)) > 1


def test_a_partial_line_that_cannot_be_read_whole_is_scored_again(tmp_path: Path) -> None:
    """A line with an id but no rubric is dropped from the partial file, and its call is not counted
    as done: counting it would leave the call out of the finished file for good."""
    from callqa.serving.score import _finished_ids

    partial = tmp_path / "out.jsonl.partial"
    partial.write_text('{"id": "C1"}\n', encoding="utf-8")
    assert _finished_ids(partial, lambda: {"rubric": "default 1", "masked": True}) == set()
    assert partial.read_text(encoding="utf-8") == ""
