"""The hand-written QA evaluation set (``data/handwritten/qa-calls.yaml``) rendered into a corpus folder.

Whole calls written by hand in free wording, in industries the generator lacks, each labelled by hand
with the rubric items it violates. The labels become the calls' ground truth (``truth.defects``), so
``callqa score``, ``callqa evaluate qa`` and the quickstart measure on them exactly as on the synthetic
test split. Timing is written into the file (``gap`` per turn, ``agent_rate`` per call), because the
silence, interruption and speech-rate labels depend on it. Held-out (test) voices; never trained on.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from datetime import timedelta
from importlib import resources
from pathlib import Path
from typing import Any, Final

import numpy as np
import yaml

from callqa.data.constants import AGENT, CHANNEL_OF, CUSTOMER, SAMPLE_RATE
from callqa.data.rubric import default_rubric_path, load_rubric
from callqa.data.schema import CallRecord, Truth
from callqa.data.synth.handwritten import (
    _START,
    SPLIT,
    HandTurn,
    hand_turns,
    parse_turn,
    write_rendered_set,
)
from callqa.data.synth.render import Line, mix_and_write
from callqa.data.synth.voices import ESPEAK_RATE, sample_voice, synthesize

log = logging.getLogger(__name__)

SET_NAME: Final = "qa-calls"
QA_CALLS_VERSION: Final = "1.0"


@dataclass(frozen=True)
class LabelledCall:
    id: str
    industry: str
    turns: tuple[HandTurn, ...]
    defects: tuple[str, ...]
    agent_rate: float = 1.0
    note: str = ""


def qa_calls_path() -> Path:
    return Path(str(resources.files("callqa.data").joinpath("handwritten", f"{SET_NAME}.yaml")))


def load_labelled_calls(path: str | os.PathLike[str] | None = None) -> list[LabelledCall]:
    """Read and check the file: every turn, rate and label, each error naming the call and the turn."""
    path = Path(path) if path else qa_calls_path()
    where = str(path)
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    if not isinstance(data, dict) or not isinstance(data.get("calls"), list) or not data["calls"]:
        raise ValueError(f"{where}: expected a top-level 'calls' list")
    items = set(load_rubric().ids)
    out: list[LabelledCall] = []
    for i, c in enumerate(data["calls"]):
        if (
            not isinstance(c, dict)
            or not isinstance(c.get("id"), str)
            or not isinstance(c.get("turns"), list)
        ):
            raise ValueError(f"{where}: calls.{i}: expected id, industry, defects and turns")
        unknown = set(c.get("defects") or []) - items
        if unknown:
            raise ValueError(f"{where}: {c['id']}: defects {sorted(unknown)} are not rubric items")
        turns = tuple(
            parse_turn(t, f"{where}: {c['id']}.turns.{j}", timed=True) for j, t in enumerate(c["turns"])
        )
        out.append(
            LabelledCall(
                c["id"],
                str(c.get("industry", "")),
                turns,
                tuple(c.get("defects") or ()),
                float(c.get("agent_rate", 1.0)),
                str(c.get("note", "")),
            )
        )
    if len({c.id for c in out}) != len(out):
        raise ValueError(f"{where}: call ids are not unique")
    return out


def place(
    turns: tuple[HandTurn, ...], durations: list[float], rng: np.random.Generator
) -> tuple[list[float], list[float]]:
    """Start and end of each turn: the written gap after the previous turn (a negative one from the
    previous turn's end, talking over it), or a short natural pause."""
    starts: list[float] = []
    ends: list[float] = []
    t = float(rng.uniform(0.3, 0.8))
    for turn, d in zip(turns, durations, strict=True):
        if not starts:
            start = t
        elif turn.gap is not None and turn.gap < 0:
            start = max(starts[-1] + 0.2, ends[-1] + turn.gap)
        else:
            gap = (
                turn.gap
                if turn.gap is not None
                else float(np.clip(rng.lognormal(np.log(0.5), 0.5), 0.15, 1.5))
            )
            start = max(ends) + gap
        starts.append(start)
        ends.append(start + d)
    return starts, ends


@dataclass(frozen=True)
class _Job:
    index: int
    call: LabelledCall
    seed: int


def _render(job: _Job, corpus_dir: Path) -> dict[str, Any]:
    rng = np.random.default_rng(job.seed)
    voices = {AGENT: sample_voice(rng, SPLIT, AGENT), CUSTOMER: sample_voice(rng, SPLIT, CUSTOMER)}
    line = Line(
        snr_db=float(rng.uniform(15.0, 32.0)),
        packet_loss=0.0,
        codec="alaw" if rng.random() < 0.2 else "ulaw",
        mono=False,
    )
    turns = job.call.turns
    audio = [
        synthesize(t.text, voices[t.speaker], t.emotion, job.call.agent_rate if t.speaker == AGENT else 1.0)
        for t in turns
    ]
    starts, ends = place(turns, [len(a) / ESPEAK_RATE for a in audio], rng)
    duration = max(ends) + float(rng.uniform(0.3, 0.8))
    call_id = f"Q{job.index + 1:04d}"
    speakers = [t.speaker for t in turns]
    rel, length = mix_and_write(corpus_dir, call_id, audio, starts, speakers, duration, line, rng)
    record = CallRecord(
        id=call_id,
        audio=rel,
        sample_rate=SAMPLE_RATE,
        channels=dict(CHANNEL_OF),
        duration=length,
        agent_id="handwritten",
        started_at=_START + timedelta(hours=job.index),
        scenario=job.call.industry,
        turns=hand_turns(turns, starts, ends, {"call": job.call.id}, voices),
        truth=Truth(defects=list(job.call.defects), events=[]),
        split=SPLIT,
        meta={
            "call": job.call.id,
            "note": job.call.note,
            "agent_rate": job.call.agent_rate,
            "snr_db": round(line.snr_db, 1),
            "codec": line.codec,
            "agent_voice": voices[AGENT].variant,
            "customer_voice": voices[CUSTOMER].variant,
        },
    )
    return record.to_json()


def render_labelled_calls(
    out: str | os.PathLike[str],
    seed: int = 0,
    workers: int | None = None,
    overwrite: bool = False,
    path: str | os.PathLike[str] | None = None,
) -> dict[str, Any]:
    """Write the set as a corpus folder (with the default rubric); return its corpus.json."""
    calls = load_labelled_calls(path)
    seeds = [int(s.generate_state(1)[0]) for s in np.random.SeedSequence(seed).spawn(len(calls))]
    jobs = [_Job(i, c, s) for i, (c, s) in enumerate(zip(calls, seeds, strict=True))]
    header = {"name": f"callqa-handwritten-{SET_NAME}", "seed": seed, "handwritten_version": QA_CALLS_VERSION}
    industries = len({c.industry for c in calls})
    info = write_rendered_set(
        out, _render, jobs, header, industries, workers, overwrite, default_rubric_path()
    )
    log.info("hand-written QA calls written to %s", out)
    return info
