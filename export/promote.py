"""``callqa promote``: register an exported model in the MLflow Model Registry and move its ``champion``
alias only when every gate passes.

The gates, each with its reason written down whatever the outcome:
- **parity**: the export's own check (ONNX against PyTorch) passed;
- **int8**: where an int8 variant was made, what it costs on the test set is within ``int8_bound``
  (ASR: CER rise; SER: UA drop);
- **no worse than the champion**, on the same evaluation set. Two tests, and either refuses:
  the point estimate is worse by more than ``tolerance``; or the paired bootstrap interval of the
  difference (evaluation.paired: both models' per-item results resampled together) lies wholly on
  the worse side of zero, so the model is worse call by call even if by less than the tolerance. The
  interval can refuse but never excuse: a wide interval does not let a worse point estimate through.
  Separate intervals are not used: on the same calls they overlap even when one model is plainly
  worse (the neural QA model's [0.786, 0.978] holds the transparent one's 0.925 on the quickstart's 60
  calls). A champion registered without per-item results is compared by point estimate alone, and
  the reasons say so. A model evaluated on another set is refused as not comparable.

ONNX models are logged with MLflow's ONNX flavour (their export report as an extra file); the
transparent QA model, plain JSON read by numpy, is logged as a file. Every candidate is registered as
a new version, promoted or not, tagged with its metric and decision, so the registry is the record of
what was tried. The first model of a name has no champion to beat.
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from callqa.evaluation.paired import paired_difference, per_item

log = logging.getLogger(__name__)

ALIAS = "champion"
#: What int8 may cost on the test set: CER points for ASR, UA points for SER.
INT8_BOUND = 0.01
#: How much worse a point estimate may be and still count as no worse.
TOLERANCE = 0.005


@dataclass
class Evidence:
    """What the gates read of one model: its export report and its evaluation."""

    kind: str
    metric: str
    value: float
    higher_is_better: bool
    evaluated_on: str
    interval: tuple[float, float] | None = None
    parity: bool = False
    int8_cost: float | None = None
    files: list[str] = field(default_factory=list)
    #: Item id -> what the metric is recomputed from (evaluation.paired); not kept in the registry's
    #: tags, which are short, but in the evaluation report logged beside the model.
    items: dict[str, list[float]] = field(default_factory=dict, repr=False)
    #: What makes two evaluations comparable: the corpus's fingerprint (its path where it has none,
    #: as a real export has not) and the split. The path alone would let a regenerated corpus in the
    #: same folder pass for the same calls.
    dataset: str = ""

    def summary(self) -> dict[str, Any]:
        """The evidence as tagged on a registered version: everything but the per-item rows."""
        return {k: v for k, v in asdict(self).items() if k != "items"}


@dataclass
class Decision:
    promote: bool
    reasons: list[str]


def _metric(kind: str, report: dict[str, Any]) -> tuple[str, float, bool, tuple[float, float] | None]:
    if kind == "asr":
        return "cer", float(report["cer"]), False, None
    if kind == "ser":
        return "ua", float(report["metrics"]["ua"]), True, None
    if kind == "qa":
        qwk = report["totals"]["model_vs_consensus"]["qwk"]
        return "qwk", float(qwk[0]), True, (float(qwk[1]), float(qwk[2]))
    raise ValueError(f"{kind}: promote asr, ser or qa")


def evidence(kind: str, export: Path, evaluation: Path) -> Evidence:
    """Read the export report beside ``export`` (a folder with ``export.json``, or a transparent QA
    model's JSON) and the evaluation report ``evaluation`` of the same model."""
    report = json.loads(Path(evaluation).read_text(encoding="utf-8"))
    metric, value, higher, interval = _metric(kind, report)
    where = f"{report.get('corpus')}:{report.get('split')}"
    data = report.get("corpus_fingerprint")
    dataset = f"{data}:{report.get('split')}" if data and data != "?" else where
    ev = Evidence(kind, metric, value, higher, where, interval, items=per_item(report), dataset=dataset)
    export = Path(export)
    if export.is_file() and export.suffix == ".json":  # the transparent QA model: numpy, nothing exported
        ev.parity, ev.files = True, [str(export)]
        return ev
    meta_path = export / "export.json"
    if not meta_path.is_file():
        raise ValueError(f"{export}: no export.json (export the model with callqa export {kind} first)")
    meta = json.loads(meta_path.read_text(encoding="utf-8"))
    ev.parity = bool((meta.get("parity") or {}).get("passed"))  # every export records its own verdict
    int8 = meta.get("int8") or {}
    if "cer_change" in int8:
        ev.int8_cost = float(int8["cer_change"])
    elif "ua_change" in int8:
        ev.int8_cost = -float(int8["ua_change"])
    onnx_file = export / f"{kind}.onnx"
    if not onnx_file.is_file():
        raise ValueError(f"{export}: no {onnx_file.name}")
    ev.files = [str(onnx_file), str(meta_path)]
    return ev


def decide(
    new: Evidence,
    champion: Evidence | None,
    int8_bound: float = INT8_BOUND,
    tolerance: float = TOLERANCE,
) -> Decision:
    """Every gate's verdict, and whether all of them passed."""
    reasons, ok = [], True
    ok &= new.parity
    reasons.append(f"parity {'passed' if new.parity else 'FAILED'}")
    if new.int8_cost is None:
        reasons.append("int8: no variant made")
    else:
        fits = new.int8_cost <= int8_bound
        ok &= fits
        reasons.append(
            f"int8 costs {new.int8_cost:+.4f} {new.metric} ({'within' if fits else 'OVER'} {int8_bound})"
        )
    if champion is None:
        reasons.append(f"no champion yet: {new.metric} {new.value:.4f} on {new.evaluated_on}")
        return Decision(ok, reasons)
    if (champion.dataset or champion.evaluated_on) != (new.dataset or new.evaluated_on):
        reasons.append(
            f"NOT COMPARABLE: evaluated on {new.evaluated_on} ({new.dataset}), the champion on "
            f"{champion.evaluated_on} ({champion.dataset or 'no fingerprint'})"
        )
        return Decision(False, reasons)
    sign = 1.0 if new.higher_is_better else -1.0
    worse = sign * (new.value - champion.value) < -tolerance
    ok &= not worse
    verdict = "WORSE than" if worse else "no worse than"
    reasons.append(
        f"{new.metric} {new.value:.4f}: {verdict} the champion's {champion.value:.4f} (tolerance {tolerance})"
    )
    paired = paired_difference(new.metric, new.items, champion.items)
    if paired is None:
        reasons.append("no paired interval: the champion or the candidate has no per-item results")
        return Decision(ok, reasons)
    diff, n = paired
    lo, hi = sorted((sign * diff.low, sign * diff.high))
    shown = f"paired 95 % interval of the gain over {n} items [{lo:+.4f}, {hi:+.4f}]"
    if hi < 0:
        ok = False
        reasons.append(f"{shown}: WORSE item by item")
    else:
        reasons.append(f"{shown}: not worse item by item")
    return Decision(ok, reasons)


def promote(
    kind: str,
    export: str | os.PathLike[str],
    evaluation: str | os.PathLike[str],
    tracking_uri: str,
    name: str | None = None,
    int8_bound: float = INT8_BOUND,
    tolerance: float = TOLERANCE,
) -> tuple[Decision, int]:
    """Register the model as a new version of ``name`` (default ``callqa-KIND``) and move the champion
    alias to it when every gate passes; returns the decision and the version number."""
    import mlflow
    from mlflow.environment_variables import MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR

    from callqa.evaluation.tracking import use_experiment

    MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR.set(False)  # a few small files: bars would only clutter the log
    name = name or f"callqa-{kind}"
    new = evidence(kind, Path(export), Path(evaluation))
    client = mlflow.MlflowClient(tracking_uri, registry_uri=tracking_uri)
    champion = _champion(client, name)
    decision = decide(new, champion, int8_bound, tolerance)
    use_experiment("promotion", tracking_uri)
    with mlflow.start_run(run_name=f"promote-{kind}") as run:
        source = _log_model(new)
        mlflow.log_artifact(str(evaluation), "evaluation")
        mlflow.log_dict({"evidence": new.summary(), **asdict(decision)}, "decision.json")
        mlflow.log_metric(new.metric, new.value)
        mlflow.set_tags({"callqa.decision": "champion" if decision.promote else "refused"})
    _ensure(client, name)
    version = client.create_model_version(name, source or f"runs:/{run.info.run_id}/model", run.info.run_id)
    tags = {
        "callqa.evidence": json.dumps(new.summary()),
        "callqa.decision": "champion" if decision.promote else "refused",
        "callqa.reasons": "; ".join(decision.reasons),
    }
    for k, v in tags.items():
        client.set_model_version_tag(name, version.version, k, v)
    if decision.promote:
        client.set_registered_model_alias(name, ALIAS, version.version)
    log.info("%s v%s %s: %s", name, version.version, tags["callqa.decision"], tags["callqa.reasons"])
    return decision, int(version.version)


def _log_model(ev: Evidence) -> str | None:
    """Log the model's files in the active run: an ONNX model with MLflow's ONNX flavour (its export
    report as an extra file), returning the logged model's URI; anything else as plain files under
    ``model`` (None: the version's source is then the run's folder)."""
    import mlflow

    onnx_files = [f for f in ev.files if f.endswith(".onnx")]
    if not onnx_files:
        for f in ev.files:
            mlflow.log_artifact(f, "model")
        return None
    import onnx

    info = mlflow.onnx.log_model(
        onnx.load(onnx_files[0]),
        name="model",
        save_as_external_data=False,  # one file, as the server loads it, with its metadata inside
        pip_requirements=["onnxruntime"],
        extra_files=[f for f in ev.files if f not in onnx_files],
    )
    return info.model_uri


def _ensure(client: Any, name: str) -> None:
    from mlflow.exceptions import MlflowException

    try:
        client.get_registered_model(name)
    except MlflowException:
        client.create_registered_model(name)


def _champion(client: Any, name: str) -> Evidence | None:
    """The champion's evidence: its summary from the version's tags, its per-item results from the
    evaluation report logged in its run."""
    from mlflow.exceptions import MlflowException

    try:
        version = client.get_model_version_by_alias(name, ALIAS)
    except MlflowException:
        return None
    raw = json.loads(version.tags["callqa.evidence"])
    raw["interval"] = tuple(raw["interval"]) if raw.get("interval") else None
    raw.pop("items", None)
    ev = Evidence(**raw)
    with tempfile.TemporaryDirectory() as tmp:
        try:
            folder = Path(client.download_artifacts(version.run_id, "evaluation", tmp))
        except (MlflowException, OSError) as err:
            log.warning("%s@%s: its evaluation report could not be fetched (%s)", name, ALIAS, err)
            return ev
        for report in sorted(folder.glob("*.json")):
            ev.items = per_item(json.loads(report.read_text(encoding="utf-8")))
    return ev
