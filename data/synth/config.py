"""Settings of the synthetic corpus generator, read from configs/synth/*.yaml (one file per preset)."""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, field, fields
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

PRESETS = ("tiny", "small", "large")


@dataclass(frozen=True)
class SynthConfig:
    """Everything that shapes a corpus. Rates are per call unless said otherwise."""

    preset: str = "custom"
    calls: int = 12
    coverage_sentences: int = 20
    agents: int = 6
    teams: int = 2
    inspectors: int = 4
    weeks: int = 4
    start_date: str = "2026-01-05"
    split_fractions: dict[str, float] = field(
        default_factory=lambda: {"train": 0.7, "dev": 0.15, "test": 0.15}
    )
    #: Probability of each rubric item's defect in a call of an average agent.
    defect_rates: dict[str, float] = field(default_factory=dict)
    #: How much agents differ: each agent's defect rates are scaled by a factor drawn from this range.
    agent_skill_range: tuple[float, float] = (0.5, 1.8)
    angry_customer_rate: float = 0.3
    #: Share of a customer's turns whose emotion is redrawn, so one speaker's feeling varies within a call
    #: (see data/synth/emotions.py); 0 keeps one mood per call.
    emotion_turn_rate: float = 0.0
    hold_rate: float = 0.4
    calibration_fraction: float = 0.15
    recheck_rate: float = 0.3
    appeal_rate: float = 0.3
    survey_response_rate: float = 0.6
    snr_db: tuple[float, float] = (12.0, 35.0)
    packet_loss_call_rate: float = 0.2
    packet_loss: tuple[float, float] = (0.005, 0.03)
    alaw_fraction: float = 0.2
    mono_fraction: float = 0.0
    #: Share of training speakers (agents, customers, coverage sentences) given a made-up espeak timbre
    #: instead of a shipped variant (data/synth/voices.py); dev and test keep the held-out variants.
    random_voice_rate: float = 0.0
    coverage_words: tuple[int, int] = (3, 7)
    coverage_vocabulary: int = 30000
    #: Share of coverage sentences that are clauses of real written Chinese instead of random words
    #: (data/synth/coverage.py); 0 draws exactly the sentences it drew before.
    natural_coverage_rate: float = 0.0

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def preset_path(name: str) -> Path:
    if name not in PRESETS:
        raise ValueError(f"unknown preset {name!r}; choose one of {', '.join(PRESETS)} or pass a config file")
    return Path(str(resources.files("callqa.configs") / "synth" / f"{name}.yaml"))


def load_synth_config(path: str | os.PathLike[str], **overrides: Any) -> SynthConfig:
    """Read a synth YAML; unknown keys are errors so that a misspelt setting cannot be silently ignored."""
    path = Path(path)
    raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    known = {f.name for f in fields(SynthConfig)}
    unknown = sorted(set(raw) - known)
    if unknown:
        raise ValueError(f"{path}: unknown synth settings {unknown}; known: {sorted(known)}")
    for key in ("agent_skill_range", "snr_db", "packet_loss", "coverage_words"):
        if key in raw:
            raw[key] = tuple(raw[key])
    raw.update({k: v for k, v in overrides.items() if v is not None})
    return SynthConfig(**raw)
