"""Voice activity: silero-vad's ONNX model (as shipped in its package) and the energy detector."""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import onnx
import pytest

from callqa.data.audio import read_audio
from callqa.data.schema import CallRecord
from callqa.serving.segments import cut_segments
from callqa.serving.vad import Activity, EnergyVad, RegionRules, SileroVad, silero_model_path, speech_regions

SR = 8000


@pytest.fixture(scope="module", params=["silero", "energy"])
def vad(request: pytest.FixtureRequest) -> SileroVad | EnergyVad:
    return SileroVad() if request.param == "silero" else EnergyVad()


def test_silero_model_takes_chunks_with_context_and_a_recurrent_state() -> None:
    """What serving/vad.py assumes about the file: inputs (input, state, sr), state (2, batch, 128),
    and at 8 kHz one probability per 256-sample chunk fed with 32 samples of context."""
    graph = onnx.load(str(silero_model_path())).graph
    inputs = {i.name: i for i in graph.input}
    assert set(inputs) == {"input", "state", "sr"}
    dims = inputs["state"].type.tensor_type.shape.dim
    assert dims[0].dim_value == 2 and dims[2].dim_value == 128
    probs = SileroVad().probabilities(np.zeros((2, 256 * 10 + 1), dtype=np.float32))
    assert probs.shape == (2, 11) and SileroVad.CHUNK + SileroVad.CONTEXT == 288


@pytest.mark.parametrize(
    "audio",
    [
        np.zeros((2, 10 * SR), dtype=np.float32),
        np.random.default_rng(0).normal(0, 0.05, (2, 10 * SR)).astype(np.float32),
        np.random.default_rng(1).normal(0, 0.3, (1, 5 * SR)).astype(np.float32),
        np.zeros((1, 1), dtype=np.float32),
    ],
    ids=["digital-silence", "white-noise", "loud-noise-mono", "one-sample"],
)
def test_silence_and_steady_noise_hold_no_speech(vad: SileroVad | EnergyVad, audio: np.ndarray) -> None:
    act = vad.detect(audio, SR)
    assert act.scores.shape[0] == audio.shape[0]
    assert all(r == [] for r in act.regions)


def test_regions_follow_the_corpus_turns(
    vad: SileroVad | EnergyVad, tiny_corpus: Path, tiny_calls: list[CallRecord]
) -> None:
    """Every reference turn is found, and its edges are where the ground truth puts them."""
    call = tiny_calls[0]
    audio, _ = read_audio(tiny_corpus / call.audio)
    act = vad.detect(audio, SR)
    errors = []
    for turn in call.turns:
        regions = act.regions[call.channel_of(turn.speaker)]
        best = max(regions, key=lambda r: min(r[1], turn.end) - max(r[0], turn.start))
        assert min(best[1], turn.end) > max(best[0], turn.start), f"missed {turn}"
        errors += [abs(best[0] - turn.start), abs(best[1] - turn.end)]
    assert np.median(errors) < 0.15


def test_hysteresis_and_durations() -> None:
    hop = 0.01
    score = np.zeros(300)
    score[10:50] = 0.6  # loud enough: speech
    score[50:55] = 0.1  # a 50 ms dip below off, shorter than min_silence: bridged
    score[55:60] = 0.6
    score[100:140] = 0.3  # above off but never above on: not speech
    score[200:205] = 0.9  # too short
    rules = RegionRules(on=0.5, off=0.25, min_speech=0.1, min_silence=0.1)
    assert speech_regions(score, hop, rules) == [(0.1, 0.6)]
    padded = speech_regions(score, hop, RegionRules(on=0.5, off=0.25, pad_start=0.2, pad_end=0.05))
    assert padded == [(0.0, 0.65)]


def test_segments_never_exceed_the_cap_and_cut_at_the_deepest_pause() -> None:
    hop = 0.01
    score = np.full(4000, 0.9)  # 40 s of speech
    score[1200:1220] = 0.2  # a pause the detector bridged, at 12 s
    score[2500:2510] = 0.1  # a deeper one at 25 s
    act = Activity(hop, score[None], [[(0.0, 40.0)]], RegionRules(on=0.5, off=0.3))
    segs = cut_segments(act, 20.0)
    assert all(s.duration <= 20.0 for s in segs) and {s.region for s in segs} == {0}
    # the deepest pause (25 s) first, then the 25 s still over the cap at its own pause (12 s)
    assert [s.end for s in segs] == pytest.approx([12.0, 25.0, 40.0], abs=0.01)
    assert segs[0].start == 0.0 and all(a.end == b.start for a, b in itertools.pairwise(segs))
    # No pause at all: cut as a last resort, still under the cap.
    flat = Activity(hop, np.full((1, 4000), 0.9), [[(0.0, 40.0)]], RegionRules(on=0.5, off=0.3))
    hard = cut_segments(flat, 15.0)
    assert len(hard) >= 3 and all(s.duration <= 15.0 for s in hard)
