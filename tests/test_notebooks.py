"""Every notebook in notebooks/ runs from top to bottom on the tiny corpus and draws its pictures."""

from __future__ import annotations

import os
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient
from typer.testing import CliRunner

from callqa.cli import app
from callqa.data.schema import CallRecord
from tests.qa_fixtures import train_on_truth

NOTEBOOKS = sorted((Path(__file__).parents[1] / "notebooks").glob("*.ipynb"))


@pytest.fixture(scope="module")
def qa_report(
    tiny_corpus: Path, tiny_calls: list[CallRecord], tmp_path_factory: pytest.TempPathFactory
) -> Path:
    root = tmp_path_factory.mktemp("nb")
    heard, model = train_on_truth(tiny_corpus, tiny_calls, root)
    runner = CliRunner()
    evaluate = [
        "evaluate",
        "qa",
        str(model),
        "--corpus",
        str(tiny_corpus),
        "--heard",
        str(heard),
        "--out",
        str(root / "eval"),
        "--split",
        "all",
        "--n-boot",
        "20",
    ]
    assert runner.invoke(app, evaluate).exit_code == 0
    return root / "eval" / "qa_eval.json"


def test_there_is_a_notebook() -> None:
    assert NOTEBOOKS


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_runs_and_draws(
    path: Path, tiny_corpus: Path, qa_report: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CALLQA_CORPUS", str(tiny_corpus))
    monkeypatch.setenv("CALLQA_QA_REPORT", str(qa_report))
    monkeypatch.delenv("MPLBACKEND", raising=False)  # the kernel's inline backend is what draws into cells
    nb = nbformat.read(path, as_version=4)
    NotebookClient(
        nb, timeout=300, kernel_name="python3", resources={"metadata": {"path": os.getcwd()}}
    ).execute()
    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])]
    assert not [o for o in outputs if o.get("output_type") == "error"]
    images = [o for o in outputs if "image/png" in o.get("data", {})]
    assert len(images) >= 3  # agreement, inspectors, flips (and risk when there is a consensus)
