"""Generating a whole synthetic corpus: plan every call up front, render in parallel, then inspect.

Planning and inspection run in the parent process from one seeded generator; rendering runs in worker
processes from per-call seeds. The output folder appears only when complete (built under a temporary
name and renamed), and the same seed gives byte-identical files.
"""

from __future__ import annotations

import hashlib
import logging
import multiprocessing as mp
import os
from collections import Counter
from contextlib import nullcontext
from datetime import datetime, timedelta
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import yaml
from tqdm import tqdm

from callqa.data.constants import SPLITS
from callqa.data.files import atomic_dir, write_json, write_jsonl
from callqa.data.rubric import Rubric, load_rubric
from callqa.data.schema import CallRecord, Survey
from callqa.data.segments import call_to_utterances
from callqa.data.synth.config import SynthConfig
from callqa.data.synth.inspectors import inspect_calls, make_inspectors
from callqa.data.synth.render import Agent, CallSpec, CoverageSpec, Line, render_call, render_coverage
from callqa.data.synth.templates import TemplateBank
from callqa.data.synth.voices import espeak_version, private_espeak_data, sample_voice

log = logging.getLogger(__name__)

#: Bumped whenever the same seed would give a different corpus.
GENERATOR_VERSION = "2.0"


def _split_counts(n: int, fractions: dict[str, float]) -> dict[str, int]:
    """Whole numbers per split that add to n; every split with a share gets at least one when n allows."""
    counts = {s: int(np.floor(n * fractions.get(s, 0.0))) for s in SPLITS}
    for s in SPLITS:
        if fractions.get(s, 0.0) > 0 and counts[s] == 0 and sum(counts.values()) < n:
            counts[s] = 1
    counts["train"] += n - sum(counts.values())
    return counts


def _make_agents(rng: np.random.Generator, cfg: SynthConfig) -> list[Agent]:
    """Agents belong to one split each, with their own voice, so held-out agents are held-out voices."""
    counts = _split_counts(cfg.agents, cfg.split_fractions)
    agents = []
    numbers = rng.choice(np.arange(1000, 10000), size=cfg.agents, replace=False)
    k = 0
    for split in SPLITS:
        for _ in range(counts[split]):
            agents.append(
                Agent(
                    id=f"A{numbers[k]:04d}",
                    number=f"{numbers[k]:04d}",
                    team=f"T{k % cfg.teams + 1:02d}",
                    split=split,
                    voice=sample_voice(rng, split, "agent", cfg.random_voice_rate),
                    skill=round(float(rng.uniform(*cfg.agent_skill_range)), 3),
                )
            )
            k += 1
    return agents


def _line(rng: np.random.Generator, cfg: SynthConfig, allow_mono: bool) -> Line:
    return Line(
        snr_db=float(rng.uniform(*cfg.snr_db)),
        packet_loss=float(rng.uniform(*cfg.packet_loss)) if rng.random() < cfg.packet_loss_call_rate else 0.0,
        codec="alaw" if rng.random() < cfg.alaw_fraction else "ulaw",
        mono=allow_mono and rng.random() < cfg.mono_fraction,
    )


def plan_calls(
    rng: np.random.Generator, cfg: SynthConfig, rubric: Rubric, scenarios: list[str], seeds: list[int]
) -> list[CallSpec]:
    agents = _make_agents(rng, cfg)
    by_split = {s: [a for a in agents if a.split == s] for s in SPLITS}
    splits = [s for s, c in _split_counts(cfg.calls, cfg.split_fractions).items() for _ in range(c)]
    rng.shuffle(splits)
    start = datetime.fromisoformat(cfg.start_date)
    days = rng.integers(0, cfg.weeks * 7, size=cfg.calls)
    seconds = rng.integers(8 * 3600, 20 * 3600, size=cfg.calls)
    times = sorted(start + timedelta(days=int(d), seconds=int(s)) for d, s in zip(days, seconds, strict=True))
    specs = []
    for i, (split, at) in enumerate(zip(splits, times, strict=True)):
        pool = by_split[split] or agents
        agent = pool[int(rng.integers(len(pool)))]
        scenario = scenarios[int(rng.integers(len(scenarios)))]
        defects = frozenset(
            item
            for item in rubric.ids
            if rng.random() < min(0.95, cfg.defect_rates.get(item, 0.0) * agent.skill)
        )
        angry = rng.random() < cfg.angry_customer_rate * (1.8 if scenario == "complaint" else 1.0)
        specs.append(
            CallSpec(
                id=f"C{i + 1:06d}",
                seed=seeds[i],
                split=split,
                scenario=scenario,
                agent=agent,
                started_at=at,
                defects=defects,
                customer_angry=bool(angry),
                hold=bool(rng.random() < cfg.hold_rate),
                line=_line(rng, cfg, allow_mono=True),
            )
        )
    return specs


def _csat(rng: np.random.Generator, call: dict[str, Any]) -> int:
    """Post-call satisfaction, driven by what a customer notices: no answer, rudeness, being left angry."""
    d = set(call["truth"]["defects"])
    score = 4.6 - 1.6 * ("resolution" in d) - 1.5 * ("forbidden" in d) - 0.9 * ("emotion" in d)
    score -= 1.0 * ("deescalation" in d) + 0.25 * len(
        d - {"resolution", "forbidden", "emotion", "deescalation"}
    )
    return int(np.clip(round(score + rng.normal(0, 0.5)), 1, 5))


def _run(fn: Any, items: list[Any], workers: int, desc: str) -> list[Any]:
    if workers <= 1:
        return [fn(x) for x in tqdm(items, desc=desc, unit="item")]
    with mp.get_context("fork").Pool(workers) as pool:
        return list(tqdm(pool.imap(fn, items, chunksize=1), total=len(items), desc=desc, unit="item"))


def _fingerprint(folder: Path, names: list[str]) -> str:
    h = hashlib.sha256()
    for name in names:
        p = folder / name
        if p.exists():
            h.update(p.read_bytes())
    return h.hexdigest()[:16]


def generate_corpus(
    cfg: SynthConfig,
    out: str | os.PathLike[str],
    seed: int = 0,
    workers: int | None = None,
    rubric_path: str | os.PathLike[str] | None = None,
    overwrite: bool = False,
) -> dict[str, Any]:
    """Write a corpus folder (see the README's data section); return the contents of its corpus.json."""
    rubric = load_rubric(rubric_path)
    bank = TemplateBank.load()
    workers = workers or os.cpu_count() or 1
    ss = np.random.SeedSequence(seed)
    plan_ss, call_ss, cov_ss, insp_ss = ss.spawn(4)
    rng = np.random.default_rng(plan_ss)
    call_seeds = [int(s.generate_state(1)[0]) for s in call_ss.spawn(cfg.calls)]
    cov_seeds = [int(s.generate_state(1)[0]) for s in cov_ss.spawn(cfg.coverage_sentences)]
    specs = plan_calls(rng, cfg, rubric, bank.scenarios, call_seeds)
    cov_specs = [
        CoverageSpec(f"V{i + 1:06d}", s, _line(rng, cfg, allow_mono=False)) for i, s in enumerate(cov_seeds)
    ]
    log.info(
        "synthesising %d calls and %d coverage sentences with %d workers", len(specs), len(cov_specs), workers
    )

    voices = private_espeak_data() if cfg.random_voice_rate > 0 else nullcontext()
    with atomic_dir(out, overwrite=overwrite) as tmp, voices:
        (tmp / "audio").mkdir()
        (tmp / "coverage").mkdir()
        calls = _run(
            partial(
                render_call,
                rubric=rubric,
                corpus_dir=tmp,
                emotion_turn_rate=cfg.emotion_turn_rate,
                random_voice_rate=cfg.random_voice_rate,
            ),
            specs,
            workers,
            "calls",
        )
        coverage = _run(
            partial(
                render_coverage,
                vocabulary=cfg.coverage_vocabulary,
                words=cfg.coverage_words,
                corpus_dir=tmp,
                random_voice_rate=cfg.random_voice_rate,
                natural_rate=cfg.natural_coverage_rate,
            ),
            cov_specs,
            workers,
            "coverage",
        )

        irng = np.random.default_rng(insp_ss)
        inspectors = make_inspectors(irng, cfg.inspectors)
        sheets = inspect_calls(
            irng,
            rubric,
            inspectors,
            [
                {"defects": set(c["truth"]["defects"]), "started_at": s.started_at}
                for c, s in zip(calls, specs, strict=True)
            ],
            datetime.fromisoformat(cfg.start_date),
            cfg.calibration_fraction,
            cfg.recheck_rate,
            cfg.appeal_rate,
        )
        records = []
        for call, insp in zip(calls, sheets, strict=True):
            rec = CallRecord.model_validate(call)
            rec.inspections = insp
            if irng.random() < cfg.survey_response_rate:
                rec.survey = Survey(csat=_csat(irng, call))
            records.append(rec)
        utterances = [u for r in records for u in call_to_utterances(r)]

        write_jsonl(tmp / "calls.jsonl", (r.to_json() for r in records))
        write_jsonl(tmp / "utterances.jsonl", (u.to_json() for u in utterances))
        write_jsonl(tmp / "coverage.jsonl", coverage)
        write_json(tmp / "inspectors.json", [i.to_json() for i in inspectors])
        (tmp / "rubric.yaml").write_text(
            yaml.safe_dump(rubric.model_dump(), allow_unicode=True, sort_keys=False), encoding="utf-8"
        )
        info = _corpus_info(cfg, seed, records, utterances, coverage)
        info["fingerprint"] = _fingerprint(tmp, ["calls.jsonl", "utterances.jsonl", "coverage.jsonl"])
        write_json(tmp / "corpus.json", info)
    log.info("corpus written to %s", out)
    return info


def _corpus_info(
    cfg: SynthConfig,
    seed: int,
    records: list[CallRecord],
    utterances: list[Any],
    coverage: list[dict[str, Any]],
) -> dict[str, Any]:
    calls_per_split = Counter(r.split for r in records)
    utt_hours = Counter()
    for u in utterances:
        utt_hours[u.split] += u.duration / 3600
    return {
        "name": "callqa-synthetic",
        "preset": cfg.preset,
        "seed": seed,
        "generator_version": GENERATOR_VERSION,
        "espeak": espeak_version().split("Data at")[0].strip(),
        "config": cfg.to_json(),
        "counts": {
            "calls": len(records),
            "calls_per_split": dict(sorted(calls_per_split.items())),
            "utterances": len(utterances),
            "coverage_sentences": len(coverage),
            "call_hours": round(sum(r.duration for r in records) / 3600, 4),
            "utterance_hours_per_split": {k: round(v, 4) for k, v in sorted(utt_hours.items())},
            "coverage_hours": round(sum(c["duration"] for c in coverage) / 3600, 4),
            "inspections": sum(len(r.inspections) for r in records),
        },
    }
