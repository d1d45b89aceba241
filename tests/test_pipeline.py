"""The call pipeline with its real voice activity detectors and stand-in ASR/SER models: what reaches
the models, turn and silence times against the corpus's ground truth, mono, emotion, and no torch."""

from __future__ import annotations

import itertools
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from callqa.data.audio import read_audio
from callqa.data.constants import UNCERTAIN
from callqa.data.results import CallResult
from callqa.data.schema import CallRecord
from callqa.evaluation.pipeline_eval import TimingErrors, silence_errors, turn_time_errors
from callqa.serving.pipeline import CallPipeline, length_batches
from callqa.serving.vad import load_vad
from tests.pipeline_fakes import FakeSer, SpellingCtc, SpyAsr

SR = 8000


@pytest.fixture(scope="module", params=["silero", "energy"])
def vad_name(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture(scope="module")
def heard(vad_name: str, tiny_corpus: Path, tiny_calls: list[CallRecord]) -> dict[str, CallResult]:
    """Every tiny call through the pipeline once per detector (ASR stands in; no margin, so the spy's
    characters a second of wave are characters a second of turn)."""
    pipeline = CallPipeline(SpyAsr(), load_vad(vad_name), margin=0.0)
    return {c.id: pipeline.run_file(tiny_corpus / c.audio, c.id) for c in tiny_calls}


def test_turn_times_match_the_ground_truth(
    heard: dict[str, CallResult], tiny_calls: list[CallRecord]
) -> None:
    errors = TimingErrors()
    for call in tiny_calls:
        turn_time_errors(call, heard[call.id], errors)
    turns = sum(len(c.turns) for c in tiny_calls)
    assert errors.missed <= 0.03 * turns  # a faint one-word backchannel may go unheard
    assert np.median(np.abs(errors.start)) <= 0.2 and np.median(np.abs(errors.end)) <= 0.2


def test_long_silences_are_measured_within_0_3_s(
    heard: dict[str, CallResult], tiny_calls: list[CallRecord]
) -> None:
    errors, missed = [], 0
    for call in tiny_calls:
        e, m = silence_errors(call, heard[call.id], 5.0)
        errors += e
        missed += m
    assert missed == 0 and len(errors) >= 3  # the tiny corpus has dead air and announced holds
    assert max(abs(e) for e in errors) <= 0.3


def test_interruptions_show_as_overlaps(heard: dict[str, CallResult], tiny_calls: list[CallRecord]) -> None:
    events = [(c.id, e) for c in tiny_calls for e in c.truth.events if e.item == "interruption"]
    assert events
    for call_id, event in events:
        found = [o for o in heard[call_id].overlaps if o.end > event.start and o.start < event.end]
        assert found and abs(max(o.duration for o in found) - (event.end - event.start)) <= 0.3


def test_the_result_names_its_channels_and_models(heard: dict[str, CallResult], vad_name: str) -> None:
    result = next(iter(heard.values()))
    assert [(c.index, c.speaker) for c in result.channels] == [(0, "agent"), (1, "customer")]
    assert result.models["vad"].kind == vad_name and result.settings["vad"] == vad_name
    assert all(t.speaker == ("agent" if t.channel == 0 else "customer") for t in result.turns)
    assert all(200 <= t.chars_per_minute <= 280 for t in result.turns)  # the spy says 4 characters a second
    assert CallResult.model_validate(result.to_json()) == result


def test_no_segment_longer_than_the_cap_reaches_the_model(
    tiny_corpus: Path, tiny_calls: list[CallRecord]
) -> None:
    asr = SpyAsr()
    pipeline = CallPipeline(asr, load_vad("energy"), max_segment=3.0, batch_seconds=10.0)
    long_turns = [c for c in tiny_calls if any(t.end - t.start > 6 for t in c.turns)]
    result = pipeline.run_file(tiny_corpus / long_turns[0].audio)
    assert max(asr.lengths) <= 3.0 * SR
    assert all(len(b) * max(b) <= 10 * SR for b in asr.batches)  # padded batch within the budget
    assert result.settings["segments"] > len(result.turns)  # long turns were cut, then joined again
    assert max(t.end - t.start for t in result.turns) > 6


def test_silence_and_noise_give_no_turns_and_never_reach_the_model(vad_name: str) -> None:
    asr = SpyAsr()
    pipeline = CallPipeline(asr, load_vad(vad_name))
    rng = np.random.default_rng(0)
    for audio in (
        np.zeros((2, 10 * SR), np.float32),
        rng.normal(0, 0.05, (2, 10 * SR)).astype(np.float32),
        np.zeros((1, 1), np.float32),
    ):
        result = pipeline.run(audio, "quiet")
        assert result.turns == [] and result.silences == [] and result.overlaps == []
    assert asr.batches == []


def test_mono_is_one_channel_with_the_speaker_unknown(
    tiny_corpus: Path, tiny_calls: list[CallRecord]
) -> None:
    audio, _ = read_audio(tiny_corpus / tiny_calls[0].audio, mono=True)
    result = CallPipeline(SpyAsr(), load_vad("energy")).run(audio, "mono")
    assert [(c.index, c.speaker) for c in result.channels] == [(0, None)]
    assert result.turns and all(t.speaker is None and t.channel == 0 for t in result.turns)
    assert result.to_json()["turns"][0]["speaker"] is None and result.overlaps == []
    assert result.warnings == []  # no emotion asked for: nothing to distrust


def test_emotion_on_a_mono_mix_comes_with_a_warning(tiny_corpus: Path, tiny_calls: list[CallRecord]) -> None:
    pipeline = CallPipeline(SpyAsr(), load_vad("energy"), FakeSer())
    audio, _ = read_audio(tiny_corpus / tiny_calls[0].audio, mono=True)
    mono = pipeline.run(audio, "mono")
    assert len(mono.warnings) == 1 and "channel 0 is a mix of speakers" in mono.warnings[0]
    assert all(t.emotion is not None for t in mono.turns)  # still judged, but flagged
    assert pipeline.run_file(tiny_corpus / tiny_calls[0].audio).warnings == []  # one speaker a channel


def test_a_caller_can_say_which_channel_the_agent_is_on(
    tiny_corpus: Path, tiny_calls: list[CallRecord]
) -> None:
    pipeline = CallPipeline(SpyAsr(), load_vad("energy"))
    result = pipeline.run_file(tiny_corpus / tiny_calls[0].audio, speakers={"agent": 1, "customer": 0})
    assert [c.speaker for c in result.channels] == ["customer", "agent"]
    with pytest.raises(ValueError, match="channels 0 and 1"):
        pipeline.run_file(tiny_corpus / tiny_calls[0].audio, speakers={"agent": 0, "customer": 0})


def test_emotion_per_turn_from_one_speakers_segments_at_a_time(
    tiny_corpus: Path, tiny_calls: list[CallRecord]
) -> None:
    ser = FakeSer()
    result = CallPipeline(SpyAsr(), load_vad("energy"), ser).run_file(tiny_corpus / tiny_calls[0].audio)
    assert len(ser.calls) == 2 and sum(ser.calls) == result.settings["segments"]  # once per speaker
    emotions = {t.emotion for t in result.turns}
    assert emotions == {"angry", UNCERTAIN}
    for t in result.turns:
        assert t.emotion_probs is not None and sum(t.emotion_probs.values()) == pytest.approx(1, abs=1e-3)
        best = max(t.emotion_probs, key=t.emotion_probs.get)
        assert t.emotion == (best if t.emotion_probs[best] >= ser.threshold else UNCERTAIN)


def test_phone_numbers_are_masked_unless_raw_is_asked(
    tiny_corpus: Path, tiny_calls: list[CallRecord]
) -> None:
    class Reader(SpyAsr):
        def transcribe(self, waves, beam=1, hotwords=None, lm=None):
            return [type("T", (), {"text": "我的手机号一三八一二三四五六七八"})() for _ in waves]

    audio = tiny_corpus / tiny_calls[0].audio
    masked = CallPipeline(Reader(), load_vad("energy")).run_file(audio)
    raw = CallPipeline(Reader(), load_vad("energy"), raw=True).run_file(audio)
    assert (
        masked.masked and "一三八一二三四" not in masked.turns[0].text and "五六七八" in masked.turns[0].text
    )
    assert not raw.masked and raw.turns[0].text.endswith("一三八一二三四五六七八")


@pytest.mark.parametrize(
    ("second_channel", "bridge_gap", "found"), [(0, 1.0, True), (0, 0.0, False), (1, 1.0, False)]
)
def test_a_phrase_cut_by_a_pause_is_spotted_across_it(
    second_channel: int, bridge_gap: float, found: bool
) -> None:
    """我也没办法你自己 — 0.8 s — 看着办: the detector makes two turns, neither holding 你自己看着办;
    spotting across the pause finds it in the second, unless the pause is too long to bridge or the
    two halves are different speakers."""
    rng = np.random.default_rng(0)
    audio = rng.normal(0, 1e-4, (2, 6 * SR)).astype(np.float32)
    audio[0, SR : int(2.6 * SR)] = rng.uniform(-0.5, 0.5, int(1.6 * SR))
    audio[second_channel, int(3.4 * SR) : int(4.4 * SR)] = rng.uniform(-0.2, 0.2, SR)
    asr = SpellingCtc("我也没办法你自己", "看着办")
    pipeline = CallPipeline(
        asr, load_vad("energy"), keywords=asr.spotter(["你自己看着办"]), bridge_gap=bridge_gap
    )
    first, second = pipeline.run(audio, "cut").turns
    assert (first.text, second.text) == ("我也没办法你自己", "看着办")
    assert (first.spotted or {}).get("你自己看着办", -4.0) < -1.0  # half the phrase is missing
    score = (second.spotted or {}).get("你自己看着办")
    assert (score is not None and score > -0.1) == found


def test_noise_the_recogniser_cannot_follow_spots_nothing_and_says_so() -> None:
    """Flat posteriors bring every phrase near the best path: the turn keeps its text, spots nothing,
    and the result warns where spotting gave up."""

    class Unsure(SpellingCtc):
        def run(self, wave: np.ndarray, lengths: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
            """Every token nearly as likely as any other; a slight lean spells something."""
            frames = wave.shape[1] // self.hop
            logp = np.full((len(wave), frames, len(self.tokenizer)), -np.log(len(self.tokenizer)))
            logp[:, np.arange(frames), 2 + np.arange(frames) % (len(self.tokenizer) - 2)] += 0.1
            return logp, lengths // self.hop

    rng = np.random.default_rng(0)
    audio = rng.normal(0, 1e-4, (1, 4 * SR)).astype(np.float32)
    audio[0, SR : 3 * SR] = rng.uniform(-0.5, 0.5, 2 * SR)
    asr = Unsure("你烦不三您", "你")
    phrases = ["".join(p) for p in itertools.permutations("你烦不三您", 2)]
    result = CallPipeline(asr, load_vad("energy"), keywords=asr.spotter(phrases)).run(audio, "noise")
    assert [t.spotted for t in result.turns] == [{}]
    assert any("not spotted in 0: 0.9-3.1" in w for w in result.warnings), result.warnings


def test_length_batches_bound_the_padded_size() -> None:
    lengths = [5, 100, 40, 41, 99, 3, 60]
    batches = list(length_batches(lengths, budget=200))
    assert sorted(k for b in batches for k in b) == list(range(len(lengths)))
    assert all(len(b) * max(lengths[k] for k in b) <= 200 for b in batches)
    assert batches[0] == [1, 4]  # longest first, together


def test_the_pipeline_never_imports_torch(tiny_corpus: Path, tiny_calls: list[CallRecord]) -> None:
    code = (
        "import sys\n"
        "sys.path.insert(0, '.')\n"
        "import callqa.cli, callqa.serving.asr_onnx, callqa.serving.ser_onnx\n"
        "from callqa.serving.pipeline import CallPipeline\n"
        "from callqa.serving.vad import load_vad\n"
        "from tests.pipeline_fakes import FakeSer, SpyAsr\n"
        f"path = {str(tiny_corpus / tiny_calls[0].audio)!r}\n"
        "for vad in ('silero', 'energy'):\n"
        "    r = CallPipeline(SpyAsr(), load_vad(vad), FakeSer()).run_file(path)\n"
        "    assert r.turns\n"
        "assert 'torch' not in sys.modules, 'torch was imported'\n"
        "assert 'silero_vad' not in sys.modules, 'the silero_vad package (it imports torch) was imported'\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=Path(__file__).parents[1])


def test_serving_is_the_run_time_alone(tiny_corpus: Path, tiny_calls: list[CallRecord]) -> None:
    """Every serving module imports, and a call is heard and judged, with no torch, no training and no
    export code loaded: what a scoring server needs is onnxruntime, numpy and the shared feature code."""
    call = tiny_calls[0]
    code = (
        "import importlib, pkgutil, sys\n"
        "sys.path.insert(0, '.')\n"
        "import callqa.serving\n"
        "for m in pkgutil.iter_modules(callqa.serving.__path__):\n"
        "    importlib.import_module(f'callqa.serving.{m.name}')\n"
        "from callqa.data.rubric import load_rubric\n"
        "from callqa.serving.pipeline import CallPipeline\n"
        "from callqa.serving.score import Job, Scorer\n"
        "from callqa.serving.vad import load_vad\n"
        "from tests.pipeline_fakes import FakeSer, SpyAsr\n"
        "pipeline = CallPipeline(SpyAsr(), load_vad('energy'), FakeSer(), raw=True)\n"
        f"job = Job({call.id!r}, __import__('pathlib').Path({str(tiny_corpus / call.audio)!r}))\n"
        "score = Scorer(load_rubric(), pipeline, raw=True).score(job)\n"
        "assert score.call.turns and len(score.items) == len(load_rubric().ids)\n"
        "build_time = ('torch', 'lightning', 'callqa.training', 'callqa.export', 'callqa.evaluation')\n"
        "loaded = [m for m in build_time if m in sys.modules]\n"
        "assert not loaded, f'serving loaded {loaded}'\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=Path(__file__).parents[1])
