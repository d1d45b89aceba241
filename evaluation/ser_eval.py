"""``callqa evaluate ser``: an exported SER model on a corpus split, turn by turn, each speaker's turns
of a call given to the runtime together (as the call pipeline gives them).

Writes metrics.json (UA, WA, macro-F1, per-class recall/precision/F1, confusion, ECE, coverage and
accuracy at the model's "uncertain" threshold and over a grid), confusion.png and report.html.
"""

from __future__ import annotations

import logging
import os
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from callqa.data.constants import EMOTIONS
from callqa.data.corpus import Corpus
from callqa.data.files import write_json
from callqa.data.segments import load_utterance
from callqa.evaluation.plots import plot_confusion
from callqa.evaluation.report import Section, Table, write_html_report
from callqa.evaluation.ser_metrics import classification_metrics, coverage_curve, ece
from callqa.serving.ser_onnx import load_ser
from callqa.training.ser_data import call_turns, group_key

log = logging.getLogger(__name__)


def predict_split(model_path: str | os.PathLike[str], corpus: Corpus, split: str, threads: int | None = None):
    """(probabilities, labels, utterance ids) over a split's call turns."""
    ser = load_ser(model_path, threads)
    if tuple(ser.labels) != EMOTIONS:
        raise ValueError(f"{model_path}: labels {ser.labels} are not {EMOTIONS}")
    groups: dict[tuple[str, str], list] = defaultdict(list)
    for u in call_turns(corpus):
        if u.split == split:
            groups[group_key(u)].append(u)
    if not groups:
        raise ValueError(f"{corpus.dir}: no {split} call turns with emotion labels")
    probs, labels, ids = [], [], []
    for utts in tqdm(groups.values(), desc=f"SER {split}", unit="speaker", mininterval=2.0):
        probs.append(ser.classify([load_utterance(u, corpus.dir, ser.sample_rate) for u in utts]))
        labels += [EMOTIONS.index(str(u.emotion)) for u in utts]
        ids += [u.id for u in utts]
    return np.concatenate(probs), np.array(labels), ids, ser


def evaluate_ser(
    model: str | os.PathLike[str],
    corpus: str | os.PathLike[str],
    out: str | os.PathLike[str],
    split: str = "test",
    threads: int | None = None,
) -> dict[str, Any]:
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    c = Corpus(corpus)
    probs, labels, ids, ser = predict_split(model, c, split, threads)
    m = classification_metrics(labels, probs.argmax(1), len(EMOTIONS))
    m["ece"] = ece(probs, labels)
    at = coverage_curve(probs, labels, np.array([ser.threshold]))[0]
    curve = coverage_curve(probs, labels, np.round(np.linspace(0.2, 0.95, 16), 3))
    report = {
        "model": str(model),
        "corpus": str(corpus),
        "corpus_fingerprint": c.fingerprint,
        "split": split,
        "turns": len(labels),
        "labels": list(EMOTIONS),
        "metrics": m,
        "temperature": ser.temperature,
        "threshold": ser.threshold,
        "at_threshold": at,
        "coverage_curve": curve,
        "per_item": {i: [int(y), int(p)] for i, y, p in zip(ids, labels, probs.argmax(1), strict=True)},
    }
    write_json(out / "metrics.json", report)
    png = plot_confusion(np.array(m["confusion"]), list(EMOTIONS), out / "confusion.png")
    per_class = Table(
        "Per class",
        ["emotion", "turns", "recall", "precision", "F1"],
        [[e, m["support"][k], m["recall"][k], m["precision"][k], m["f1"][k]] for k, e in enumerate(EMOTIONS)],
    )
    summary = Table(
        "Summary",
        ["UA", "WA", "macro-F1", "ECE", "threshold", "coverage", "accuracy kept"],
        [[m["ua"], m["wa"], m["macro_f1"], m["ece"], ser.threshold, at["coverage"], at["accuracy"]]],
        note="UA = mean recall over emotions; coverage = share of turns not reported as uncertain.",
    )
    cov = Table(
        "Coverage vs accuracy",
        ["threshold", "coverage", "accuracy", "UA"],
        [[r["threshold"], r["coverage"], r["accuracy"], r["ua"]] for r in curve],
    )
    write_html_report(
        f"SER evaluation: {Path(model).name} on {c.dir.name}/{split}",
        [Section("Speech emotion", tables=[summary, per_class, cov], images=[png])],
        [],
        out / "report.html",
    )
    log.info(
        "SER %s/%s: UA %.3f WA %.3f macro-F1 %.3f ECE %.3f; recall %s",
        c.dir.name,
        split,
        m["ua"],
        m["wa"],
        m["macro_f1"],
        m["ece"],
        " ".join(f"{e}={r:.2f}" for e, r in zip(EMOTIONS, m["recall"], strict=True)),
    )
    return report
