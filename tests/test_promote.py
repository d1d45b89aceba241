"""``callqa promote``: the champion alias moves only when every gate passes; a worse model, a failed
parity check, a costly int8 variant or another evaluation set is refused, with its reasons recorded."""

from __future__ import annotations

import json
from pathlib import Path

import mlflow
import numpy as np
import pytest
from typer.testing import CliRunner

from callqa.cli import app
from callqa.export.promote import ALIAS, Evidence, decide


def _qa(
    tmp_path: Path,
    name: str,
    qwk: float,
    corpus: str = "qa-eval",
    per_item: dict | None = None,
    fingerprint: str | None = None,
) -> tuple[Path, Path]:
    """A transparent QA model file and an evaluation report that gives it ``qwk`` (and ``per_item``
    totals, when given, for the paired interval)."""
    model = tmp_path / f"{name}.json"
    model.write_text(json.dumps({"kind": "qa-linear", "items": {}}), encoding="utf-8")
    report = tmp_path / f"{name}-eval.json"
    qwk_ci = [qwk, qwk - 0.05, min(1.0, qwk + 0.03)]
    body = {"corpus": corpus, "split": "test", "totals": {"model_vs_consensus": {"qwk": qwk_ci}}}
    if per_item is not None:
        body["per_item"] = per_item
    if fingerprint is not None:
        body["corpus_fingerprint"] = fingerprint
    report.write_text(json.dumps(body), encoding="utf-8")
    return model, report


def _identity_onnx(path: Path) -> Path:
    """A one-node ONNX graph carrying a metadata entry, as an export's would."""
    import onnx
    from onnx import TensorProto, helper

    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [None, 2])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [None, 2])
    graph = helper.make_graph([helper.make_node("Identity", ["x"], ["y"])], "g", [x], [y])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.metadata_props.add(key="callqa.kind", value=path.stem)
    onnx.save(model, path)
    return path


def _ser(tmp_path: Path, name: str, ua: float, parity: bool, ua_change: float) -> tuple[Path, Path]:
    """A SER export folder (a tiny ONNX file and its export report) and its evaluation."""
    folder = tmp_path / name
    folder.mkdir()
    _identity_onnx(folder / "ser.onnx")
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
    # the same folder regenerated with other calls: its fingerprint differs, so it is not the same set
    code, out = _promote(uri, "qa", *_qa(tmp_path, "regenerated", 0.99, fingerprint="5eed0f"))
    assert code == 1 and "NOT COMPARABLE" in out and "5eed0f:test" in out


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
    local, source = resolve("models:/callqa-ser@champion", "ser", uri, tmp_path / "got")
    assert local.read_bytes() == (tmp_path / "good" / "ser.onnx").read_bytes()  # the ONNX flavour's file
    assert source == "models:/callqa-ser/1"  # what a served record names: the version, not a temp path
    flavours = mlflow.models.get_model_info("models:/callqa-ser@champion").flavors
    assert "onnx" in flavours
    plain = tmp_path / "plain.onnx"
    assert resolve(plain, "ser", uri, tmp_path / "got") == (plain, str(plain))  # a file stays a file
    with pytest.raises(ValueError, match="callqa-asr@champion"):
        resolve("models:/callqa-asr@champion", "asr", uri, tmp_path / "got")


def _totals(seed: int, noise: float, n: int = 120) -> dict[str, list[float]]:
    """Per-call [model, consensus] totals: the same consensus for every seed, the model off by ``noise``."""
    rng = np.random.default_rng(0)
    consensus = rng.integers(40, 100, n).astype(float)
    model = np.clip(consensus + np.random.default_rng(seed).normal(0, noise, n), 0, 100)
    return {f"C{k:04d}": [float(m), float(c)] for k, (m, c) in enumerate(zip(model, consensus, strict=True))}


def test_the_paired_interval_refuses_a_model_worse_call_by_call(tmp_path: Path) -> None:
    """Within the point tolerance, but worse on the same calls: the paired interval of the gain lies
    below zero, so it is refused; a model as good as the champion, noise apart, is not."""
    from callqa.evaluation.paired import METRICS

    uri = f"sqlite:///{tmp_path}/mlflow.db"
    champ = _totals(1, 3.0)
    # every third call a point further from the consensus
    worse = {k: [m + np.sign(m - c) * (i % 3 == 0), c] for i, (k, (m, c)) in enumerate(champ.items())}
    same = _totals(2, 3.0)
    runs = {"c": champ, "w": worse, "s": same}
    qwk = {k: METRICS["qwk"](np.array(list(v.values()))) for k, v in runs.items()}
    assert 0 < qwk["c"] - qwk["w"] < 0.005  # the point test alone lets it through
    assert _promote(uri, "qa", *_qa(tmp_path, "champ", qwk["c"], per_item=champ))[0] == 0
    code, out = _promote(uri, "qa", *_qa(tmp_path, "worse", qwk["w"], per_item=worse))
    assert code == 1 and "no worse than the champion's" in out and "WORSE item by item" in out
    assert "over 120 items" in out and _champion(uri, "callqa-qa") == "1"
    code, out = _promote(uri, "qa", *_qa(tmp_path, "same", qwk["s"], per_item=same))
    assert code == 0 and "not worse item by item" in out and _champion(uri, "callqa-qa") == "3"


def test_paired_difference_of_cer_and_ua() -> None:
    from callqa.evaluation.paired import paired_difference

    rng = np.random.default_rng(0)
    chars = rng.integers(5, 30, 200)
    old = {f"u{k}": [int(c * 0.2), int(c)] for k, c in enumerate(chars)}
    new = {k: [e + 1, n] for k, (e, n) in old.items()}  # one more error in every utterance
    diff, n = paired_difference("cer", new, old) or (None, 0)
    assert n == 200 and diff is not None and 0 < diff.low <= diff.value <= diff.high
    assert diff.value == pytest.approx(200 / chars.sum(), rel=1e-6)
    labels = rng.integers(0, 5, 300)
    right = {f"t{k}": [int(y), int(y)] for k, y in enumerate(labels)}
    assert paired_difference("ua", right, right)[0].as_list() == [0.0, 0.0, 0.0]  # type: ignore[index]
    assert paired_difference("ua", {"a": [0, 0]}, {"a": [0, 1]}) is None  # one common item: no interval
