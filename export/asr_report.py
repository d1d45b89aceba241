"""The whole export step behind ``callqa export asr``: ONNX, parity, int8 and its measured CER cost."""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

from callqa.data.files import write_json
from callqa.evaluation.asr_eval import split_cer
from callqa.evaluation.tracking import artifact_location
from callqa.export.asr import check_parity, export_asr_onnx, quantize_int8
from callqa.models.asr.checkpoint import load_asr_checkpoint
from callqa.paths import default_tracking_uri

log = logging.getLogger(__name__)

#: Largest |Δ log-probability| between PyTorch and onnxruntime that export accepts.
PARITY_TOLERANCE = 1e-3


def export_asr(
    checkpoint: str | os.PathLike[str],
    out: str | os.PathLike[str],
    int8: bool = True,
    corpus: str | os.PathLike[str] | None = None,
    limit: int = 200,
    tracking_uri: str | None = None,
) -> dict[str, Any]:
    """Export, gate and measure; the results go to ``export.json`` and to MLflow (see
    :func:`_log_export`). ``tracking_uri`` names the store to log to instead of the checkpoint's own."""
    out = Path(out)
    model, tokenizer, hp = load_asr_checkpoint(checkpoint)
    run_id = hp.get("mlflow_run_id")
    meta = {"checkpoint": Path(checkpoint).name, **({"run_id": run_id} if run_id else {})}
    fp32 = export_asr_onnx(model, tokenizer, out / "asr.onnx", meta)
    parity = check_parity(model, tokenizer, fp32)
    worst = max(r.max_abs_diff for r in parity)
    passed = worst <= PARITY_TOLERANCE and all(r.same_text for r in parity)
    report: dict[str, Any] = {
        "onnx": str(fp32),
        "parameters": model.num_parameters(),
        "parity": {
            "passed": passed,
            "tolerance": PARITY_TOLERANCE,
            "max_abs_diff": worst,
            "cases": [r.__dict__ for r in parity],
        },
    }
    log.info(
        "parity: max |Δ| %.2e over %d shapes, same greedy text: %s -> %s",
        worst,
        len(parity),
        all(r.same_text for r in parity),
        "PASS" if passed else "FAIL",
    )
    if int8:
        q = quantize_int8(fp32, out / "asr.int8.onnx")
        report["int8"] = {"onnx": str(q), "bytes": q.stat().st_size, "fp32_bytes": fp32.stat().st_size}
        if corpus is not None:
            c32, c8 = split_cer(fp32, corpus, limit=limit), split_cer(q, corpus, limit=limit)
            report["int8"].update({"test_cer_fp32": c32, "test_cer_int8": c8, "cer_change": c8 - c32})
            log.info(
                "int8 check on the first %d test utterances: CER fp32 %.4f, int8 %.4f (Δ %+.4f)",
                limit,
                c32,
                c8,
                c8 - c32,
            )
    write_json(out / "export.json", report)
    _log_export(tracking_uri, hp, out, report)
    return report


def _log_export(tracking_uri: str | None, hp: dict[str, Any], out: Path, report: dict[str, Any]) -> None:
    """Attach the ONNX files and gate results to the training run that made the checkpoint, when that
    run is in the store: a checkpoint remembers the run and store it was trained in, which exist only
    on the machine that trained it. A checkpoint from elsewhere (the shipped base, a colleague's) gets
    a new run in the ``export`` experiment, tagged with the run it names; if no store can be opened,
    the export stands on its own files. Either way MLflow never fails an export that passed its gates."""
    import mlflow

    run_id, recorded = hp.get("mlflow_run_id"), hp.get("mlflow_tracking_uri")
    if not tracking_uri and not run_id:
        return
    uri = tracking_uri or (recorded if recorded and _store_exists(recorded) else default_tracking_uri())
    new = None
    try:
        if uri.startswith("sqlite:///"):
            Path(uri.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
        client = mlflow.MlflowClient(uri)
        if not (run_id and _has_run(client, run_id)):
            tags = {"callqa.source_run_id": run_id, "callqa.source_tracking_uri": recorded} if run_id else {}
            new = client.create_run(_experiment_id(client, "export", uri), tags=tags).info.run_id
            if run_id:
                log.warning(
                    "the checkpoint's MLflow run %s is not in %s (trained elsewhere): "
                    "logging the export to new run %s in experiment 'export' of %s",
                    run_id,
                    recorded,
                    new,
                    uri,
                )
            run_id = new
        for name in ("asr.onnx", "asr.int8.onnx", "export.json"):
            if (out / name).exists():
                client.log_artifact(run_id, str(out / name), "onnx")
        client.log_metric(run_id, "export/parity_max_abs_diff", report["parity"]["max_abs_diff"])
        if "cer_change" in report.get("int8", {}):
            client.log_metric(run_id, "export/int8_cer_change", report["int8"]["cer_change"])
        if new:
            client.set_terminated(new)
    except Exception as exc:  # a store that cannot be opened or written must not undo a good export
        log.warning("could not log the export to MLflow at %s (%s); the files in %s stand", uri, exc, out)
        return
    log.info("logged the ONNX export to MLflow run %s", run_id)


def _store_exists(uri: str) -> bool:
    """Whether a local store is there (opening a missing SQLite file would create an empty store in a
    folder that may not exist); server URIs are taken as there and tried."""
    if uri.startswith("sqlite:///"):
        return Path(uri.removeprefix("sqlite:///")).is_file()
    if uri.startswith("file:"):
        return Path(uri.removeprefix("file:").removeprefix("//")).is_dir()
    return "://" in uri or Path(uri).is_dir()


def _has_run(client: Any, run_id: str) -> bool:
    from mlflow.exceptions import MlflowException

    try:
        client.get_run(run_id)
    except MlflowException:
        return False
    return True


def _experiment_id(client: Any, name: str, uri: str) -> str:
    exp = client.get_experiment_by_name(name)
    return exp.experiment_id if exp else client.create_experiment(name, artifact_location(uri))
