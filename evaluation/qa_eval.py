"""``callqa evaluate qa``: a QA model on a corpus split, against the inspectors and the ground truth.

The model judges each call from what the pipeline heard (``callqa score --raw`` output, never the
ground-truth text). It is then compared, each figure with a bootstrap 95 % interval over calls:

- per item with the inspectors' consensus and with the ground truth (precision, recall, F1, AUC, ECE);
- on the total with the consensus (QWK, Pearson, Spearman, MAE, ICC, Krippendorff's α, band agreement,
  SMD), overall and per team, beside every inspector against the consensus of the others;
- with the ground truth on decisions, beside every inspector;
- flips: how many item and band decisions change between ground-truth transcripts/emotions and the
  pipeline's, by the call's CER;
- risk ranking: defective calls found per listened call when inspectors listen to the calls the model
  ranks worst, against random sampling.
"""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from callqa.data.corpus import Corpus
from callqa.data.files import write_json
from callqa.data.results import CallResult
from callqa.data.rubric import Rubric, rules_from
from callqa.data.schema import CallRecord
from callqa.evaluation.pipeline_eval import channel_texts, pipeline_cer
from callqa.evaluation.qa_metrics import boot, item_metrics, total_metrics
from callqa.evaluation.qa_refs import consensus, decision_total, sheet_defects
from callqa.models.qa.base import QaModel
from callqa.qa.rules import RuleSet
from callqa.qa.sheet import check_model_rubric, judge_call, unjudgeable
from callqa.qa.timeline import CallView
from callqa.serving.qa_onnx import load_qa_model
from callqa.training.qa_data import read_heard

log = logging.getLogger(__name__)

BUDGETS = (0.05, 0.10, 0.20)
CER_BUCKETS = ((0.0, 0.1), (0.1, 0.2), (0.2, 0.3), (0.3, math.inf))
#: A call is "defective" for risk ranking when the consensus puts it below this total or flags a fatal item.
DEFECTIVE_BELOW = 80.0


@dataclass
class Predictions:
    ids: list[str]
    probs: dict[str, np.ndarray]
    defect: dict[str, np.ndarray]
    totals: np.ndarray
    bands: list[str]
    expected: np.ndarray


def predict(model: QaModel, rules: RuleSet, views: Sequence[CallView]) -> Predictions:
    rubric = rules.rubric
    probs: dict[str, list[float]] = {i: [] for i in rubric.ids}
    defect: dict[str, list[bool]] = {i: [] for i in rubric.ids}
    totals, bands, expected = [], [], []
    for view in views:
        s = judge_call(view, rules, model)
        for it in s.items:
            probs[it.item].append(it.probability)
            defect[it.item].append(it.defect)
        totals.append(s.total)
        bands.append(s.band)
        expected.append(s.expected_total)
    return Predictions(
        [v.id for v in views],
        {k: np.array(v) for k, v in probs.items()},
        {k: np.array(v, bool) for k, v in defect.items()},
        np.array(totals),
        bands,
        np.array(expected, dtype=float),
    )


def _risk(pred: Predictions, defective: np.ndarray, n_boot: int) -> dict[str, Any]:
    order = np.argsort(pred.expected, kind="stable")  # the lowest expected total first
    prevalence = float(defective.mean())
    out: dict[str, Any] = {"prevalence": round(prevalence, 4), "calls": len(defective), "budgets": {}}
    for b in BUDGETS:
        k = max(1, math.ceil(b * len(order)))
        hit = defective[order[:k]]
        rate = boot(np.mean, hit.astype(float), n=n_boot)
        out["budgets"][f"{b:.0%}"] = {
            "listened": k,
            "found_per_call": rate.as_list(),
            "random_per_call": round(prevalence, 4),
            "lift": round(rate.value / prevalence, 3) if prevalence else None,
        }
    return out


def _flips(
    records: Sequence[CallRecord],
    heard: dict[str, CallResult],
    on_heard: Predictions,
    on_truth: Predictions,
    rubric: Rubric,
) -> dict[str, Any]:
    # the pipeline stage's own whole-call CER: each channel's turns joined in time order
    cers = np.array([pipeline_cer(channel_texts(r, heard[r.id])) for r in records])
    out: dict[str, Any] = {"mean_cer": round(float(np.nanmean(cers)), 4), "buckets": {}, "items": {}}
    item_flips = np.stack([on_heard.defect[i] != on_truth.defect[i] for i in rubric.ids], axis=1)
    band_flips = np.array([a != b for a, b in zip(on_heard.bands, on_truth.bands, strict=True)])
    for lo, hi in CER_BUCKETS:
        m = (cers >= lo) & (cers < hi)
        name = f"{lo:.1f}-{hi:.1f}" if math.isfinite(hi) else f">={lo:.1f}"
        out["buckets"][name] = {
            "calls": int(m.sum()),
            "item_flip_rate": round(float(item_flips[m].mean()), 4) if m.any() else None,
            "band_flip_rate": round(float(band_flips[m].mean()), 4) if m.any() else None,
        }
    for k, item in enumerate(rubric.ids):
        out["items"][item] = {
            "flips": int(item_flips[:, k].sum()),
            "defect_on_truth_only": int((on_truth.defect[item] & ~on_heard.defect[item]).sum()),
            "defect_on_heard_only": int((on_heard.defect[item] & ~on_truth.defect[item]).sum()),
        }
    out["band_flip_rate"] = round(float(band_flips.mean()), 4)
    return out


def evaluate_qa(
    corpus_dir: str | os.PathLike[str],
    heard_path: str | os.PathLike[str],
    model_path: str | os.PathLike[str],
    out: str | os.PathLike[str],
    split: str = "test",
    n_boot: int = 1000,
    tracking_uri: str | None = None,
    rubric_path: str | os.PathLike[str] | None = None,
) -> dict[str, Any]:
    corpus = Corpus(corpus_dir)
    rubric = rules_from(corpus.rubric, rubric_path)
    model = load_qa_model(model_path)
    check_model_rubric(model, rubric, str(rubric_path or Path(corpus_dir) / "rubric.yaml"))
    heard = read_heard(heard_path)
    calls = corpus.calls if split == "all" else corpus.split_calls(split)
    records = [c for c in calls if c.id in heard]
    if not records:
        raise ValueError(f"{heard_path}: no pipeline results for the {split} calls of {corpus_dir}")
    views = {c.id: CallView.from_result(heard[c.id]) for c in records}
    # a call the pipeline heard nothing in has no score to compare; it is counted, not guessed at
    unjudged = [c.id for c in records if unjudgeable(views[c.id]) is not None]
    if unjudged:
        log.warning("%d call(s) had no speech to judge and are left out: %s", len(unjudged), unjudged[:10])
        skip = set(unjudged)
        records = [c for c in records if c.id not in skip]
    rules = RuleSet(rubric)
    on_heard = predict(model, rules, [views[c.id] for c in records])
    on_truth = predict(model, rules, [CallView.from_record(c) for c in records])
    index = {cid: k for k, cid in enumerate(on_heard.ids)}
    minimums = [b.min for b in rubric.bands]
    report: dict[str, Any] = {
        "model": str(model_path),
        "corpus": str(corpus_dir),
        "corpus_fingerprint": corpus.fingerprint,
        "split": split,
        "calls": len(records),
        "not_judged": unjudged,
        "heard": str(heard_path),
        "n_boot": n_boot,
        "items": {},
        "totals": {},
        "truth": {},
    }

    # items against the ground truth (every call)
    with_truth = [c for c in records if c.truth is not None]
    if with_truth:
        sel = np.array([index[c.id] for c in with_truth])
        for item in rubric.ids:
            y = np.array([item in c.truth.defects for c in with_truth])  # type: ignore[union-attr]
            report["items"].setdefault(item, {})["vs_truth"] = item_metrics(
                y, on_heard.probs[item][sel], on_heard.defect[item][sel], n_boot
            )
        truth_totals = np.array([decision_total(rubric, c.truth.defects) for c in with_truth])  # type: ignore[union-attr]
        model_dec = np.array(
            [decision_total(rubric, {i for i in rubric.ids if on_heard.defect[i][k]}) for k in sel]
        )
        report["truth"]["model"] = total_metrics(model_dec, truth_totals, minimums, n_boot)

    # against the inspectors' consensus
    cons = consensus(records)
    if cons.call_ids:
        sel = np.array([index[c] for c in cons.call_ids])
        for item in rubric.ids:
            report["items"].setdefault(item, {})["vs_consensus"] = item_metrics(
                cons.flags(item), on_heard.probs[item][sel], on_heard.defect[item][sel], n_boot
            )
        ref = cons.totals()
        report["totals"]["model_vs_consensus"] = total_metrics(on_heard.totals[sel], ref, minimums, n_boot)
        pairs = zip(cons.call_ids, on_heard.totals[sel], ref, strict=True)
        report["per_item"] = {cid: [float(m), float(r)] for cid, m, r in pairs}
        report["totals"]["model_expected_vs_consensus"] = total_metrics(
            on_heard.expected[sel], ref, minimums, n_boot
        )
        per_team: dict[str, Any] = {}
        teams = {c.id: c.team or "?" for c in records}
        for team in sorted({teams[c] for c in cons.call_ids}):
            m = np.array([teams[c] == team for c in cons.call_ids])
            if m.sum() >= 10:
                per_team[team] = total_metrics(on_heard.totals[sel][m], ref[m], minimums, n_boot)
        report["totals"]["per_team"] = per_team
        insp: dict[str, Any] = {}
        by_id = {c.id: c for c in records}
        for r in cons.inspectors:
            mask, theirs = cons.rater(r)
            if mask.sum() < 10:
                continue
            loo = cons.totals(exclude=r)
            insp[r] = {
                "vs_consensus": total_metrics(theirs[mask], loo[mask], minimums, n_boot),
                "model_vs_same": total_metrics(on_heard.totals[sel][mask], loo[mask], minimums, n_boot),
            }
            if with_truth:
                sheets = [s for s in cons.sheets[r] if s is not None]
                ids = [cid for cid, s in zip(cons.call_ids, cons.sheets[r], strict=True) if s is not None]
                dec = np.array([decision_total(rubric, sheet_defects(s, rubric)) for s in sheets])
                tt = np.array([decision_total(rubric, by_id[c].truth.defects) for c in ids])  # type: ignore[union-attr]
                report["truth"].setdefault("inspectors", {})[r] = total_metrics(dec, tt, minimums, n_boot)
        report["totals"]["inspectors"] = insp
        if insp:
            report["totals"]["mean_inspector_qwk"] = round(
                float(np.mean([v["vs_consensus"]["qwk"][0] for v in insp.values()])), 4
            )
            report["totals"]["mean_model_qwk_same_reference"] = round(
                float(np.mean([v["model_vs_same"]["qwk"][0] for v in insp.values()])), 4
            )
        defective = (ref < DEFECTIVE_BELOW) | cons.fatal(rubric)
        sub = Predictions(
            cons.call_ids,
            {k: v[sel] for k, v in on_heard.probs.items()},
            {k: v[sel] for k, v in on_heard.defect.items()},
            on_heard.totals[sel],
            [on_heard.bands[k] for k in sel],
            on_heard.expected[sel],
        )
        report["risk"] = _risk(sub, defective, n_boot)

    report["flips"] = _flips(records, heard, on_heard, on_truth, rubric)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    write_json(out / "qa_eval.json", report)
    from callqa.evaluation.qa_report import write_qa_report

    write_qa_report(report, rubric, on_heard, records, out)
    if tracking_uri:
        _log_mlflow(report, model_path, out, tracking_uri)
    return report


def _log_mlflow(
    report: dict[str, Any], model_path: str | os.PathLike[str], out: Path, tracking_uri: str
) -> None:
    import mlflow

    from callqa.evaluation.tracking import use_experiment

    use_experiment("qa-eval", tracking_uri)
    with mlflow.start_run(run_name=f"eval-{Path(model_path).stem}-{report['split']}"):
        mlflow.log_params({k: report[k] for k in ("model", "corpus", "split", "calls")})
        for item, refs in report["items"].items():
            for ref, m in refs.items():
                mlflow.log_metric(f"{item}_{ref}_f1", m["f1"][0])
        for name in ("qwk", "spearman", "mae", "icc"):
            if "model_vs_consensus" in report["totals"]:
                mlflow.log_metric(f"total_{name}", report["totals"]["model_vs_consensus"][name][0])
        mlflow.log_artifact(str(model_path), "model")
        mlflow.log_artifacts(str(out), "report")
