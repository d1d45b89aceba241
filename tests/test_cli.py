"""The ``callqa`` command line: help, synth, corpus stats, and clear failures."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from typer.testing import CliRunner

from callqa.cli import app

runner = CliRunner()


def test_help_lists_commands() -> None:
    result = runner.invoke(app, ["--help"])
    assert result.exit_code == 0
    for cmd in ("synth", "corpus", "quickstart"):
        assert cmd in result.output
    assert "--preset" in runner.invoke(app, ["synth", "--help"]).output
    for cmd in ("asr", "whisper"):  # the trainer's own options, from its LightningCLI parser
        train = runner.invoke(app, ["train", cmd, "--help"])
        assert train.exit_code == 0, train.output
        assert f"callqa train {cmd}" in train.output
        for option in ("--config", "--trainer.max_epochs", "--model.lr", "--data.corpora"):
            assert option in train.output


def test_synth_then_stats(tmp_path: Path) -> None:
    out = tmp_path / "c"
    result = runner.invoke(
        app,
        [
            "synth",
            "--preset",
            "tiny",
            "--out",
            str(out),
            "--calls",
            "3",
            "--coverage",
            "2",
            "--workers",
            "1",
            "--seed",
            "3",
        ],
    )
    assert result.exit_code == 0, result.output
    info = json.loads((out / "corpus.json").read_text(encoding="utf-8"))
    assert info["counts"]["calls"] == 3 and info["seed"] == 3

    result = runner.invoke(app, ["corpus", "stats", str(out)])
    assert result.exit_code == 0, result.output
    assert (out / "stats" / "stats.json").exists()
    assert list((out / "stats").glob("*.png"))


def test_unknown_preset_is_a_clear_error(tmp_path: Path) -> None:
    result = runner.invoke(app, ["synth", "--preset", "huge", "--out", str(tmp_path / "x")])
    assert result.exit_code != 0
    assert "unknown preset 'huge'" in str(result.exception)


def _callqa(*args: str) -> subprocess.CompletedProcess[str]:
    """The installed entry point, main(), where expected errors become one line."""
    code = "from callqa.cli import main; main()"
    return subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, timeout=300)


def test_a_bad_record_is_one_line_without_traceback(tiny_corpus: Path, tmp_path: Path) -> None:
    lines = (tiny_corpus / "calls.jsonl").read_text(encoding="utf-8").splitlines()[:3]
    bad = json.loads(lines[2])
    bad["turns"][0]["emotion"] = "bored"
    (tmp_path / "calls.jsonl").write_text("\n".join([*lines[:2], json.dumps(bad)]) + "\n", encoding="utf-8")
    result = _callqa("corpus", "stats", str(tmp_path))
    assert result.returncode == 1
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith(f"error: {tmp_path / 'calls.jsonl'}:3: CallRecord turns.0.emotion:")
    assert "Traceback" not in result.stderr + result.stdout

    verbose = _callqa("--verbose", "corpus", "stats", str(tmp_path))
    assert verbose.returncode == 1 and "Traceback" in verbose.stderr


def test_unknown_names_and_missing_files_are_one_line(tmp_path: Path) -> None:
    preset = _callqa("synth", "--preset", "huge", "--out", str(tmp_path / "x"))
    assert preset.returncode == 1
    assert preset.stderr.strip().splitlines() == [
        "error: unknown preset 'huge'; choose one of tiny, small, large or pass a config file"
    ]
    missing = _callqa("corpus", "stats", str(tmp_path / "nowhere"))
    assert missing.returncode == 1 and missing.stderr.count("\n") == 1
    assert missing.stderr.startswith(f"error: {tmp_path / 'nowhere'}")
    (tmp_path / "text.onnx").write_text("not a model", encoding="utf-8")
    for model in ("none.onnx", "text.onnx"):
        served = _callqa("serve", "-m", str(tmp_path / model), "--port", "0")
        assert served.returncode == 1 and "Traceback" not in served.stderr
        assert served.stderr.startswith(f"error: {tmp_path / model}: cannot open as an ONNX model")
