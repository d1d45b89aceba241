"""What is in a call corpus, and how much its inspector labels can be trusted: ``callqa corpus stats``.

The same statistics are computed for a synthetic corpus and for a real centre's export: ground truth
(``truth``) and simulated inspector profiles (``inspectors.json``) only add figures, never gate them. One
file per job, each stating the choices it makes (they are also in the ``notes`` of every CorpusStats):

* corpus_inspections.py: which sheets are an inspector's primary score; calibration calls; truth scores.
* corpus_counts.py: counts and hours, defect rates (true vs inspected), score bands, emotions, CSAT.
* corpus_inspectors.py: each inspector's bias vs consensus and vs truth, misses and drift.
* corpus_agreement.py: Krippendorff's α on calibration calls and pairwise agreement.
* corpus_results.py: the result dataclasses and their JSON round trip; corpus_report.py renders them.
"""

from __future__ import annotations

import logging
import os

from callqa.data.corpus import Corpus
from callqa.evaluation.corpus_agreement import agreement_stats
from callqa.evaluation.corpus_counts import count_corpus, csat_stats, emotion_mix, item_rates, score_stats
from callqa.evaluation.corpus_inspectors import inspector_stats
from callqa.evaluation.corpus_results import CorpusStats, InspectorStats, ItemRates, ScoreStats

__all__ = ["CorpusStats", "InspectorStats", "ItemRates", "ScoreStats", "compute_corpus_stats"]

log = logging.getLogger(__name__)

#: What the report keeps from corpus.json: enough to tell which corpus, generator and seed it describes.
INFO_KEYS = ("name", "preset", "seed", "generator_version", "fingerprint", "counts")


def compute_corpus_stats(dir: str | os.PathLike[str], n_boot: int = 1000, seed: int = 0) -> CorpusStats:
    """All statistics of one corpus folder; ``n_boot`` resamples and ``seed`` fix every bootstrap CI."""
    corpus = Corpus(dir)
    log.info("corpus %s: %d calls, %d utterances", corpus.dir, len(corpus.calls), len(corpus.utterances))
    return CorpusStats(
        corpus=str(corpus.dir),
        info={k: v for k, v in corpus.info.items() if k in INFO_KEYS},
        has_truth=any(c.truth is not None for c in corpus.calls),
        has_inspector_profiles=bool(corpus.profiles),
        counts=count_corpus(corpus),
        items=item_rates(corpus),
        scores=score_stats(corpus),
        emotions=emotion_mix(corpus),
        csat=csat_stats(corpus),
        inspectors=inspector_stats(corpus, n_boot, seed),
        agreement=agreement_stats(corpus, n_boot, seed),
    )
