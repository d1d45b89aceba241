"""Speakers for the synthetic corpus: espeak-ng Mandarin voices, their split, and emotion as prosody.

espeak-ng 1.51 (Debian bookworm) reads ``-v cmn`` through pinyin spelled out by its *English* rules
("nin two hao three"); the ``cmn-latn-pinyin`` voice applies the Mandarin tone rules and is what we use.
A voice is an espeak variant (timbre) plus a speaker's own pitch, rate and loudness. Emotions shift
those from the speaker's baseline, so an angry low-pitched speaker and a calm high-pitched one overlap in
absolute pitch: a model has to learn relative prosody, not "high pitch means angry".

espeak-ng ships about 80 usable variants, and a model trained on the 64 of the train split still fails on
some held-out ones (CER 0.38 on two test voices against about 0.2 on the rest). Training speakers can
therefore also get a timbre made up for them (:func:`random_timbre`): formants, pitch range, voicing,
roughness, echo and equaliser drawn from the ranges the shipped variants span, written as a variant file
into a private copy of espeak-ng's data. Dev and test speakers always keep the shipped held-out variants.
"""

from __future__ import annotations

import hashlib
import io
import os
import re
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
import soundfile as sf

from callqa.data.constants import EMOTIONS

ESPEAK_VOICE = "cmn-latn-pinyin"
#: espeak-ng renders at this rate; the telephone channel resamples once to 8 kHz.
ESPEAK_RATE = 22050

#: Variants that do not sound like a person on a phone (whispers, robots, effects) or have no pitch.
_EXCLUDED = frozenset(
    {
        "whisper",
        "whisperf",
        "fast",
        "Demonic",
        "announcer",
        "UniRobot",
        "anikaRobot",
        "croak",
        "robosoft",
        "robosoft2",
        "robosoft3",
        "robosoft4",
        "robosoft5",
        "robosoft6",
        "robosoft7",
        "robosoft8",
        "Tweaky",
        "Mr",
        "klatt4",
    }
)


@dataclass(frozen=True)
class Prosody:
    """How an emotion moves a speaker off their baseline: pitch in espeak units, rate and loudness as
    factors."""

    pitch: int
    rate: float
    loudness: float


#: Directions follow the speech-emotion literature: anger is louder and faster with raised pitch, sadness
#: quieter, slower and lower, happiness and surprise higher in pitch (surprise the most).
EMOTION_PROSODY: dict[str, Prosody] = {
    "neutral": Prosody(pitch=0, rate=1.00, loudness=1.00),
    "happy": Prosody(pitch=12, rate=1.04, loudness=1.15),
    "angry": Prosody(pitch=8, rate=1.10, loudness=1.45),
    "sad": Prosody(pitch=-14, rate=0.86, loudness=0.65),
    "surprise": Prosody(pitch=22, rate=0.98, loudness=1.25),
}
assert set(EMOTION_PROSODY) == set(EMOTIONS)


class SynthesisError(RuntimeError):
    """espeak-ng is missing or failed on a sentence."""


@dataclass(frozen=True)
class Voice:
    """One synthetic speaker. ``variant`` is the identity that splits hold out; ``timbre`` is the text
    of a made-up variant file (``variant`` is then its hash), None for a variant espeak-ng ships."""

    variant: str
    pitch: int  # espeak 0-99 baseline
    rate: int  # espeak words per minute at neutral emotion (about 1.2 Chinese characters per minute each)
    loudness: int  # espeak amplitude at neutral emotion
    timbre: str | None = None

    def args(self, emotion: str = "neutral", rate_factor: float = 1.0) -> list[str]:
        p = EMOTION_PROSODY[emotion]
        pitch = int(np.clip(self.pitch + p.pitch, 0, 99))
        rate = max(80, round(self.rate * p.rate * rate_factor))
        amp = int(np.clip(round(self.loudness * p.loudness), 5, 100))
        if self.timbre:
            root, variant = _private_data(self.timbre)
            data = ["--path", str(root)]
        else:
            data, variant = [], self.variant
        return [*data, "-v", f"{ESPEAK_VOICE}+{variant}", "-p", str(pitch), "-s", str(rate), "-a", str(amp)]


def random_timbre(rng: np.random.Generator) -> tuple[str, str]:
    """(name, variant file) of a made-up speaker. Each setting is drawn from within the range that
    espeak-ng's shipped variants cover (the vowel formants 1-3 at 70-130 % of the default, the others at
    85-115 %; a base pitch of 65-110 Hz or 140-220 Hz; echo on a third of them, a four-band equaliser on
    half), so every timbre is one a shipped variant could nearly have been, but no two are the same."""
    female = rng.random() < 0.5
    base = int(rng.integers(140, 221)) if female else int(rng.integers(65, 111))
    lines = [
        "language variant",
        f"gender {'female' if female else 'male'}",
        f"pitch {base} {base + int(rng.integers(20, 90))}",
    ]
    for k in range(9):
        spread = 0.3 if 1 <= k <= 3 else 0.15  # the vowel formants move most between speakers
        freq = round(100 * float(rng.uniform(1 - spread, 1 + spread)))
        lines.append(f"formant {k} {freq} {int(rng.integers(70, 131))} {int(rng.integers(80, 121))}")
    lines += [f"voicing {int(rng.integers(40, 161))}", f"roughness {int(rng.integers(0, 5))}"]
    lines.append(f"flutter {int(rng.integers(0, 6))}")
    if rng.random() < 1 / 3:
        lines.append(f"echo {int(rng.integers(10, 61))} {int(rng.integers(10, 41))}")
    if rng.random() < 0.5:
        bands = zip((300, 1200, 2400, 3400), rng.integers(40, 161, size=4), strict=True)
        lines.append("tone " + " ".join(f"{f} {int(a)}" for f, a in bands))
    text = "\n".join(lines) + "\n"
    return "rand-" + hashlib.sha1(text.encode()).hexdigest()[:10], text


#: The private copy of espeak-ng's data that made-up timbres are written into, while one is open.
_DATA: Path | None = None


@contextmanager
def private_espeak_data() -> Iterator[Path]:
    """Open a private copy of espeak-ng's data folder (13 MB) for the made-up timbres of everything
    synthesised inside, and delete it at the end. The corpus generator opens one before its worker
    processes fork, so they share it and nothing is left behind when the pool is terminated."""
    global _DATA
    out = espeak_version()
    found = re.search(r"Data at:\s*(\S+)", out)
    if not found:
        raise SynthesisError(f"cannot find espeak-ng's data folder in {out!r}")
    previous, root = _DATA, Path(tempfile.mkdtemp(prefix="callqa-espeak-"))
    try:
        shutil.copytree(found.group(1), root / "espeak-ng-data")
        _DATA = root
        yield root
    finally:
        _DATA = previous
        shutil.rmtree(root, ignore_errors=True)


def _private_data(timbre: str) -> tuple[Path, str]:
    """(data folder, variant name) with ``timbre`` written as this process's own variant file: one file
    rewritten per timbre rather than one per speaker, because espeak-ng lists at most 350 voices and
    fails on any beyond them, and one per process, because worker processes share the folder."""
    if _DATA is None:
        raise SynthesisError("a made-up timbre needs private_espeak_data() open around the synthesis")
    name = f"cq{os.getpid()}"  # short: espeak-ng overflows a buffer on long variant names
    path = _DATA / "espeak-ng-data" / "voices" / "!v" / name
    text = f"name {name}\n{timbre}"
    if not path.exists() or path.read_text(encoding="utf-8") != text:
        tmp = path.with_suffix(".tmp")
        tmp.write_text(text, encoding="utf-8")
        tmp.replace(path)
    return _DATA, name


@lru_cache(maxsize=1)
def espeak_version() -> str:
    """``espeak-ng --version``: the version, and where its data folder is."""
    out = subprocess.run([espeak_binary(), "--version"], capture_output=True, text=True, check=False)
    return out.stdout.strip()


def espeak_binary() -> str:
    path = shutil.which("espeak-ng")
    if path is None:
        raise SynthesisError("espeak-ng not found on PATH: run `make setup` or `apt-get install espeak-ng`")
    return path


@lru_cache(maxsize=1)
def all_variants() -> tuple[str, ...]:
    """Every usable espeak-ng voice variant on this machine, sorted so that splits do not depend on order."""
    out = subprocess.run([espeak_binary(), "--voices=variant"], capture_output=True, text=True, check=True)
    names = []
    for line in out.stdout.splitlines()[1:]:
        cols = line.split()
        if cols and cols[-1].startswith("!v/"):
            names.append(cols[-1][3:])
    return tuple(sorted(set(names) - _EXCLUDED))


def variant_split(variant: str) -> str:
    """A stable split per variant that no corpus seed changes: a base model trained on one corpus never
    heard the test voices of another."""
    h = int(hashlib.sha1(f"voice:{variant}".encode()).hexdigest()[:8], 16) / 0xFFFFFFFF
    return "test" if h < 0.15 else "dev" if h < 0.30 else "train"


def variants_for_split(split: str) -> list[str]:
    chosen = [v for v in all_variants() if variant_split(v) == split]
    if not chosen:
        raise SynthesisError(f"no espeak-ng voice variants fall in split {split!r}")
    return chosen


def sample_voice(rng: np.random.Generator, split: str, role: str, random_rate: float = 0.0) -> Voice:
    """Draw a speaker. Agents are trained to speak at a steady, moderate pace; customers vary more.
    A ``random_rate`` share of training speakers get a made-up timbre instead of a shipped variant."""
    variant = str(rng.choice(variants_for_split(split)))
    pitch = int(rng.integers(28, 76))
    rate = int(rng.integers(165, 211)) if role == "agent" else int(rng.integers(150, 241))
    loudness = int(rng.integers(24, 37))
    timbre = None
    if split == "train" and random_rate > 0 and rng.random() < random_rate:
        variant, timbre = random_timbre(rng)
    return Voice(variant=variant, pitch=pitch, rate=rate, loudness=loudness, timbre=timbre)


def synthesize(text: str, voice: Voice, emotion: str = "neutral", rate_factor: float = 1.0) -> np.ndarray:
    """Speak one sentence; return float32 mono at ``ESPEAK_RATE`` with leading/trailing silence trimmed,
    so that turn boundaries on the timeline are where speech really starts and ends."""
    cmd = [espeak_binary(), *voice.args(emotion, rate_factor), "--stdout", text]
    proc = subprocess.run(cmd, capture_output=True, check=False)
    if proc.returncode != 0 or not proc.stdout:
        raise SynthesisError(f"espeak-ng failed on {text!r}: {proc.stderr.decode(errors='replace').strip()}")
    audio, sr = sf.read(io.BytesIO(proc.stdout), dtype="float32")
    if sr != ESPEAK_RATE:
        raise SynthesisError(f"espeak-ng produced {sr} Hz, expected {ESPEAK_RATE}")
    return trim(audio)


def trim(audio: np.ndarray, threshold: float = 0.01) -> np.ndarray:
    active = np.flatnonzero(np.abs(audio) > threshold * max(float(np.abs(audio).max()), 1e-9))
    if active.size == 0:
        raise SynthesisError("espeak-ng produced silence")
    return audio[active[0] : active[-1] + 1]
