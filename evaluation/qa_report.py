"""The QA evaluation as a researcher reads it: tables with intervals and the pictures behind them."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from callqa.data.rubric import Rubric
from callqa.data.schema import CallRecord
from callqa.evaluation.plots import _figure, band_label
from callqa.evaluation.qa_metrics import reliability
from callqa.evaluation.qa_refs import consensus
from callqa.evaluation.report import Section, Table, write_html_report

if TYPE_CHECKING:
    from callqa.evaluation.qa_eval import Predictions


def _ci(v: list[float] | None) -> str | None:
    if not v:
        return None
    return f"{v[0]:.3f} [{v[1]:.3f}, {v[2]:.3f}]"


def plot_reliability(rubric: Rubric, pred: Predictions, records: Sequence[CallRecord], path: Path) -> Path:
    """One small reliability diagram per item against the ground truth: predicted vs observed rate."""
    ids = rubric.ids
    cols = 4
    rows = (len(ids) + cols - 1) // cols
    index = {cid: k for k, cid in enumerate(pred.ids)}
    sel = np.array([index[c.id] for c in records if c.truth is not None])
    with _figure(path, (3.0 * cols, 2.6 * rows)) as fig:
        axes = fig.subplots(rows, cols, squeeze=False).ravel()
        for ax, item in zip(axes, ids, strict=False):
            y = np.array([item in c.truth.defects for c in records if c.truth is not None], float)  # type: ignore[union-attr]
            pts = reliability(y, pred.probs[item][sel]) if len(sel) else []
            ax.plot([0, 1], [0, 1], color="#999", lw=0.8, ls="--")
            if pts:
                xs, ys, ns = zip(*pts, strict=True)
                ax.scatter(xs, ys, s=[8 + 2 * n for n in ns], color="#4C72B0")
                ax.plot(xs, ys, color="#4C72B0", lw=1)
            ax.set_title(item, fontsize=9)
            ax.set_xlim(0, 1)
            ax.set_ylim(-0.02, 1.02)
        for ax in axes[len(ids) :]:
            ax.axis("off")
        fig.suptitle("Reliability against the ground truth (dot size: calls)", fontsize=10)
    return path


def plot_totals(pred: Predictions, records: Sequence[CallRecord], rubric: Rubric, path: Path) -> Path | None:
    cons = consensus(records)
    if not cons.call_ids:
        return None
    index = {cid: k for k, cid in enumerate(pred.ids)}
    model = pred.totals[[index[c] for c in cons.call_ids]]
    ref = cons.totals()
    with _figure(path, (5.0, 4.6)) as fig:
        ax = fig.subplots()
        ax.scatter(ref, model, s=12, alpha=0.6, color="#4C72B0")
        ax.plot([0, 100], [0, 100], color="#999", lw=0.8, ls="--")
        for b in rubric.bands[:-1]:
            ax.axvline(b.min, color="#ddd", lw=0.8)
            ax.axhline(b.min, color="#ddd", lw=0.8)
            ax.text(b.min + 0.5, 1, band_label(b.name), fontsize=7, color="#888")
        ax.set_xlabel("inspectors' consensus total")
        ax.set_ylabel("model total")
        ax.set_title("Total score: model against the consensus")
    return path


def plot_agreement(report: dict[str, Any], path: Path) -> Path | None:
    """QWK with its interval: the model beside each inspector, all against the consensus."""
    totals = report.get("totals", {})
    if "model_vs_consensus" not in totals:
        return None
    names = ["model", *totals.get("inspectors", {})]
    vals = [totals["model_vs_consensus"]["qwk"]] + [
        v["vs_consensus"]["qwk"] for v in totals["inspectors"].values()
    ]
    with _figure(path, (1.0 + 0.8 * len(names), 3.6)) as fig:
        ax = fig.subplots()
        x = np.arange(len(names))
        v = np.array([q[0] for q in vals])
        err = np.array([[q[0] - q[1] for q in vals], [q[2] - q[0] for q in vals]])
        ax.bar(x, v, color=["#C44E52"] + ["#4C72B0"] * (len(names) - 1))
        ax.errorbar(x, v, yerr=np.nan_to_num(err), fmt="none", color="black", capsize=3)
        ax.set_xticks(x, names, rotation=30, ha="right")
        low = float(np.nanmin(v)) if np.isfinite(v).any() else 0.0
        ax.set_ylim(min(0.0, low - 0.1), 1.0)
        ax.set_ylabel("QWK with the consensus")
        ax.set_title("Agreement (inspectors: with the others' consensus)", fontsize=10)
    return path


def plot_risk(report: dict[str, Any], path: Path) -> Path | None:
    risk = report.get("risk")
    if not risk:
        return None
    budgets = list(risk["budgets"])
    found = [risk["budgets"][b]["found_per_call"][0] for b in budgets]
    with _figure(path, (4.6, 3.4)) as fig:
        ax = fig.subplots()
        x = np.arange(len(budgets))
        ax.bar(x - 0.2, found, 0.4, label="model's worst first", color="#C44E52")
        ax.bar(x + 0.2, [risk["prevalence"]] * len(budgets), 0.4, label="random sample", color="#999")
        ax.set_xticks(x, [f"listen to {b}" for b in budgets])
        ax.set_ylabel("defective calls per listened call")
        ax.set_ylim(0, 1)
        ax.legend(fontsize=8)
        ax.set_title("Risk ranking", fontsize=10)
    return path


def plot_flips(report: dict[str, Any], path: Path) -> Path:
    buckets = report["flips"]["buckets"]
    names = list(buckets)
    with _figure(path, (4.8, 3.4)) as fig:
        ax = fig.subplots()
        x = np.arange(len(names))
        ax.bar(x - 0.2, [buckets[n]["item_flip_rate"] or 0 for n in names], 0.4, label="item decisions")
        ax.bar(x + 0.2, [buckets[n]["band_flip_rate"] or 0 for n in names], 0.4, label="bands")
        ax.set_xticks(x, [f"CER {n}\n({buckets[n]['calls']} calls)" for n in names], fontsize=8)
        ax.set_ylabel("share changed vs ground-truth text")
        ax.legend(fontsize=8)
        ax.set_title("Flips from ASR and SER errors", fontsize=10)
    return path


def _item_table(report: dict[str, Any], ref: str) -> Table:
    rows = []
    for item, refs in report["items"].items():
        m = refs.get(ref)
        if m:
            rows.append(
                [
                    item,
                    m["positives"],
                    _ci(m["precision"]),
                    _ci(m["recall"]),
                    _ci(m["f1"]),
                    _ci(m["auc"]),
                    _ci(m["ece"]),
                ]
            )
    return Table(
        f"Items against the {ref.removeprefix('vs_')}",
        ["item", "defects", "precision", "recall", "F1", "AUC", "ECE"],
        rows,
    )


def _total_rows(named: dict[str, dict[str, Any]]) -> list[list[Any]]:
    keys = ("qwk", "pearson", "spearman", "mae", "icc", "alpha", "band_exact", "band_adjacent", "smd")
    return [[name, m["calls"], *(_ci(m[k]) for k in keys)] for name, m in named.items()]


TOTAL_COLUMNS = [
    "rater",
    "calls",
    "QWK",
    "Pearson",
    "Spearman",
    "MAE",
    "ICC",
    "α",
    "band exact",
    "band ±1",
    "SMD",
]


def write_qa_report(
    report: dict[str, Any], rubric: Rubric, pred: Predictions, records: Sequence[CallRecord], out: Path
) -> Path:
    images = [
        p
        for p in (
            plot_agreement(report, out / "agreement.png"),
            plot_totals(pred, records, rubric, out / "totals.png"),
            plot_reliability(rubric, pred, records, out / "reliability.png"),
            plot_risk(report, out / "risk.png"),
            plot_flips(report, out / "flips.png"),
        )
        if p is not None
    ]
    totals = report.get("totals", {})
    sections = [
        Section(
            "Items",
            f"{report['calls']} {report['split']} calls, heard by the pipeline ({report['heard']}); "
            "intervals are bootstrap 95 % over calls.",
            [_item_table(report, "vs_consensus"), _item_table(report, "vs_truth")],
        ),
    ]
    if "model_vs_consensus" in totals:
        named = {
            "model": totals["model_vs_consensus"],
            "model, expected total": totals["model_expected_vs_consensus"],
        } | {f"{r} (vs the others)": v["vs_consensus"] for r, v in totals.get("inspectors", {}).items()}
        sections.append(
            Section(
                "Total score against the consensus",
                "Mean single-inspector QWK against the others' consensus: "
                f"{totals.get('mean_inspector_qwk')}; "
                f"the model against the same references: {totals.get('mean_model_qwk_same_reference')}.",
                [
                    Table("Agreement", TOTAL_COLUMNS, _total_rows(named)),
                    Table("Per team (model)", TOTAL_COLUMNS, _total_rows(totals.get("per_team", {}))),
                ],
            )
        )
    if report.get("truth"):
        named = {"model": report["truth"]["model"]} | report["truth"].get("inspectors", {})
        sections.append(
            Section(
                "Against the ground truth (decisions at full points)",
                "",
                [Table("Agreement with the truth", TOTAL_COLUMNS, _total_rows(named))],
            )
        )
    if "risk" in report:
        r = report["risk"]
        rows = [
            [b, v["listened"], _ci(v["found_per_call"]), v["random_per_call"], v["lift"]]
            for b, v in r["budgets"].items()
        ]
        sections.append(
            Section(
                "Risk ranking",
                f"Defective: consensus total under 80 or a fatal item; {r['prevalence']:.1%} of calls.",
                [
                    Table(
                        "Listening to the worst-ranked calls",
                        ["budget", "calls", "defective per call", "random", "lift"],
                        rows,
                    )
                ],
            )
        )
    f = report["flips"]
    sections.append(
        Section(
            "Flips",
            f"Mean call CER {f['mean_cer']}; band decisions changed on {f['band_flip_rate']:.1%} of calls.",
            [
                Table(
                    "By CER",
                    ["CER", "calls", "item flip rate", "band flip rate"],
                    [
                        [k, v["calls"], v["item_flip_rate"], v["band_flip_rate"]]
                        for k, v in f["buckets"].items()
                    ],
                ),
                Table(
                    "By item",
                    ["item", "flips", "defect only on truth", "defect only on heard"],
                    [
                        [k, v["flips"], v["defect_on_truth_only"], v["defect_on_heard_only"]]
                        for k, v in f["items"].items()
                    ],
                ),
            ],
        )
    )
    return write_html_report(
        f"QA evaluation — {Path(report['model']).name}", sections, images, out / "report.html"
    )
