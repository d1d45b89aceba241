"""The quickstart's SER step end to end on the tiny corpus: train, export (parity gate), evaluate."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from callqa.training.ser_cli import ser_stage


@pytest.mark.slow
def test_ser_stage_trains_exports_and_reports(
    tiny_corpus: Path, tmp_path: Path, isolated_run: list[str]
) -> None:
    report = ser_stage(
        tiny_corpus,
        tmp_path / "ser",
        extra=[
            "--trainer.max_epochs=1",
            f"--data.cache_dir={tmp_path / 'cache'}",
            *[a for a in isolated_run if "callbacks" not in a and "default_root_dir" not in a],
        ],
    )
    assert report["export"]["parity"]["passed"]
    assert 0.0 <= report["metrics"]["ua"] <= 1.0 and report["turns"] > 0
    saved = json.loads((tmp_path / "ser" / "eval" / "metrics.json").read_text(encoding="utf-8"))
    assert saved["metrics"]["ua"] == report["metrics"]["ua"]
    assert (tmp_path / "ser" / "eval" / "confusion.png").stat().st_size > 0
    assert (tmp_path / "ser" / "eval" / "report.html").is_file()
    assert (tmp_path / "ser" / "export" / "ser.int8.onnx").is_file()
