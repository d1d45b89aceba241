"""Cutting utterances (one speaker's turn on its own channel) out of call recordings.

ASR and SER train on utterances; QA scores whole calls. Both read the same call audio, so an utterance
manifest points into the call file with an offset and duration instead of copying audio.
"""

from __future__ import annotations

import os

import numpy as np

from callqa.data.audio import read_audio
from callqa.data.constants import SAMPLE_RATE
from callqa.data.schema import CallRecord, Utterance, resolve_audio


def call_to_utterances(call: CallRecord, pad: float = 0.0) -> list[Utterance]:
    """One utterance per turn. ``pad`` widens each cut by that many seconds each side (within the call),
    which helps models that expect a little silence around speech."""
    out = []
    for i, turn in enumerate(call.turns):
        start = max(0.0, turn.start - pad)
        end = min(call.duration, turn.end + pad)
        out.append(
            Utterance(
                id=f"{call.id}-{i:03d}",
                audio=call.audio,
                offset=round(start, 4),
                duration=round(end - start, 4),
                channel=call.channel_of(turn.speaker),
                speaker=turn.speaker,
                text=turn.text,
                emotion=turn.emotion,
                split=call.split,
                call_id=call.id,
                voice=turn.meta.get("voice"),
                snr_db=call.meta.get("snr_db"),
            )
        )
    return out


def load_utterance(
    utt: Utterance, root: str | os.PathLike[str], sample_rate: int = SAMPLE_RATE
) -> np.ndarray:
    """The utterance's samples as float32 mono; a mono recording (channel None) is read whole."""
    audio, _ = read_audio(
        resolve_audio(utt.audio, root),
        sample_rate,
        offset=utt.offset,
        duration=utt.duration,
        channel=utt.channel,
        mono=utt.channel is None,
    )
    return audio[0]
