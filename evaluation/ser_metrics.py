"""Speech-emotion metrics and calibration, NumPy only (training, export and the evaluation report).

UA (unweighted accuracy, the mean of per-class recalls) is the headline figure: emotions are
imbalanced (neutral dominates), and WA would reward a model that hears neutral everywhere.
Probabilities are calibrated by one temperature fitted on dev (Guo et al., 2017); the "uncertain"
threshold is the lowest calibrated confidence at which dev accuracy of the kept turns reaches a target.
"""

from __future__ import annotations

import itertools

import numpy as np


def confusion(labels: np.ndarray, preds: np.ndarray, n: int) -> np.ndarray:
    """(n, n) counts, rows the truth, columns the prediction."""
    m = np.zeros((n, n), dtype=np.int64)
    np.add.at(m, (np.asarray(labels, int), np.asarray(preds, int)), 1)
    return m


def classification_metrics(labels: np.ndarray, preds: np.ndarray, n: int) -> dict:
    """UA, WA, macro-F1, per-class recall/precision/F1 (over classes present in ``labels``)."""
    m = confusion(labels, preds, n)
    support = m.sum(axis=1)
    present = support > 0
    recall = np.diag(m) / np.maximum(support, 1)
    precision = np.diag(m) / np.maximum(m.sum(axis=0), 1)
    f1 = np.where(recall + precision > 0, 2 * recall * precision / np.maximum(recall + precision, 1e-12), 0.0)
    return {
        "ua": float(recall[present].mean()) if present.any() else float("nan"),
        "wa": float(np.trace(m) / max(m.sum(), 1)),
        "macro_f1": float(f1[present].mean()) if present.any() else float("nan"),
        "recall": recall.tolist(),
        "precision": precision.tolist(),
        "f1": f1.tolist(),
        "support": support.tolist(),
        "confusion": m.tolist(),
    }


def softmax(logits: np.ndarray, temperature: float = 1.0) -> np.ndarray:
    z = np.asarray(logits, dtype=np.float64) / temperature
    z = z - z.max(axis=-1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=-1, keepdims=True)


def nll(logits: np.ndarray, labels: np.ndarray, temperature: float) -> float:
    p = softmax(logits, temperature)
    return float(-np.mean(np.log(p[np.arange(len(labels)), labels] + 1e-12)))


def fit_temperature(logits: np.ndarray, labels: np.ndarray) -> float:
    """The temperature minimising dev negative log-likelihood (golden-section search on log T)."""
    lo, hi = np.log(0.05), np.log(20.0)
    g = (np.sqrt(5) - 1) / 2
    a, b = hi - g * (hi - lo), lo + g * (hi - lo)
    for _ in range(60):
        if nll(logits, labels, np.exp(a)) < nll(logits, labels, np.exp(b)):
            hi, b = b, a
            a = hi - g * (hi - lo)
        else:
            lo, a = a, b
            b = lo + g * (hi - lo)
    return float(np.exp((lo + hi) / 2))


def ece(probs: np.ndarray, labels: np.ndarray, bins: int = 15) -> float:
    """Expected calibration error: |accuracy - confidence| averaged over confidence bins, by count."""
    conf, pred = probs.max(axis=1), probs.argmax(axis=1)
    correct = (pred == labels).astype(np.float64)
    edges = np.linspace(0, 1, bins + 1)
    total = 0.0
    for lo, hi in itertools.pairwise(edges):
        sel = (conf > lo) & (conf <= hi)
        if sel.any():
            total += sel.mean() * abs(correct[sel].mean() - conf[sel].mean())
    return float(total)


def coverage_curve(probs: np.ndarray, labels: np.ndarray, thresholds: np.ndarray) -> list[dict]:
    """For each threshold: share of turns kept (confidence >= threshold), their accuracy and UA."""
    conf, pred = probs.max(axis=1), probs.argmax(axis=1)
    out = []
    for t in thresholds:
        keep = conf >= t
        m = classification_metrics(labels[keep], pred[keep], probs.shape[1]) if keep.any() else None
        out.append(
            {
                "threshold": float(t),
                "coverage": float(keep.mean()),
                "accuracy": float((pred[keep] == labels[keep]).mean()) if keep.any() else float("nan"),
                "ua": m["ua"] if m else float("nan"),
            }
        )
    return out


def choose_threshold(
    probs: np.ndarray, labels: np.ndarray, target_accuracy: float = 0.95, min_coverage: float = 0.5
) -> float:
    """The lowest confidence threshold at which the kept dev turns are ``target_accuracy`` right (so as
    few turns as possible are "uncertain"), but never one that leaves fewer than ``min_coverage`` of the
    turns labelled: a weak model would otherwise call nearly every turn uncertain, which tells a QA team
    nothing. Then it is the highest threshold that still labels ``min_coverage``."""
    grid = np.round(np.linspace(0.2, 0.99, 80), 4)
    curve = coverage_curve(probs, labels, grid)
    for row in curve:
        if row["coverage"] >= min_coverage and row["accuracy"] >= target_accuracy:
            return row["threshold"]
    covered = [row["threshold"] for row in curve if row["coverage"] >= min_coverage]
    return float(covered[-1]) if covered else float(grid[0])
