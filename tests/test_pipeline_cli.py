"""``callqa transcribe`` over a batch with broken files: one line per bad file, the rest go on."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from typer.testing import CliRunner

from callqa.cli import app
from callqa.data.results import CallResult
from callqa.data.schema import CallRecord
from tests.pipeline_fakes import FakeSer, SpyAsr, bad_files


@pytest.fixture
def fake_asr(monkeypatch: pytest.MonkeyPatch) -> SpyAsr:
    """The command loads its ASR through load_asr; a spy stands in for an exported model."""
    spy = SpyAsr()
    monkeypatch.setattr("callqa.serving.asr_onnx.load_asr", lambda path, threads=None: spy)
    return spy


def test_bad_files_are_one_line_each_and_the_batch_goes_on(
    fake_asr: SpyAsr, tiny_corpus: Path, tiny_calls: list[CallRecord], tmp_path: Path
) -> None:
    good = tiny_corpus / tiny_calls[0].audio
    bad = bad_files(tmp_path, good)
    fast = tmp_path / "fast.wav"  # a 192 kHz recording is resampled, not refused
    audio, _ = sf.read(good, dtype="float32")
    sf.write(fast, np.repeat(audio[: 8000 * 10], 24, axis=0), 192000, subtype="FLOAT")
    files = [*bad.values(), good, fast]
    result = CliRunner().invoke(app, ["transcribe", *map(str, files), "-m", "asr.onnx", "--vad", "energy"])
    assert result.exit_code == 1
    assert result.exception is None or isinstance(result.exception, SystemExit)
    assert "Traceback" not in result.output
    errors = [ln for ln in result.stderr.splitlines() if ln.strip()]
    assert len(errors) == len(bad), result.stderr
    for (kind, path), line in zip(bad.items(), errors, strict=True):
        assert line.startswith("error: ") and str(path) in line, (kind, line)
    assert "0 frames" in errors[0] or "empty" in errors[0]
    assert "sample rate 1 Hz" in errors[4] and "3 channels" in errors[5]
    headers = [ln for ln in result.stdout.splitlines() if ln.startswith("== ")]
    assert [h.split(":")[0] for h in headers] == [f"== {good}", f"== {fast}"]


def test_jsonl_is_one_valid_result_per_file(
    fake_asr: SpyAsr, tiny_corpus: Path, tiny_calls: list[CallRecord], tmp_path: Path
) -> None:
    calls = tiny_calls[:2]
    mono = tmp_path / "mono.flac"
    audio, _ = sf.read(tiny_corpus / calls[0].audio, dtype="float32")
    sf.write(mono, audio.mean(axis=1), 8000)
    args = [str(tiny_corpus / c.audio) for c in calls] + [str(mono)]
    result = CliRunner().invoke(
        app, ["transcribe", *args, "-m", "asr.onnx", "--format", "jsonl", "--max-segment", "4"]
    )
    assert result.exit_code == 0, result.output
    records = [CallResult.model_validate(json.loads(ln)) for ln in result.stdout.splitlines()]
    assert [r.id for r in records] == [calls[0].id, calls[1].id, "mono"]
    assert [len(r.channels) for r in records] == [2, 2, 1]
    assert all(r.turns and r.masked and r.version == "1" for r in records)
    assert max(fake_asr.lengths) <= 4 * 8000


def test_emotion_needs_a_model_and_the_format_is_checked(fake_asr: SpyAsr, tmp_path: Path) -> None:
    wav = tmp_path / "x.wav"
    sf.write(wav, np.zeros(8000, np.float32), 8000)
    runner = CliRunner()
    no_model = runner.invoke(app, ["transcribe", str(wav), "-m", "asr.onnx", "--emotion"])
    assert no_model.exit_code == 2 and "--ser-model" in no_model.output
    bad_format = runner.invoke(app, ["transcribe", str(wav), "-m", "asr.onnx", "--format", "xml"])
    assert bad_format.exit_code == 2 and "xml" in bad_format.output
    silent = runner.invoke(app, ["transcribe", str(wav), "-m", "asr.onnx"])
    assert silent.exit_code == 0 and "0 turns" in silent.stdout


def test_emotion_per_turn_through_the_command(
    fake_asr: SpyAsr, monkeypatch: pytest.MonkeyPatch, tiny_corpus: Path, tiny_calls: list[CallRecord]
) -> None:
    monkeypatch.setattr("callqa.serving.ser_onnx.load_ser", lambda path, threads=None: FakeSer())
    good = str(tiny_corpus / tiny_calls[0].audio)
    args = ["transcribe", good, "-m", "asr.onnx", "--emotion", "--ser-model", "ser.onnx"]
    result = CliRunner().invoke(app, [*args, "--format", "jsonl"])
    assert result.exit_code == 0, result.output
    record = CallResult.model_validate(json.loads(result.stdout))
    assert {t.emotion for t in record.turns} == {"angry", "uncertain"} and "ser" in record.models
    table = CliRunner().invoke(app, args).stdout
    assert "[angry 0.90]" in table


def test_warnings_go_to_stderr_and_jsonl_stays_parseable(
    fake_asr: SpyAsr,
    monkeypatch: pytest.MonkeyPatch,
    tiny_corpus: Path,
    tiny_calls: list[CallRecord],
    tmp_path: Path,
) -> None:
    monkeypatch.setattr("callqa.serving.ser_onnx.load_ser", lambda path, threads=None: FakeSer())
    mono = tmp_path / "mono.flac"
    audio, _ = sf.read(tiny_corpus / tiny_calls[0].audio, dtype="float32")
    sf.write(mono, audio.mean(axis=1), 8000)
    args = [
        "transcribe",
        str(mono),
        "-m",
        "asr.onnx",
        "--emotion",
        "--ser-model",
        "ser.onnx",
        "--format",
        "jsonl",
    ]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    record = CallResult.model_validate(json.loads(result.stdout))  # one JSON line and nothing else
    assert record.warnings and "mix of speakers" in " ".join(result.stderr.split())
