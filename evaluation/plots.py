"""Figures for the corpus report, drawn with matplotlib's object API and saved as PNG atomically.

Figures are built on ``matplotlib.figure.Figure`` (rendered by Agg), never through pyplot: no global
state, no GUI backend, safe in a server or a test process that already imported pyplot elsewhere.

Chinese labels need a CJK font. When fontconfig knows one that matplotlib can load, item names are shown
as 名称 + id; otherwise ids and English band names are used and any other CJK character is replaced, so
that no "Glyph missing" warning is ever emitted and no label renders as empty boxes.
"""

from __future__ import annotations

import functools
import logging
import math
import os
import shutil
import subprocess
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

import matplotlib
import numpy as np
from matplotlib import font_manager
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from callqa.data.files import atomic_path

if TYPE_CHECKING:
    from callqa.evaluation.agreement import PairAgreement
    from callqa.evaluation.corpus_stats import CorpusStats, InspectorStats, ItemRates, ScoreStats

log = logging.getLogger(__name__)

#: File name of each figure → the report section it belongs to.
FIGURE_SECTIONS = {
    "item_rates.png": "Rubric items",
    "score_distribution.png": "Scores",
    "emotion_mix.png": "Emotions",
    "inspector_bias.png": "Inspectors",
    "inspector_drift.png": "Inspectors",
    "pairwise_spearman.png": "Agreement",
}

#: English names of the default bands, for when no CJK font can draw 优秀/良好/合格/不合格.
BAND_EN = {"优秀": "excellent", "良好": "good", "合格": "pass", "不合格": "fail"}

_CJK_START = 0x2E80  # CJK radicals onward: nothing DejaVu Sans can draw
DPI = 110


@functools.cache
def cjk_font() -> str | None:
    """A font family that both fontconfig (``fc-list :lang=zh``) and matplotlib know, or None."""
    fc_list = shutil.which("fc-list")
    if fc_list is None:
        return None
    try:
        out = subprocess.run(
            [fc_list, ":lang=zh", "family"], capture_output=True, text=True, timeout=10, check=False
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    known = {f.name for f in font_manager.fontManager.ttflist}
    for line in out.splitlines():
        for family in line.split(","):
            if family.strip() in known:
                return family.strip()
    log.debug("no CJK font available to matplotlib; figures use ids and English labels")
    return None


def plain(text: str) -> str:
    """Text as it can be drawn: unchanged with a CJK font, CJK characters replaced by '?' without one."""
    if cjk_font() is not None:
        return text
    return "".join(ch if ord(ch) < _CJK_START else "?" for ch in text)


def item_label(item: ItemRates) -> str:
    return f"{item.name_zh}\n{item.id}" if cjk_font() is not None else item.id


def band_label(name: str) -> str:
    return name if cjk_font() is not None else BAND_EN.get(name, plain(name))


@contextmanager
def _figure(path: str | os.PathLike[str], size: tuple[float, float]) -> Iterator[Figure]:
    """A figure in the right font context, saved atomically as PNG when the block ends."""
    font = cjk_font()
    rc = {"font.family": "sans-serif", "font.sans-serif": [font, "DejaVu Sans"]} if font else {}
    with matplotlib.rc_context(rc):
        fig = Figure(figsize=size, layout="constrained")
        yield fig
        with atomic_path(path, suffix=".png") as tmp:
            fig.savefig(tmp, format="png", dpi=DPI)
    log.debug("saved %s", path)


def _finite(x: float | None) -> bool:
    return x is not None and math.isfinite(x)


def plot_item_rates(items: Sequence[ItemRates], path: str | os.PathLike[str]) -> Path:
    """Grouped bars per rubric item: true defect rate (when known) beside the inspected deduction rate."""
    has_truth = any(_finite(it.true_rate) for it in items)
    series = [("inspected", [it.inspected_rate for it in items])]
    if has_truth:
        series.insert(0, ("truth", [it.true_rate for it in items]))
    x = np.arange(len(items))
    width = 0.8 / len(series)
    with _figure(path, (max(6.0, 0.7 * len(items) + 2), 4.2)) as fig:
        ax = fig.subplots()
        for k, (name, rates) in enumerate(series):
            values = [100.0 * r if _finite(r) else 0.0 for r in rates]
            ax.bar(x + (k - (len(series) - 1) / 2) * width, values, width, label=name)
        ax.set_xticks(x, [item_label(it) for it in items], rotation=45, ha="right", fontsize=8)
        ax.set_ylabel("% of calls")
        ax.set_title(
            "Defect rate per item: truth vs inspectors" if has_truth else "Inspected defect rate per item"
        )
        ax.legend()
    return Path(path)


def plot_emotion_mix(emotions: dict[str, dict[str, int]], path: str | os.PathLike[str]) -> Path:
    """Stacked shares of turn emotions per speaker: agents and customers should differ, labels be varied."""
    speakers = list(emotions)
    labels = list(dict.fromkeys(e for mix in emotions.values() for e in mix))
    with _figure(path, (7.0, 1.2 + 0.6 * max(1, len(speakers)))) as fig:
        ax = fig.subplots()
        left = np.zeros(len(speakers))
        totals = np.array([max(1, sum(emotions[s].values())) for s in speakers], dtype=float)
        for label in labels:
            share = np.array([emotions[s].get(label, 0) for s in speakers], dtype=float) / totals * 100.0
            ax.barh(speakers, share, left=left, label=plain(label))
            left += share
        ax.set_xlabel("% of turns")
        ax.set_xlim(0, 100)
        ax.set_title("Emotion mix per speaker")
        ax.legend(ncols=min(len(labels), 6), fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.35))
    return Path(path)


def plot_score_distribution(scores: ScoreStats, path: str | os.PathLike[str]) -> Path:
    """Histogram of totals with the rubric's band boundaries, so the band shares can be read off."""
    edges = np.asarray(scores.hist_edges, dtype=float)
    counts = np.asarray(scores.hist_counts, dtype=float)
    with _figure(path, (7.0, 4.0)) as fig:
        ax = fig.subplots()
        ax.bar(edges[:-1], counts, width=np.diff(edges), align="edge", edgecolor="white")
        top = max(1.0, float(counts.max()) if counts.size else 1.0)
        for name, lower in scores.band_min.items():
            if lower > 0:
                ax.axvline(lower, color="tab:red", linestyle="--", linewidth=1)
            ax.text(lower + 0.5, top * 1.02, band_label(name), fontsize=8, color="tab:red")
        if _finite(scores.mean):
            ax.axvline(scores.mean, color="black", linewidth=1, label=f"mean {scores.mean:.1f}")
            ax.legend(loc="center left")
        ax.set_xlim(0, 100)
        ax.set_ylim(0, top * 1.12)
        ax.set_xlabel("total score (first primary inspection)")
        ax.set_ylabel("calls")
        ax.set_title(f"Score distribution (n = {scores.n})")
    return Path(path)


def _bias_series(inspectors: Sequence[InspectorStats]) -> list[tuple[str, list]]:
    series = [("vs consensus", [i.bias_vs_consensus for i in inspectors])]
    if any(i.bias_vs_truth is not None for i in inspectors):
        series.append(("vs truth", [i.bias_vs_truth for i in inspectors]))
    return series


def plot_inspector_bias(inspectors: Sequence[InspectorStats], path: str | os.PathLike[str]) -> Path:
    """Each inspector's bias with its 95 % CI: a bar that misses zero is a real leniency or severity."""
    ids = [plain(i.id) for i in inspectors]
    y = np.arange(len(inspectors))
    series = _bias_series(inspectors)
    with _figure(path, (7.0, 1.5 + 0.45 * max(1, len(ids)))) as fig:
        ax = fig.subplots()
        for k, (name, biases) in enumerate(series):
            offset = (k - (len(series) - 1) / 2) * 0.3
            pts = [(j, b) for j, b in enumerate(biases) if b is not None and _finite(b.bias)]
            if not pts:
                continue
            pos = np.array([j for j, _ in pts]) + offset
            mean = np.array([b.bias for _, b in pts])
            lo = np.array([b.ci_low if _finite(b.ci_low) else b.bias for _, b in pts])
            hi = np.array([b.ci_high if _finite(b.ci_high) else b.bias for _, b in pts])
            ax.errorbar(mean, pos, xerr=[mean - lo, hi - mean], fmt="o", capsize=3, label=name)
        ax.axvline(0, color="grey", linewidth=1)
        ax.set_yticks(y, ids)
        ax.invert_yaxis()
        ax.set_xlabel("mean signed difference in total score (points; < 0 harsher)")
        ax.set_title("Inspector bias with 95 % CI")
        ax.legend(fontsize=8)
    return Path(path)


def plot_pairwise_heatmap(pairwise: Sequence[PairAgreement], path: str | os.PathLike[str]) -> Path:
    """Spearman ρ between every pair of inspectors; blank cells had too few shared calls."""
    raters = sorted({p.rater_a for p in pairwise} | {p.rater_b for p in pairwise})
    idx = {r: k for k, r in enumerate(raters)}
    rho = np.full((len(raters), len(raters)), np.nan)
    np.fill_diagonal(rho, 1.0)
    for p in pairwise:
        value = p.spearman if _finite(p.spearman) else np.nan
        rho[idx[p.rater_a], idx[p.rater_b]] = rho[idx[p.rater_b], idx[p.rater_a]] = value
    side = 2.5 + 0.55 * len(raters)
    with _figure(path, (side + 1.0, side)) as fig:
        ax = fig.subplots()
        image = ax.imshow(np.ma.masked_invalid(rho), cmap="RdYlGn", vmin=-1, vmax=1)
        labels = [plain(r) for r in raters]
        ax.set_xticks(range(len(raters)), labels, rotation=45, ha="right")
        ax.set_yticks(range(len(raters)), labels)
        for (r, c), v in np.ndenumerate(rho):
            if np.isfinite(v) and r != c:
                ax.text(c, r, f"{v:.2f}", ha="center", va="center", fontsize=8)
        fig.colorbar(image, ax=ax, label="Spearman ρ")
        ax.set_title("Pairwise agreement on totals")
    return Path(path)


def plot_inspector_drift(inspectors: Sequence[InspectorStats], path: str | os.PathLike[str]) -> Path:
    """Weekly mean signed error per inspector; a sloping line is an inspector drifting over weeks."""
    drifting = [i for i in inspectors if i.drift is not None and i.drift.weeks]
    bases = sorted({i.drift.basis for i in drifting})
    with _figure(path, (7.5, 4.2)) as fig:
        ax = fig.subplots()
        for i in drifting:
            weeks = [w.week for w in i.drift.weeks]
            means = [w.mean for w in i.drift.weeks]
            slope = i.drift.slope_per_week
            label = plain(i.id) + (f" ({slope:+.2f}/wk)" if _finite(slope) else "")
            ax.plot(weeks, means, marker="o", markersize=3, label=label)
        ax.axhline(0, color="grey", linewidth=1)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_xlabel("week since first inspection")
        ax.set_ylabel(f"mean signed error vs {' / '.join(bases) or 'reference'} (points)")
        ax.set_title("Inspector drift")
        if drifting:
            ax.legend(fontsize=7, ncols=2)
    return Path(path)


def save_stats_plots(stats: CorpusStats, out_dir: str | os.PathLike[str]) -> list[Path]:
    """Every figure the statistics support; one without data (e.g. no pairs) is skipped, not drawn empty."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths: list[Path] = []
    if stats.items:
        paths.append(plot_item_rates(stats.items, out / "item_rates.png"))
    if stats.scores.n:
        paths.append(plot_score_distribution(stats.scores, out / "score_distribution.png"))
    if any(sum(mix.values()) for mix in stats.emotions.values()):
        paths.append(plot_emotion_mix(stats.emotions, out / "emotion_mix.png"))
    if any(i.bias_vs_consensus or i.bias_vs_truth for i in stats.inspectors):
        paths.append(plot_inspector_bias(stats.inspectors, out / "inspector_bias.png"))
    if any(i.drift and i.drift.weeks for i in stats.inspectors):
        paths.append(plot_inspector_drift(stats.inspectors, out / "inspector_drift.png"))
    if stats.agreement.pairwise:
        paths.append(plot_pairwise_heatmap(stats.agreement.pairwise, out / "pairwise_spearman.png"))
    log.info("saved %d figures to %s", len(paths), out)
    return paths


def plot_group_bars(
    groups: dict[str, dict[str, float]], ylabel: str, title: str, path: str | os.PathLike[str]
) -> Path:
    """One panel per breakdown (e.g. CER by SNR, by emotion), a bar per group; for model reports."""
    with _figure(path, (4.2 * max(1, len(groups)), 3.6)) as fig:
        axes = fig.subplots(1, max(1, len(groups)), squeeze=False)[0]
        for ax, (name, values) in zip(axes, groups.items(), strict=False):
            labels = [plain(k) for k in values]
            ax.bar(range(len(values)), [v if _finite(v) else 0.0 for v in values.values()], color="#4C72B0")
            ax.set_xticks(range(len(values)), labels, rotation=45, ha="right", fontsize=8)
            ax.set_title(f"{title} by {name}", fontsize=10)
            ax.set_ylabel(ylabel)
    return Path(path)


def plot_confusion(matrix: np.ndarray, labels: Sequence[str], path: str | os.PathLike[str]) -> Path:
    """Row-normalised confusion matrix (truth down, prediction across) with the counts in the cells."""
    rows = matrix / np.maximum(matrix.sum(axis=1, keepdims=True), 1)
    with _figure(path, (1.2 * len(labels) + 2, 1.0 * len(labels) + 1.5)) as fig:
        ax = fig.subplots()
        im = ax.imshow(rows, cmap="Blues", vmin=0, vmax=1)
        for i in range(len(labels)):
            for j in range(len(labels)):
                color = "white" if rows[i, j] > 0.5 else "black"
                ax.text(j, i, f"{int(matrix[i, j])}", ha="center", va="center", fontsize=8, color=color)
        ax.set_xticks(range(len(labels)), [plain(x) for x in labels], rotation=45, ha="right")
        ax.set_yticks(range(len(labels)), [plain(x) for x in labels])
        ax.set_xlabel("predicted")
        ax.set_ylabel("true")
        ax.set_title("Confusion (row-normalised)")
        fig.colorbar(im, ax=ax, fraction=0.046)
    return Path(path)
