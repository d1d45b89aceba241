"""The corpus statistics as a report: Rich tables in the terminal, ``stats.json``, PNG figures and one
self-contained ``report.html``. The numbers themselves come from corpus_stats.py and its parts."""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

import numpy as np
from rich.console import Console

from callqa.data.constants import INSPECTION_KINDS
from callqa.data.files import write_json
from callqa.evaluation.agreement import RaterBias
from callqa.evaluation.corpus_counts import split_keys
from callqa.evaluation.corpus_results import CorpusStats
from callqa.evaluation.corpus_stats import compute_corpus_stats
from callqa.evaluation.plots import FIGURE_SECTIONS, save_stats_plots
from callqa.evaluation.report import Section, Table, print_table, write_html_report

log = logging.getLogger(__name__)


def corpus_stats_report(
    dir: str | os.PathLike[str],
    out_dir: str | os.PathLike[str] | None = None,
    n_boot: int = 1000,
    seed: int = 0,
) -> tuple[CorpusStats, list[Path]]:
    """Compute the statistics and write ``stats.json``, the PNG figures and ``report.html`` to ``out_dir``.

    Returns the statistics and every path written (stats.json first, report.html last).
    """
    stats = compute_corpus_stats(dir, n_boot=n_boot, seed=seed)
    out = Path(out_dir) if out_dir is not None else Path(dir) / "stats"
    out.mkdir(parents=True, exist_ok=True)
    stats_path = out / "stats.json"
    write_json(stats_path, stats.to_json())
    images = save_stats_plots(stats, out)
    sections = stats_sections(stats)
    by_title = {s.title: s for s in sections}
    for path in images:
        by_title[FIGURE_SECTIONS[path.name]].images.append(path)
    report = write_html_report(f"Corpus statistics — {Path(dir).name}", sections, [], out / "report.html")
    log.info("corpus stats written to %s", out)
    return stats, [stats_path, *images, report]


# ---------------------------------------------------------------------------------------------- tables


def _pct(x: float | None) -> str | None:
    return None if x is None else f"{100.0 * x:.1f} %"


def _ci(b: RaterBias | None) -> str | None:
    if b is None or b.ci_low is None or b.ci_high is None:
        return None
    return f"[{b.ci_low:+.2f}, {b.ci_high:+.2f}]"


def _fmt(x: float | None, digits: int = 2) -> str:
    return "—" if x is None else f"{x:.{digits}f}"


def _signed(x: float | None) -> str | None:
    return None if x is None else f"{x:+.2f}"


def counts_table(stats: CorpusStats) -> Table:
    c = stats.counts
    splits = split_keys([*c.calls, *c.utterances])
    rows: list[list[Any]] = [
        [
            s,
            c.calls.get(s, 0),
            c.call_hours_by_split.get(s, 0.0),
            c.utterances.get(s, 0),
            c.utterance_hours.get(s, 0.0),
        ]
        for s in splits
    ]
    rows.append(["coverage", None, None, c.coverage_utterances, c.coverage_hours])
    rows.append(
        ["total", c.calls_total, c.call_hours, sum(c.utterances.values()), sum(c.utterance_hours.values())]
    )
    note = (
        f"{c.stereo_calls} stereo / {c.mono_calls} mono calls; {c.inspections} inspections on "
        f"{c.inspected_calls} calls, {c.calibration_calls} calibration calls; "
        f"{c.calls_with_csat} calls with CSAT, {c.calls_with_truth} with ground truth"
    )
    return Table("Counts", ["split", "calls", "call h", "utterances", "utterance h"], rows, note)


def items_table(stats: CorpusStats) -> Table:
    splits = split_keys(s for it in stats.items for s in it.inspected_rate_by_split)
    cols = ["item", "名称", "points", "fatal", "true", "inspected", *(f"inspected {s}" for s in splits)]
    if stats.has_truth:
        cols += [f"true {s}" for s in splits]
    rows = []
    for it in stats.items:
        row: list[Any] = [it.id, it.name_zh, it.points, it.fatal, _pct(it.true_rate), _pct(it.inspected_rate)]
        row += [_pct(it.inspected_rate_by_split.get(s)) for s in splits]
        if stats.has_truth:
            row += [_pct(it.true_rate_by_split.get(s)) for s in splits]
        rows.append(row)
    return Table("Defect rates per rubric item", cols, rows, "inspected = first primary inspection per call")


def scores_table(stats: CorpusStats) -> Table:
    s = stats.scores
    rows: list[list[Any]] = [
        [b, f"≥ {s.band_min[b]:g}", s.band_counts[b], _pct(s.band_shares[b])] for b in s.band_min
    ]
    note = f"n = {s.n}, mean {_fmt(s.mean)}, median {_fmt(s.median)}, sd {_fmt(s.std)}"
    if s.truth_mean is not None:
        note += f"; mean truth score {s.truth_mean:.2f}"
    return Table(
        "Score bands (first primary inspection per call)", ["band", "min", "calls", "share"], rows, note
    )


def emotions_table(stats: CorpusStats) -> Table:
    labels = list(dict.fromkeys(e for mix in stats.emotions.values() for e in mix))
    rows = []
    for speaker, mix in stats.emotions.items():
        total = sum(mix.values())
        rows.append([speaker, total, *(_pct(mix.get(e, 0) / total) if total else None for e in labels)])
    return Table("Emotion mix per speaker (turns)", ["speaker", "turns", *labels], rows)


def csat_table(stats: CorpusStats) -> Table:
    c = stats.csat
    rows: list[list[Any]] = [[k, v, _pct(v / c.n) if c.n else None] for k, v in c.counts.items()]
    note = (
        f"n = {c.n}, mean {_fmt(c.mean)}; Spearman ρ vs mean inspector total = {_fmt(c.spearman_vs_total, 3)}"
        f" (p = {_fmt(c.p_value, 3)}, {c.n_paired} calls)"
    )
    return Table("CSAT", ["csat", "calls", "share"], rows, note)


def inspectors_table(stats: CorpusStats) -> Table:
    cols = ["inspector", *INSPECTION_KINDS, "bias vs consensus", "95 % CI", "n cal."]
    if stats.has_truth:
        cols += ["bias vs truth", "95 % CI", "mean miss rate"]
    cols += ["drift / week", "drift basis"]
    rows = []
    for i in stats.inspectors:
        bc = i.bias_vs_consensus
        row: list[Any] = [i.id, *(i.inspections_by_kind.get(k, 0) for k in INSPECTION_KINDS)]
        row += [_signed(bc.bias if bc else None), _ci(bc), bc.n if bc else None]
        if stats.has_truth:
            misses = [v for v in i.miss_rate.values() if v is not None]
            bt = i.bias_vs_truth
            row += [
                _signed(bt.bias if bt else None),
                _ci(bt),
                _pct(float(np.mean(misses))) if misses else None,
            ]
        row += [_signed(i.drift.slope_per_week if i.drift else None), i.drift.basis if i.drift else None]
        rows.append(row)
    return Table("Inspectors", cols, rows, "bias < 0: harsher than the reference (points of total score)")


def miss_table(stats: CorpusStats) -> Table:
    ids = [it.id for it in stats.items]
    rows = [[i.id, *(_pct(i.miss_rate.get(item)) for item in ids)] for i in stats.inspectors if i.miss_rate]
    return Table("Miss rate per item vs truth", ["inspector", *ids], rows)


def agreement_tables(stats: CorpusStats) -> list[Table]:
    a = stats.agreement
    ci = f" [{a.alpha_total_ci[0]:.3f}, {a.alpha_total_ci[1]:.3f}]" if a.alpha_total_ci else ""
    summary = Table(
        "Krippendorff α on calibration calls",
        ["measure", "α"],
        [["total (interval)", a.alpha_total], *([f"{k} (nominal)", v] for k, v in a.item_alpha.items())],
        f"{a.calibration_calls} calibration calls, {len(a.inspectors)} inspectors; "
        f"total α 95 % CI{ci or ' —'}",
    )
    pairs = Table(
        "Pairwise agreement on shared calls",
        ["a", "b", "n", "Spearman ρ", "mean |a−b|", "mean a−b"],
        [[p.rater_a, p.rater_b, p.n, p.spearman, p.mean_abs_diff, p.mean_diff] for p in a.pairwise],
        f"mean ρ = {_fmt(a.mean_pairwise_spearman, 3)}",
    )
    return [summary, pairs]


def stats_sections(stats: CorpusStats) -> list[Section]:
    """The report's sections; the terminal and the HTML file show the same tables."""
    info = ", ".join(f"{k} {v}" for k, v in stats.info.items() if k != "counts")
    inspector_tables = [inspectors_table(stats)]
    if stats.has_truth:
        inspector_tables.append(miss_table(stats))
    return [
        Section(
            "Corpus",
            [f"{stats.corpus}" + (f" ({info})" if info else ""), *stats.notes],
            [counts_table(stats)],
        ),
        Section("Rubric items", tables=[items_table(stats)]),
        Section("Scores", tables=[scores_table(stats), csat_table(stats)]),
        Section("Emotions", tables=[emotions_table(stats)]),
        Section("Inspectors", tables=inspector_tables),
        Section("Agreement", tables=agreement_tables(stats)),
    ]


def render_stats(stats: CorpusStats, console: Console) -> None:
    """Print every table of the report to a Rich console."""
    for section in stats_sections(stats):
        console.rule(section.title)
        for table in section.tables:
            print_table(console, table)
