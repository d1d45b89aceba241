"""``callqa promote``: the champion alias moves only when every gate passes; a worse model, a failed
parity check, a costly int8 variant or another evaluation set is refused, with its reasons recorded."""

from __future__ import annotations

import json
from pathlib import Path

import mlflow
import pytest
from typer.testing import CliRunner

from callqa.cli import app
from callqa.export.promote import ALIAS, Evidence, decide


def _qa(tmp_path: Path, name: str, qwk: float, corpus: str = "qa-eval") -> tuple[Path, Path]:
    """A transparent QA model file and an evaluation report that gives it ``qwk``."""
    model = tmp_path / f"{name}.json"
    model.write_text(json.dumps({"kind": "qa-linear", "items": {}}), encoding="utf-8")
    report = tmp_path / f"{name}-eval.json"
    qwk_ci = [qwk, qwk - 0.05, min(1.0, qwk + 0.03)]
    body = {"corpus": corpus, "split": "test", "totals": {"model_vs_consensus": {"qwk": qwk_ci}}}
    report.write_text(json.dumps(body), encoding="utf-8")
    return model, report


def _ser(tmp_path: Path, name: str, ua: float, parity: bool, ua_change: float) -> tuple[Path, Path]:
    """A SER export folder (a stand-in ONNX file and its export report) and its evaluation."""
    folder = tmp_path / name
    folder.mkdir()
    (folder / "ser.onnx").write_bytes(b"onnx")
    meta = {"parity": {"passed": parity}, "int8": {"ua_change": ua_change}}
    (folder / "export.json").write_text(json.dumps(meta), encoding="utf-8")
    report = tmp_path / f"{name}-metrics.json"
    report.write_text(
        json.dumps({"corpus": "ser-eval", "split": "test", "metrics": {"ua": ua}}), encoding="utf-8"
    )
    return folder, report


def _promote(uri: str, kind: str, export: Path, report: Path) -> tuple[int, str]:
    result = CliRunner().invoke(
        app, ["promote", kind, str(export), "--eval", str(report), "--tracking-uri", uri]
    )
    return result.exit_code, " ".join(result.output.split())


def _champion(uri: str, name: str) -> str:
    return str(mlflow.MlflowClient(uri, registry_uri=uri).get_model_version_by_alias(name, ALIAS).version)


def test_the_champion_moves_only_for_a_model_that_passes_every_gate(tmp_path: Path) -> None:
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    code, out = _promote(uri, "qa", *_qa(tmp_path, "first", 0.90))
    assert code == 0 and "version 1: champion" in out and "no champion yet" in out
    code, out = _promote(uri, "qa", *_qa(tmp_path, "better", 0.93))
    assert code == 0 and _champion(uri, "callqa-qa") == "2"
    # deliberately worse: refused, registered as a tried version, the alias stays where it was
    code, out = _promote(uri, "qa", *_qa(tmp_path, "worse", 0.85))
    assert code == 1 and "version 3: refused" in out and "WORSE than the champion's 0.9300" in out
    assert _champion(uri, "callqa-qa") == "2"
    tags = mlflow.MlflowClient(uri, registry_uri=uri).get_model_version("callqa-qa", "3").tags
    assert tags["callqa.decision"] == "refused" and "WORSE" in tags["callqa.reasons"]
    # within the tolerance is no worse; on another evaluation set it cannot be compared at all
    assert _promote(uri, "qa", *_qa(tmp_path, "tie", 0.927))[0] == 0
    code, out = _promote(uri, "qa", *_qa(tmp_path, "elsewhere", 0.99, corpus="other-set"))
    assert code == 1 and "NOT COMPARABLE" in out and _champion(uri, "callqa-qa") == "4"


def test_parity_and_int8_gates(tmp_path: Path) -> None:
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    code, out = _promote(uri, "ser", *_ser(tmp_path, "broken", 0.90, parity=False, ua_change=0.0))
    assert code == 1 and "parity FAILED" in out
    code, out = _promote(uri, "ser", *_ser(tmp_path, "costly", 0.90, parity=True, ua_change=-0.03))
    assert code == 1 and "OVER 0.01" in out
    code, out = _promote(uri, "ser", *_ser(tmp_path, "good", 0.90, parity=True, ua_change=-0.002))
    assert code == 0 and _champion(uri, "callqa-ser") == "3"
    code, out = _promote(uri, "qa", tmp_path / "nothing-here", _qa(tmp_path, "x", 0.9)[1])
    assert code != 0


@pytest.mark.parametrize(("new", "old", "promoted"), [(0.205, 0.200, True), (0.210, 0.200, False)])
def test_lower_is_better_for_cer(new: float, old: float, promoted: bool) -> None:
    def cer(v: float) -> Evidence:
        return Evidence("asr", "cer", v, False, "corpus:test", parity=True, int8_cost=0.004)

    assert decide(cer(new), cer(old)).promote is promoted


def test_the_server_finds_the_champion_by_registry_reference(tmp_path: Path) -> None:
    from callqa.serving.registry import resolve

    uri = f"sqlite:///{tmp_path}/mlflow.db"
    assert _promote(uri, "ser", *_ser(tmp_path, "good", 0.90, parity=True, ua_change=0.0))[0] == 0
    elsewhere = f"sqlite:///{tmp_path}/elsewhere.db"  # as in a fresh process: MLflow's globals point away
    mlflow.set_tracking_uri(elsewhere)
    mlflow.set_registry_uri(elsewhere)
    local = resolve("models:/callqa-ser@champion", "ser", uri)
    assert local.name == "ser.onnx" and local.read_bytes() == b"onnx"
    assert resolve(tmp_path / "plain.onnx", "ser", uri) == tmp_path / "plain.onnx"  # a file stays a file
    with pytest.raises(ValueError, match="callqa-asr@champion"):
        resolve("models:/callqa-asr@champion", "asr", uri)
