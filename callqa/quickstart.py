"""``callqa quickstart``: the main job end to end on the synthetic corpus.

Stage one (this issue): generate the small corpus (reused when one with the same preset, seed and
generator version is already there) and report its statistics. Later stages train, export, serve and
evaluate on it.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

from callqa.data.synth.config import load_synth_config, preset_path
from callqa.data.synth.generate import GENERATOR_VERSION, generate_corpus
from callqa.evaluation.corpus_stats import corpus_stats_report, render_stats
from callqa.logs import make_console

log = logging.getLogger(__name__)


def _reusable(corpus: Path, preset: str, seed: int) -> bool:
    info_path = corpus / "corpus.json"
    if not info_path.exists():
        return False
    info = json.loads(info_path.read_text(encoding="utf-8"))
    return (info.get("preset"), info.get("seed"), info.get("generator_version")) == (
        preset,
        seed,
        GENERATOR_VERSION,
    )


def run_quickstart(out: Path, preset: str = "small", seed: int = 0, workers: int | None = None) -> None:
    corpus = out / "corpus"
    if _reusable(corpus, preset, seed):
        log.info("reusing the %s corpus in %s", preset, corpus)
    else:
        log.info("stage 1/1: generating the %s synthetic corpus in %s", preset, corpus)
        generate_corpus(
            load_synth_config(preset_path(preset)), corpus, seed=seed, workers=workers, overwrite=True
        )
    stats, _ = corpus_stats_report(corpus, out / "corpus-stats")
    render_stats(stats, make_console())
    log.info("corpus report: %s", out / "corpus-stats" / "report.html")
