"""``callqa export ser``: ONNX export of a SER checkpoint with calibration, parity and int8 gates.

Build time only (imports torch). The graph takes the NumPy features (or, for an SSL head, the 8 kHz
wave too) with dynamic batch and time, and carries its labels, feature settings, model config, the
temperature fitted on dev and the "uncertain" threshold chosen on dev as metadata, so the runtime needs
only the file. Parity: eager and onnxruntime must give the same argmax on every test turn and
|Δ logit| <= 1e-3 at several lengths and batch sizes.
"""

from __future__ import annotations

import io
import json
import logging
import os
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import torch

from callqa import __version__
from callqa.data.constants import EMOTIONS, SAMPLE_RATE
from callqa.data.files import atomic_path, write_json
from callqa.evaluation.ser_metrics import (
    choose_threshold,
    classification_metrics,
    coverage_curve,
    ece,
    fit_temperature,
    softmax,
)
from callqa.export.asr import quantize_int8, save_onnx
from callqa.models.checkpoint import model_state
from callqa.models.registry import build_ser_model, ser_input_names
from callqa.models.ser.checkpoint import read_ser_checkpoint
from callqa.models.ser.features import (
    FeatureConfig,
    FeatureExtractor,
    SerInput,
    speaker_inputs,
)
from callqa.serving.ser_onnx import context_rounds, segment_feed

log = logging.getLogger(__name__)

PARITY_TOL = 1e-3
#: dev accuracy the turns kept (not "uncertain") must reach; the threshold is the lowest that does
TARGET_ACCURACY = 0.9


def load_ser_checkpoint(path: str | os.PathLike[str]) -> tuple[torch.nn.Module, dict[str, Any]]:
    ckpt = read_ser_checkpoint(path)
    hp = ckpt["hyper_parameters"]
    model = build_ser_model(hp["model"], load_weights=False)
    model.load_state_dict(model_state(ckpt))
    return model.eval(), hp


def _kind(model: torch.nn.Module) -> str:
    return getattr(model, "input_kind", "features")


def _inputs(model: torch.nn.Module, xs: list[SerInput], waves: list[np.ndarray] | None) -> dict:
    """The graph's inputs by name for one speaker's turns, all judged at once."""
    names = ser_input_names(model)
    feed = segment_feed(xs, waves, np.arange(len(xs)), names, getattr(model.cfg, "context_rounds", 0))
    return {n: feed[n] for n in names}


def _eager(model: torch.nn.Module, feed: dict) -> np.ndarray:
    with torch.no_grad():
        return model(*(torch.from_numpy(v) for v in feed.values())).numpy()


def export_onnx(model: torch.nn.Module, out: Path, metadata: dict[str, str]) -> Path:
    """TorchScript exporter with dynamic batch and time axes (example batch of 2)."""
    rng = np.random.default_rng(0)
    waves = [rng.standard_normal(n).astype(np.float32) * 0.1 for n in (24000, 16000)]
    ext = FeatureExtractor(FeatureConfig.from_dict(json.loads(metadata["callqa.features"])))
    feed = _inputs(model, speaker_inputs(waves, ext), waves)
    names = list(feed)
    axes = {n: {0: "batch"} for n in names}
    axes.update({n: {0: "batch", 1: "time"} for n in names if n in ("frames", "wave")})
    axes.update({n: {0: "window"} for n in names if n == "peer_stats"})
    axes.update({n: {0: "window", 1: "window"} for n in names if n in ("peer_pairs", "peer_mask")})
    buf = io.BytesIO()
    torch.onnx.export(
        model,
        tuple(torch.from_numpy(v) for v in feed.values()),
        buf,
        dynamo=False,
        opset_version=17,
        input_names=names,
        output_names=["logits"],
        dynamic_axes={**axes, "logits": {0: "batch"}},
    )
    return save_onnx(onnx.load_from_string(buf.getvalue()), out, metadata)


def _set_metadata(path: Path, values: dict[str, str]) -> None:
    proto = onnx.load(str(path))
    keep = [p for p in proto.metadata_props if p.key not in values]
    del proto.metadata_props[:]
    for p in keep:
        proto.metadata_props.add(key=p.key, value=p.value)
    for k, v in values.items():
        proto.metadata_props.add(key=k, value=v)
    with atomic_path(path) as tmp:
        onnx.save(proto, str(tmp))


def synthetic_parity(model: torch.nn.Module, onnx_path: Path, features: dict) -> list[dict]:
    """Eager vs onnxruntime on random speech-like waves at several lengths (0.3-20 s) and batch sizes."""
    import onnxruntime as ort

    sess = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    ext = FeatureExtractor(FeatureConfig.from_dict(features))
    rng = np.random.default_rng(1)
    rows = []
    for batch in (1, 3, 8):
        for seconds in (0.3, 1.7, 6.1, 20.0):
            waves = []
            for k in range(batch):
                n = int(seconds * SAMPLE_RATE * (1 - 0.15 * k / batch))
                t = np.arange(n) / SAMPLE_RATE
                f0 = 120 + 40 * np.sin(2 * np.pi * 0.5 * t + k)
                tone = np.sin(2 * np.pi * np.cumsum(f0) / SAMPLE_RATE) * (
                    0.5 + 0.5 * np.sin(2 * np.pi * 4 * t)
                )
                waves.append((0.2 * tone + 0.01 * rng.standard_normal(n)).astype(np.float32))
            feed = _inputs(model, speaker_inputs(waves, ext), waves)
            ref, got = _eager(model, feed), sess.run(None, feed)[0]
            rows.append(
                {
                    "batch": batch,
                    "seconds": seconds,
                    "max_abs_diff": float(np.abs(ref - got).max()),
                    "same_argmax": bool((ref.argmax(1) == got.argmax(1)).all()),
                }
            )
    return rows


def _split_logits(
    model: torch.nn.Module | None, sess: Any, corpus: str | os.PathLike[str], split: str, features: dict
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """(onnx logits, labels, eager logits) over a corpus split's turns, normalised per speaker."""
    from callqa.training.ser_data import load_items

    items = load_items([corpus], FeatureConfig.from_dict(features)).get(split, [])
    if not items:
        raise ValueError(f"{corpus}: no {split} turns")
    names = [i.name for i in sess.get_inputs()]
    rounds = context_rounds(sess.get_modelmeta().custom_metadata_map)
    groups: dict[int, list] = defaultdict(list)
    for item in items:
        groups[item.group].append(item)
    items = [i for g in groups.values() for i in g]
    got, ref = [], []
    for chunk in groups.values():  # one speaker's turns in one call at a time, as the runtime sees them
        waves = None
        if "wave" in names:
            from callqa.data.segments import load_utterance

            waves = [load_utterance(i.utt, i.root) for i in chunk]
        feed = segment_feed([i.x for i in chunk], waves, np.arange(len(chunk)), names, rounds)
        feed = {n: feed[n] for n in names}
        got.append(sess.run(None, feed)[0])
        if model is not None:
            ref.append(_eager(model, feed))
    labels = np.array([i.label for i in items])
    return np.concatenate(got), labels, np.concatenate(ref) if ref else None


def export_ser(
    checkpoint: str | os.PathLike[str],
    out: str | os.PathLike[str],
    corpus: str | os.PathLike[str] | None = None,
    int8: bool = True,
) -> dict[str, Any]:
    """Write ser.onnx (+ ser.int8.onnx) and export.json into ``out``; returns the export report."""
    import onnxruntime as ort

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    model, hp = load_ser_checkpoint(checkpoint)
    features = hp["features"]
    meta = {
        "callqa.kind": "ser",
        "callqa.version": __version__,
        "callqa.labels": json.dumps(list(EMOTIONS)),
        "callqa.sample_rate": str(SAMPLE_RATE),
        "callqa.features": json.dumps(features),
        "callqa.model_config": json.dumps(model.cfg.to_dict() | {"hf_config": {}}),
        "callqa.input_kind": _kind(model),
        "callqa.checkpoint": str(checkpoint),
        "callqa.inputs": "one speaker's segments of one call, normalised together (see serving/ser_onnx.py)",
        "callqa.temperature": "1.0",
        "callqa.threshold": "0.0",
    }
    path = export_onnx(model, out / "ser.onnx", meta)
    report: dict[str, Any] = {"onnx": str(path), "checkpoint": str(checkpoint)}
    synthetic = synthetic_parity(model, path, features)
    parity: dict[str, Any] = {"synthetic": synthetic, "tolerance": PARITY_TOL}
    passed = all(r["same_argmax"] and r["max_abs_diff"] <= PARITY_TOL for r in synthetic)
    if corpus is not None:
        sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        test, labels, ref = _split_logits(model, sess, corpus, "test", features)
        parity["test"] = {
            "turns": len(labels),
            "max_abs_diff": float(np.abs(test - ref).max()),
            "argmax_mismatches": int((test.argmax(1) != ref.argmax(1)).sum()),
        }
        passed = passed and parity["test"]["argmax_mismatches"] == 0
        passed = passed and parity["test"]["max_abs_diff"] <= PARITY_TOL
        dev, dev_labels, _ = _split_logits(None, sess, corpus, "dev", features)
        temperature = fit_temperature(dev, dev_labels)
        dev_probs = softmax(dev, temperature)
        threshold = choose_threshold(dev_probs, dev_labels, TARGET_ACCURACY)
        report["calibration"] = {
            "temperature": temperature,
            "threshold": threshold,
            "target_accuracy": TARGET_ACCURACY,
            "dev_ece_before": ece(softmax(dev), dev_labels),
            "dev_ece_after": ece(dev_probs, dev_labels),
            "dev_coverage": coverage_curve(dev_probs, dev_labels, np.array([threshold]))[0],
        }
        _set_metadata(path, {"callqa.temperature": repr(temperature), "callqa.threshold": repr(threshold)})
        report["test"] = classification_metrics(labels, test.argmax(1), len(EMOTIONS))
    else:
        log.warning("no --corpus: temperature 1 and no uncertain threshold (calibration needs dev turns)")
    parity["passed"] = bool(passed)
    report["parity"] = parity
    log.info(
        "SER parity %s: %s",
        "passed" if passed else "FAILED",
        json.dumps(parity["test"] if corpus else synthetic[-1]),
    )
    if int8:
        q = quantize_int8(path, out / "ser.int8.onnx")
        report["int8"] = {"onnx": str(q)}
        if corpus is not None:
            sess8 = ort.InferenceSession(str(q), providers=["CPUExecutionProvider"])
            q_logits, _, _ = _split_logits(None, sess8, corpus, "test", features)
            ua8 = classification_metrics(labels, q_logits.argmax(1), len(EMOTIONS))["ua"]
            report["int8"].update(
                ua_fp32=report["test"]["ua"], ua_int8=ua8, ua_change=ua8 - report["test"]["ua"]
            )
            log.info("int8 UA %.4f vs fp32 %.4f", ua8, report["test"]["ua"])
    write_json(out / "export.json", report)
    return report
