"""The whole export step behind ``callqa export asr``: ONNX, parity, int8 and its measured CER cost."""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

from callqa.data.files import write_json
from callqa.evaluation.asr_eval import split_cer
from callqa.models.asr.checkpoint import load_asr_checkpoint
from callqa.serving.export import check_parity, export_asr_onnx, quantize_int8

log = logging.getLogger(__name__)

#: Largest |Δ log-probability| between PyTorch and onnxruntime that export accepts.
PARITY_TOLERANCE = 1e-3


def export_asr(
    checkpoint: str | os.PathLike[str],
    out: str | os.PathLike[str],
    int8: bool = True,
    corpus: str | os.PathLike[str] | None = None,
    limit: int = 200,
) -> dict[str, Any]:
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
    if run_id and hp.get("mlflow_tracking_uri"):
        _log_to_run(hp["mlflow_tracking_uri"], run_id, out, report)
    return report


def _log_to_run(tracking_uri: str, run_id: str, out: Path, report: dict[str, Any]) -> None:
    """Attach the ONNX files and gate results to the training run that made the checkpoint."""
    import mlflow

    client = mlflow.MlflowClient(tracking_uri)
    for name in ("asr.onnx", "asr.int8.onnx", "export.json"):
        if (out / name).exists():
            client.log_artifact(run_id, str(out / name), "onnx")
    client.log_metric(run_id, "export/parity_max_abs_diff", report["parity"]["max_abs_diff"])
    if "cer_change" in report.get("int8", {}):
        client.log_metric(run_id, "export/int8_cer_change", report["int8"]["cer_change"])
    log.info("logged the ONNX export to MLflow run %s", run_id)
