"""``callqa score --ray``: the same batch on Ray Data, for a cluster or for every core of one machine.

A pool of actors each builds its own scorer from the :class:`~callqa.serving.spec.ScorerSpec` once
(onnxruntime sessions do not travel; the spec does) and scores one call per row. The driver keeps
the batch's bookkeeping (resume, order, errors file, atomic rename) in :func:`run_batch`, so the
output equals the local path's line for line. Every node must see the models and the audio at the
paths given (a shared filesystem), and the driver too when it resumes, to check the partial file's set-up.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from callqa.data.schema import CallRecord
from callqa.data.scores import CallScore
from callqa.serving.score import BatchReport, Job, attempt, run_batch
from callqa.serving.spec import ScorerSpec


class ScoreActor:
    """One Ray actor's scorer; ``__call__`` scores a batch of rows (one call each, as JSON)."""

    def __init__(self, spec: ScorerSpec) -> None:
        self.scorer = spec.build()

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, list[str]]:
        out = []
        for row in batch["job"]:
            raw = json.loads(row)
            record = CallRecord.model_validate(raw["record"]) if raw["record"] else None
            job = Job(raw["id"], Path(raw["path"]) if raw["path"] else None, raw["speakers"], record)
            score = attempt(self.scorer, job)
            out.append(json.dumps({"error": score} if isinstance(score, str) else {"score": score.to_json()}))
        return {"result": out}


def _row(job: Job) -> str:
    return json.dumps(
        {
            "id": job.id,
            "path": str(job.path) if job.path else None,
            "speakers": dict(job.speakers) if job.speakers else None,
            "record": job.record.model_dump(mode="json") if job.record else None,
        }
    )


def score_batch_ray(
    spec: ScorerSpec,
    inputs: Sequence[Path],
    out: Path,
    errors: Path | None = None,
    from_text: bool = False,
    address: str | None = None,
    workers: int = 2,
    progress: bool = True,
) -> BatchReport:
    """:func:`~callqa.serving.score.score_batch` on Ray: ``address`` None starts a local Ray."""
    import ray
    import ray.data

    started = not ray.is_initialized()
    if started:
        ray.init(address=address, include_dashboard=False, log_to_driver=False)
    ray.data.DataContext.get_current().execution_options.preserve_order = True  # the local path's order
    try:

        def on_ray(todo: list[Job]) -> Iterator[tuple[Job, CallScore | str]]:
            if not todo:
                return
            rows = ray.data.from_items([{"job": _row(j)} for j in todo])
            scored = rows.map_batches(
                ScoreActor,
                fn_constructor_kwargs={"spec": spec},
                compute=ray.data.ActorPoolStrategy(size=workers),
                batch_size=1,
            )
            for job, row in zip(todo, scored.iter_rows(), strict=True):
                result: dict[str, Any] = json.loads(row["result"])
                yield job, result["error"] if "error" in result else CallScore.model_validate(result["score"])

        # the driver builds a scorer only to check a partial file's set-up, not to score
        return run_batch(
            lambda: spec.build().provenance(not from_text), inputs, out, on_ray, errors, from_text, progress
        )
    finally:
        if started:
            ray.shutdown()
