"""``callqa train qa``: the transparent QA model from a corpus's inspected calls and what the pipeline
heard in them, tracked in MLflow."""

from __future__ import annotations

import logging
import os
from collections import Counter
from pathlib import Path
from typing import Any

from callqa.data.corpus import Corpus
from callqa.data.rubric import rules_from
from callqa.models.qa.linear import LinearQa
from callqa.training.qa_data import qa_data, read_heard
from callqa.training.qa_linear import fit_linear

log = logging.getLogger(__name__)


def train_qa(
    corpus_dir: str | os.PathLike[str],
    heard_path: str | os.PathLike[str],
    out: str | os.PathLike[str],
    split: str = "train",
    labels: str = "resolved",
    c: float | None = None,
    seed: int = 0,
    tracking_uri: str | None = None,
    rubric_path: str | os.PathLike[str] | None = None,
) -> LinearQa:
    corpus = Corpus(corpus_dir)
    rubric = rules_from(corpus.rubric, rubric_path)
    calls = corpus.calls if split == "all" else corpus.split_calls(split)
    data = qa_data(calls, read_heard(heard_path), rubric, labels)
    if not data.rows:
        raise ValueError(f"{corpus_dir}: no inspected {split} calls with a pipeline result in {heard_path}")
    sources = Counter(s for lab in data.labels for s in lab.source.values())
    meta: dict[str, Any] = {
        "corpus": str(corpus_dir),
        "fingerprint": corpus.fingerprint,
        "split": split,
        "calls": len(data.rows),
        "labels": labels,
        "label_sources": dict(sources),
        "heard": str(heard_path),
        "c": c,
        "seed": seed,
    }
    model = fit_linear(data.rows, data.labels, rubric, meta, c=c, seed=seed)
    path = model.save(out)
    log.info("QA model (%d calls, %s labels) saved to %s", len(data.rows), labels, path)
    if tracking_uri:
        _log_mlflow(model, path, tracking_uri)
    return model


def _log_mlflow(model: LinearQa, path: Path, tracking_uri: str) -> None:
    import mlflow

    from callqa.evaluation.tracking import use_experiment

    use_experiment("qa-train", tracking_uri)
    with mlflow.start_run(run_name=f"qa-linear-{model.meta.get('labels')}"):
        mlflow.log_params({k: v for k, v in model.meta.items() if not isinstance(v, dict)})
        for item, m in model.items.items():
            mlflow.log_metric(f"{item}_positives", m.positives)
            mlflow.log_metric(f"{item}_threshold", m.threshold)
        mlflow.log_artifact(str(path), "model")
