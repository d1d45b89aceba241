"""The ``callqa`` command line: help, synth, corpus stats, and clear failures."""

from __future__ import annotations

import json
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
    train = runner.invoke(app, ["train", "asr", "--help"])
    assert train.exit_code == 0 and "--config" in train.output


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
