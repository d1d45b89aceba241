"""The quickstart's last stage: promote the models, serve them, score calls over HTTP, say where to look.

1. The ASR, SER and transparent QA models go through ``callqa promote``'s gates into the MLflow
   registry: parity, the int8 cost, no worse than the champion on the same evaluation set. A refusal
   is reported, not fatal: the server then serves the champion already there, as production would,
   and says which version it is.
2. ``callqa serve`` starts in its own process on a free loopback port with ``models:/NAME@champion``
   for each model, as a deployment would.
3. The held-out test calls and the QA evaluation calls are posted to ``/v1/calls:score``, as many at
   once as the server has workers; the answers are written as ``callqa score`` writes its records.
4. Printed: one test call's transcript and score, the test calls' score table, the served totals'
   agreement with the inspectors on the evaluation calls beside each inspector's own, and the commands
   to look further.
"""

from __future__ import annotations

import logging
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tqdm import tqdm

from callqa.data.corpus import Corpus
from callqa.data.schema import CallRecord, write_records
from callqa.data.scores import CallScore
from callqa.evaluation.report import Table, print_table
from callqa.evaluation.score_agreement import score_agreement
from callqa.logs import make_console
from callqa.quickstart_qa import ci_text
from callqa.serving.client import LocalServer, ScoringClient, ServerError
from callqa.serving.timeline import turn_table

log = logging.getLogger(__name__)

#: Calls posted at once: the server's workers (``--max-concurrent``), so none waits in its queue.
WORKERS = 2


@dataclass(frozen=True)
class Candidate:
    """A model for the registry: its kind, its export (folder or QA JSON) and its evaluation report."""

    kind: str
    export: Path
    evaluation: Path


def promote_all(candidates: list[Candidate], tracking_uri: str) -> dict[str, dict[str, Any]]:
    """Each candidate through the gates; what was decided, by version, with the reasons."""
    from callqa.export.promote import promote

    out = {}
    for c in candidates:
        decision, version = promote(c.kind, c.export, c.evaluation, tracking_uri)  # logs its reasons
        out[c.kind] = {"version": version, "champion": decision.promote, "reasons": decision.reasons}
        if not decision.promote:
            log.warning("callqa-%s version %d was refused: the current champion is served", c.kind, version)
    return out


def _metadata(call: CallRecord) -> dict[str, Any]:
    channels = "mono" if call.channels == "mono" else dict(call.channels)
    return {"id": call.id, "channels": channels}


def score_calls(
    client: ScoringClient, corpus: Corpus, calls: list[CallRecord], desc: str
) -> tuple[list[CallScore], list[str]]:
    """Every call posted to the server, ``WORKERS`` at a time, in the calls' order; a call the server
    refuses is logged and listed, and the rest go on."""

    def one(call: CallRecord) -> CallScore | str:
        try:
            return client.score(corpus.dir / call.audio, _metadata(call))
        except ServerError as err:
            log.error("%s", err)
            return str(err)

    with ThreadPoolExecutor(WORKERS) as pool:
        answers = list(tqdm(pool.map(one, calls), total=len(calls), desc=desc, unit="call"))
    return [a for a in answers if isinstance(a, CallScore)], [a for a in answers if isinstance(a, str)]


def same_totals(in_process: dict[str, list[float]], served: dict[str, CallScore]) -> int:
    """How many calls the server gave the total the in-process judge gave (``per_item`` rows of its
    evaluation report: model total first)."""
    return sum(
        1
        for cid, (total, *_) in in_process.items()
        if (s := served.get(cid)) is not None and s.total is not None and abs(s.total - total) < 0.05
    )


def serve_stage(
    out: Path,
    candidates: list[Candidate],
    test_corpus: Path,
    eval_corpus: Path,
    eval_report: dict[str, Any],
    tracking_uri: str,
) -> dict[str, Any]:
    """Promote, serve, score both corpora over HTTP, print and return the figures. ``eval_report``:
    the in-process evaluation of the same QA model on ``eval_corpus`` (its inspectors' rows are shown
    beside the served model's, and its per-call totals are what the server should reproduce)."""
    folder = out / "serve"
    folder.mkdir(parents=True, exist_ok=True)
    decisions = promote_all(candidates, tracking_uri)
    args = [
        f"--{'model' if c.kind == 'asr' else c.kind + '-model'}=models:/callqa-{c.kind}@champion"
        for c in candidates
    ]
    args += [f"--tracking-uri={tracking_uri}", f"--max-concurrent={WORKERS}"]
    test, evaluation = Corpus(test_corpus), Corpus(eval_corpus)
    log.info("starting callqa serve %s", " ".join(args))
    with LocalServer(args, log=folder / "server.log") as server, ScoringClient(server.url) as client:
        log.info("the server is ready at %s; scoring calls over HTTP", server.url)
        served_test, failed = score_calls(client, test, test.split_calls("test"), "HTTP test calls")
        served_eval, failed_eval = score_calls(client, evaluation, evaluation.calls, "HTTP eval calls")
    write_records(folder / "scored-test.jsonl", served_test)
    write_records(folder / "scored-eval.jsonl", served_eval)
    served_models = {k: m.path for k, m in served_eval[0].models.items() if m.path} if served_eval else {}
    log.info("the server scored with %s", ", ".join(f"{k} {v}" for k, v in served_models.items()))
    by_id = {s.id: s for s in served_eval}
    agreement = score_agreement(evaluation, by_id)
    in_process = eval_report.get("per_item", {})
    same = same_totals(in_process, by_id)
    print_served(served_test, test, agreement, eval_report)
    figures = {
        "promotion": decisions,
        "models": served_models,
        "test_calls": len(served_test),
        "refused": failed + failed_eval,
        "eval": agreement,
        "eval_same_total_as_in_process": [same, len(in_process)],
    }
    log.info("served totals equal the in-process judge's on %d of %d evaluation calls", same, len(in_process))
    where_to_look(out, tracking_uri, args)
    return figures


def print_served(
    served: list[CallScore], corpus: Corpus, agreement: dict[str, Any], eval_report: dict[str, Any]
) -> None:
    """One call's transcript, the score table of the test calls and the agreement table."""
    console = make_console()
    first = next((s for s in served if s.call is not None and s.call.turns), None)
    if first is not None and first.call is not None:
        for line in turn_table(first.call):
            console.print(line, markup=False, highlight=False)
        lost = [f"{i.item} -{i.points_lost:g}" for i in first.items if i.defect]
        console.print(f"   total {first.total}  band {first.band}  {', '.join(lost) or 'no deductions'}")
    truth = {c.id: c.truth for c in corpus.calls}
    rows = []
    for s in served:
        t = truth.get(s.id)
        defects = ", ".join(i.item for i in s.items if i.defect)
        rows.append(
            [
                s.id,
                s.total if s.judged else "not judged",
                s.band or "—",
                defects or "—",
                ", ".join(t.defects) if t is not None and t.defects else "—",
            ]
        )
    print_table(
        console,
        Table(
            f"{len(served)} held-out test calls scored over HTTP",
            ["call", "total", "band", "defects found", "true defects"],
            rows,
        ),
    )
    named: list[tuple[str, dict[str, Any]]] = []
    if "vs_consensus" in agreement:
        named.append(("served model vs consensus", agreement["vs_consensus"]))
    if "vs_truth" in agreement:
        named.append(("served model vs truth", agreement["vs_truth"]))
    for r, v in eval_report.get("totals", {}).get("inspectors", {}).items():
        named.append((f"{r} vs the others", v["vs_consensus"]))
    print_table(
        console,
        Table(
            f"Served totals against the inspectors on {agreement['calls']} evaluation calls",
            ["who", "calls", "QWK", "MAE", "band exact"],
            [[n, m["calls"], *(ci_text(m[k]) for k in ("qwk", "mae", "band_exact"))] for n, m in named],
        ),
    )


def where_to_look(out: Path, tracking_uri: str, serve_args: list[str]) -> None:
    console = make_console()
    console.print("Where to look next:", markup=False)
    for line in (
        f"  experiments, registry and promotion decisions:  mlflow ui --backend-store-uri {tracking_uri}",
        f"  QA report (agreement plots, confusion, calibration):  {out / 'qa' / 'eval' / 'report.html'}",
        f"  corpus report:  {out / 'corpus-stats' / 'report.html'}",
        f"  records the server returned:  {out / 'serve' / 'scored-test.jsonl'}",
        f"  serve the champions yourself:  callqa serve {' '.join(serve_args)}",
        f"  every figure of this run:  {out / 'summary.json'}",
    ):
        console.print(line, markup=False, highlight=False)
