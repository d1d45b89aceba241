"""Rendering one call (or one coverage sentence) to audio: the work each worker process does.

A spec carries everything a worker needs and its own seed, so the result is the same whichever process
renders it and in whatever order: a corpus is deterministic for a seed at any number of workers.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from callqa.data.audio import write_audio
from callqa.data.constants import AGENT, CHANNEL_OF, SAMPLE_RATE
from callqa.data.rubric import Rubric
from callqa.data.schema import CallRecord, Truth, Turn, Utterance
from callqa.data.synth.coverage import coverage_sentence, natural_sentence
from callqa.data.synth.emotions import vary_emotions
from callqa.data.synth.script import plan_call
from callqa.data.synth.slots import digits_zh, sample_slots
from callqa.data.synth.templates import TemplateBank
from callqa.data.synth.timeline import TimingRules, lay_out
from callqa.data.synth.voices import ESPEAK_RATE, Voice, sample_voice, synthesize
from callqa.data.telephony import TelephoneChannel

_HAN = re.compile(r"[\u4e00-\u9fff]")
#: Defects that exist only once timing or rate are measured on the rendered call.
_MEASURED = frozenset({"interruption", "silence", "speech_rate"})


@dataclass(frozen=True)
class Agent:
    id: str
    number: str  # 工号 digits, spoken in the greeting
    team: str
    split: str
    voice: Voice
    skill: float  # multiplies the agent's defect rates: > 1 makes more mistakes


@dataclass(frozen=True)
class Line:
    """How a recording reaches the archive: telephone channel settings and the stored encoding."""

    snr_db: float
    packet_loss: float
    codec: str  # "ulaw" | "alaw"
    mono: bool

    def channel(self) -> TelephoneChannel:
        return TelephoneChannel(codec=self.codec, snr_db=self.snr_db, packet_loss=self.packet_loss)

    @property
    def subtype(self) -> str:
        return "ULAW" if self.codec == "ulaw" else "ALAW"


@dataclass(frozen=True)
class CallSpec:
    id: str
    seed: int
    split: str
    scenario: str
    agent: Agent
    started_at: datetime
    defects: frozenset[str]
    customer_angry: bool
    hold: bool
    line: Line


@dataclass(frozen=True)
class CoverageSpec:
    id: str
    seed: int
    line: Line


def chars_per_minute(texts: list[str], seconds: float) -> float:
    chars = sum(len(_HAN.findall(t)) for t in texts)
    return 60.0 * chars / max(seconds, 1e-6)


def mix_and_write(
    corpus_dir: Path,
    call_id: str,
    audio: Sequence[np.ndarray],
    starts: Sequence[float],
    speakers: Sequence[str],
    duration: float,
    line: Line,
    rng: np.random.Generator,
) -> tuple[str, float]:
    """Lay the clips on the call's timeline (stereo, agent left, or one mono mix), send it down the
    telephone line and write it; returns the audio path relative to the corpus and the call's length."""
    n_ch = 1 if line.mono else 2
    chans = [0 if line.mono else CHANNEL_OF[s] for s in speakers]
    wave = line.channel()(_mix(list(audio), list(starts), chans, n_ch, duration), ESPEAK_RATE, rng)
    rel = f"audio/{call_id}.wav"
    write_audio(corpus_dir / rel, wave, SAMPLE_RATE, subtype=line.subtype)
    return rel, round(wave.shape[-1] / SAMPLE_RATE, 3)


class _Said(Protocol):
    """A planned or hand-written turn: who says what, in which emotion."""

    @property
    def speaker(self) -> str: ...

    @property
    def text(self) -> str: ...

    @property
    def emotion(self) -> str: ...


def timed_turns(
    turns: Sequence[_Said], starts: Sequence[float], ends: Sequence[float], metas: Sequence[dict[str, str]]
) -> list[Turn]:
    """The turn records of a call laid on its timeline (times to the millisecond), for generated and
    hand-written calls alike."""
    return [
        Turn(speaker=t.speaker, start=round(s, 3), end=round(e, 3), text=t.text, emotion=t.emotion, meta=m)
        for t, s, e, m in zip(turns, starts, ends, metas, strict=True)
    ]


def _mix(
    clips: list[np.ndarray],
    starts: list[float],
    channels: list[int],
    n_channels: int,
    duration: float,
) -> np.ndarray:
    out = np.zeros((n_channels, int(np.ceil(duration * ESPEAK_RATE)) + 1), dtype=np.float32)
    for wav, start, ch in zip(clips, starts, channels, strict=True):
        i = round(start * ESPEAK_RATE)
        out[ch, i : i + len(wav)] += wav
    return out


def render_call(
    spec: CallSpec,
    rubric: Rubric,
    corpus_dir: Path,
    emotion_turn_rate: float = 0.0,
    random_voice_rate: float = 0.0,
) -> dict[str, Any]:
    """Plan, speak, lay out and record one call; return its record (without inspections) as JSON,
    with ground truth taken from what was actually rendered."""
    rng = np.random.default_rng(spec.seed)
    bank = TemplateBank.load()
    slots = sample_slots(rng, bank.scenario_slots(spec.scenario))
    slots["agent_no"] = digits_zh(spec.agent.number)
    plan = plan_call(
        rng,
        bank,
        spec.scenario,
        spec.split,
        set(spec.defects - _MEASURED),
        spec.customer_angry,
        spec.hold,
        slots,
    )
    vary_emotions(plan.turns, spec.seed, emotion_turn_rate)
    customer = sample_voice(rng, spec.split, "customer", random_voice_rate)
    min_cpm = rubric.param("speech_rate", "min_cpm", 180.0)
    max_cpm = rubric.param("speech_rate", "max_cpm", 300.0)
    agent_rate = 1.0
    if "speech_rate" in spec.defects:
        agent_rate = float(rng.uniform(1.55, 1.8)) if rng.random() < 0.6 else float(rng.uniform(0.55, 0.62))

    audio, voices = [], []
    for turn in plan.turns:
        is_agent = turn.speaker == AGENT
        voice = spec.agent.voice if is_agent else customer
        audio.append(synthesize(turn.text, voice, turn.emotion, agent_rate if is_agent else 1.0))
        voices.append(voice.variant)
    durations = [len(a) / ESPEAK_RATE for a in audio]

    rules = TimingRules(
        max_silence=rubric.param("silence", "max_seconds", 5.0),
        min_overlap=rubric.param("interruption", "min_overlap_seconds", 1.0),
    )
    speakers = [t.speaker for t in plan.turns]
    tl = lay_out(
        speakers,
        [t.kind for t in plan.turns],
        durations,
        rng,
        rules,
        "interruption" in spec.defects,
        "silence" in spec.defects,
    )

    agent_idx = [i for i, s in enumerate(speakers) if s == AGENT]
    cpm = chars_per_minute([plan.turns[i].text for i in agent_idx], sum(durations[i] for i in agent_idx))
    defects = set(plan.defects) | {e.item for e in tl.events}
    if not min_cpm <= cpm <= max_cpm:
        defects.add("speech_rate")

    rel, length = mix_and_write(corpus_dir, spec.id, audio, tl.starts, speakers, tl.duration, spec.line, rng)

    metas = [
        {"kind": t.kind, "template": t.template_id, "voice": v}
        for t, v in zip(plan.turns, voices, strict=True)
    ]
    turns = timed_turns(plan.turns, tl.starts, tl.ends, metas)
    record = CallRecord(
        id=spec.id,
        audio=rel,
        sample_rate=SAMPLE_RATE,
        channels="mono" if spec.line.mono else dict(CHANNEL_OF),
        duration=length,
        agent_id=spec.agent.id,
        team=spec.agent.team,
        started_at=spec.started_at,
        scenario=spec.scenario,
        turns=turns,
        truth=Truth(defects=[i for i in rubric.ids if i in defects], events=tl.events),
        split=spec.split,
        meta={
            "snr_db": round(spec.line.snr_db, 1),
            "packet_loss": round(spec.line.packet_loss, 4),
            "codec": spec.line.codec,
            "agent_voice": spec.agent.voice.variant,
            "customer_voice": customer.variant,
            "agent_cpm": round(cpm, 1),
            "customer_angry": plan.customer_angry,
            "holds": [[round(a, 3), round(b, 3)] for a, b in tl.holds],
        },
    )
    return record.to_json()


def render_coverage(
    spec: CoverageSpec,
    vocabulary: int,
    words: tuple[int, int],
    corpus_dir: Path,
    random_voice_rate: float = 0.0,
    natural_rate: float = 0.0,
) -> dict[str, Any]:
    """One coverage sentence in a training voice, through the same telephone channel as the calls."""
    rng = np.random.default_rng(spec.seed)
    if natural_rate > 0 and rng.random() < natural_rate:
        text = natural_sentence(rng, vocabulary)
    else:
        text = coverage_sentence(rng, vocabulary, words)
    voice = sample_voice(rng, "train", "customer" if rng.random() < 0.5 else "agent", random_voice_rate)
    emotion = str(rng.choice(["neutral", "happy", "angry", "sad", "surprise"], p=[0.6, 0.1, 0.1, 0.1, 0.1]))
    wav = synthesize(text, voice, emotion)
    pad = np.zeros(int(0.15 * ESPEAK_RATE), dtype=np.float32)
    wave = spec.line.channel()(np.concatenate([pad, wav, pad])[None, :], ESPEAK_RATE, rng)
    rel = f"coverage/{spec.id}.wav"
    write_audio(corpus_dir / rel, wave, SAMPLE_RATE, subtype=spec.line.subtype)
    return Utterance(
        id=spec.id,
        audio=rel,
        offset=0.0,
        duration=round(wave.shape[-1] / SAMPLE_RATE, 4),
        channel=0,
        speaker=None,
        text=text,
        emotion=emotion,
        split="train",
        voice=voice.variant,
        snr_db=round(spec.line.snr_db, 1),
    ).to_json()
