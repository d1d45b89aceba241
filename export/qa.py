"""``callqa export qa``: ONNX export of a neural QA checkpoint, with its parity gate.

Build time only (imports torch). The graph takes the arrays of :mod:`callqa.models.qa.turn_inputs`
with dynamic batch, turn and character axes, and returns each item's logit and its attention over the
turns. The file carries everything the runtime needs: the model config, the input encoding
(vocabulary, feature standardisation), the items with their calibration, thresholds and typical
points, and the rubric it was trained on. Parity: eager and onnxruntime agree within 1e-3 on every
logit and on every decision, on random calls of several sizes and, given a corpus and what the
pipeline heard in it, on its real calls.
"""

from __future__ import annotations

import io
import json
import logging
import os
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import torch

from callqa import __version__
from callqa.data.files import write_json
from callqa.export.asr import save_onnx
from callqa.models.checkpoint import CheckpointError, model_state, read_checkpoint
from callqa.models.qa.turn_inputs import (
    INPUT_NAMES,
    TURN_FEATURES,
    CallArrays,
    TurnEncoding,
    batch_arrays,
    edge_index,
)
from callqa.models.registry import build_qa_model
from callqa.serving.qa_onnx import MODEL_KIND, OnnxQa

log = logging.getLogger(__name__)

PARITY_TOL = 1e-3


def load_qa_checkpoint(path: str | os.PathLike[str]) -> tuple[torch.nn.Module, dict[str, Any]]:
    ckpt = read_checkpoint(path)
    hp = ckpt.get("hyper_parameters", {})
    missing = [k for k in ("model", "encoding", "items", "calibration") if not hp.get(k)]
    if missing:
        raise CheckpointError(f"{path}: not a neural QA checkpoint (no {', '.join(missing)} in it)")
    model = build_qa_model(hp["model"])
    model.load_state_dict(model_state(ckpt))
    return model.eval(), hp


def _random_calls(enc: TurnEncoding, n: int, rng: np.random.Generator) -> list[CallArrays]:
    calls = []
    for _ in range(n):
        turns = int(rng.integers(1, 80))
        chars = rng.integers(0, len(enc.vocabulary), size=(turns, int(rng.integers(1, enc.max_chars + 1))))
        feats = rng.random((turns, len(TURN_FEATURES))).astype(np.float32)
        call = rng.standard_normal(len(enc.features)).astype(np.float32)
        calls.append(CallArrays(chars.astype(np.int64), feats, edge_index(turns), call))
    return calls


def _eager(model: torch.nn.Module, feed: dict[str, np.ndarray]) -> np.ndarray:
    with torch.no_grad():
        return model(*(torch.from_numpy(feed[k]) for k in INPUT_NAMES))[0].numpy()


def export_graph(model: torch.nn.Module, enc: TurnEncoding, out: Path, metadata: dict[str, str]) -> Path:
    """TorchScript exporter with dynamic batch, turn and character axes (example batch of 2)."""
    feed = batch_arrays(_random_calls(enc, 2, np.random.default_rng(0)))
    axes: dict[str, dict[int, str]] = {
        "chars": {0: "batch", 1: "turns", 2: "chars"},
        "turn_features": {0: "batch", 1: "turns"},
        "edges": {0: "batch", 1: "turns"},
        "turns": {0: "batch"},
        "call": {0: "batch"},
        "logits": {0: "batch"},
        "attention": {0: "batch", 2: "turns"},
    }
    buf = io.BytesIO()
    torch.onnx.export(
        model,
        tuple(torch.from_numpy(feed[k]) for k in INPUT_NAMES),
        buf,
        dynamo=False,
        opset_version=17,
        input_names=list(INPUT_NAMES),
        output_names=["logits", "attention"],
        dynamic_axes=axes,
    )
    return save_onnx(onnx.load_from_string(buf.getvalue()), out, metadata)


def _parity(model: torch.nn.Module, runtime: OnnxQa, calls: list[CallArrays], name: str) -> dict[str, Any]:
    """Eager against onnxruntime, a few calls at a time: the largest logit difference and whether
    every decision (calibrated probability against the item's threshold) is the same."""
    worst, same = 0.0, True
    for k in range(0, len(calls), 8):
        feed = batch_arrays(calls[k : k + 8])
        ref = _eager(model, feed)
        got = runtime.logits(feed)
        worst = max(worst, float(np.abs(ref - got).max()))
        same &= bool((runtime.decisions(ref) == runtime.decisions(got)).all())
    return {"inputs": name, "calls": len(calls), "max_abs_diff": worst, "same_decisions": same}


def export_qa(
    checkpoint: str | os.PathLike[str],
    out_dir: str | os.PathLike[str],
    corpus: str | os.PathLike[str] | None = None,
    heard: str | os.PathLike[str] | None = None,
) -> dict[str, Any]:
    """Export, then check parity; the report (also ``export.json`` beside the model) says whether the
    gate passed. A failed gate leaves the file for inspection, and the report says so."""
    model, hp = load_qa_checkpoint(checkpoint)
    enc = TurnEncoding(**hp["encoding"])
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / "qa.onnx"
    meta = {
        "callqa.kind": MODEL_KIND,
        "callqa.version": __version__,
        "callqa.model": json.dumps(hp["model"]),
        "callqa.encoding": json.dumps(enc.to_dict(), ensure_ascii=False),
        "callqa.items": json.dumps(hp["items"]),
        "callqa.calibration": json.dumps(hp["calibration"]),
        "callqa.points": json.dumps(hp.get("points") or {}),
        "callqa.rubric": json.dumps(hp.get("rubric_ref") or {}, ensure_ascii=False),
        "callqa.checkpoint": Path(checkpoint).name,
    }
    export_graph(model, enc, path, meta)
    runtime = OnnxQa(path)
    checks = [_parity(model, runtime, _random_calls(enc, 24, np.random.default_rng(1)), "random")]
    if corpus is not None and heard is not None:
        checks.append(_parity(model, runtime, _real_calls(corpus, heard, enc), "corpus"))
    passed = all(c["max_abs_diff"] <= PARITY_TOL and c["same_decisions"] for c in checks)
    report = {
        "checkpoint": str(checkpoint),
        "onnx": str(path),
        "bytes": path.stat().st_size,
        "parity": {"tolerance": PARITY_TOL, "checks": checks, "passed": passed},
    }
    write_json(out_dir / "export.json", report)
    log.info("QA model exported to %s; parity %s: %s", path, "passed" if passed else "FAILED", checks)
    return report


def _real_calls(
    corpus: str | os.PathLike[str], heard: str | os.PathLike[str], enc: TurnEncoding
) -> list[CallArrays]:
    from callqa.data.corpus import Corpus
    from callqa.data.rubric import rules_from
    from callqa.models.qa.turn_inputs import encode_call
    from callqa.training.qa_data import qa_data, read_heard

    c = Corpus(corpus)
    data = qa_data(c.calls, read_heard(heard), rules_from(c.rubric, None))
    return [encode_call(v, r, enc) for v, r in zip(data.views, data.rows, strict=True)]
