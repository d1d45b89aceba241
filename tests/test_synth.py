"""The synthetic corpus: valid, held out by voice and template, deterministic, and true to its labels
in the audio itself, not only in the JSON."""

from __future__ import annotations

import hashlib
import json
import tempfile
from pathlib import Path

import numpy as np
import pytest
from scipy.signal import welch

from callqa.data.audio import audio_info, read_audio
from callqa.data.constants import AGENT, CHANNEL_OF, CUSTOMER, SAMPLE_RATE
from callqa.data.prosody import pitch_track
from callqa.data.rubric import load_rubric
from callqa.data.schema import CallRecord, Utterance, read_calls, read_utterances
from callqa.data.segments import load_utterance
from callqa.data.synth.config import load_synth_config, preset_path
from callqa.data.synth.coverage import CLAUSE_CHARS, coverage_words, natural_clauses, natural_sentence
from callqa.data.synth.generate import generate_corpus
from callqa.data.synth.render import chars_per_minute
from callqa.data.synth.templates import TemplateBank
from callqa.data.synth.voices import (
    ESPEAK_RATE,
    SynthesisError,
    Voice,
    all_variants,
    private_espeak_data,
    sample_voice,
    synthesize,
    variant_split,
    variants_for_split,
)
from callqa.data.telephony import TelephoneChannel


def _channels(corpus: Path, call: CallRecord) -> np.ndarray:
    audio, sr = read_audio(corpus / call.audio, None)
    assert sr == SAMPLE_RATE
    return audio


def _segment(x: np.ndarray, start: float, end: float) -> np.ndarray:
    return x[int(start * SAMPLE_RATE) : int(end * SAMPLE_RATE)]


def _speech_rms(x: np.ndarray, call: CallRecord, speaker: str) -> float:
    parts = [_segment(x, t.start, t.end) for t in call.turns if t.speaker == speaker]
    return float(np.sqrt(np.mean(np.concatenate(parts) ** 2)))


def test_corpus_files_validate(
    tiny_corpus: Path, tiny_calls: list[CallRecord], tiny_utterances: list[Utterance]
) -> None:
    info = json.loads((tiny_corpus / "corpus.json").read_text(encoding="utf-8"))
    assert info["preset"] == "tiny" and info["seed"] == 0 and info["generator_version"]
    assert info["counts"]["calls"] == len(tiny_calls) == 12
    assert info["counts"]["utterances"] == len(tiny_utterances) == sum(len(c.turns) for c in tiny_calls)
    coverage = read_utterances(tiny_corpus / "coverage.jsonl")
    assert len(coverage) == info["counts"]["coverage_sentences"] == 12
    assert {c.split for c in tiny_calls} == {"train", "dev", "test"}
    rubric = load_rubric(tiny_corpus / "rubric.yaml")
    for call in tiny_calls:
        i = audio_info(tiny_corpus / call.audio)
        assert (i.sample_rate, i.channels) == (SAMPLE_RATE, 2)
        assert abs(i.duration - call.duration) < 0.01
        assert call.inspections, call.id
        for sheet in call.inspections:
            assert sheet.total == rubric.total(sheet.items, sheet.fatal)


def test_every_rubric_item_has_defects_and_fatal_calls_exist(tiny_calls: list[CallRecord]) -> None:
    seen = {d for c in tiny_calls for d in c.truth.defects}
    assert seen == set(load_rubric().ids)
    assert any(s.fatal for c in tiny_calls for s in c.inspections)


def test_inspection_kinds(tiny_calls: list[CallRecord]) -> None:
    kinds = {s.kind for c in tiny_calls for s in c.inspections}
    assert {"sample", "calibration"} <= kinds
    calibration = [c for c in tiny_calls if any(s.kind == "calibration" for s in c.inspections)]
    assert all(len({s.inspector_id for s in c.inspections}) >= 4 for c in calibration)


def test_test_voices_and_templates_never_in_train(tiny_corpus: Path, tiny_calls: list[CallRecord]) -> None:
    bank = {t.id: t.split for t in TemplateBank.load().all()}
    voices: dict[str, set[str]] = {"train": set(), "dev": set(), "test": set()}
    templates: dict[str, set[str]] = {"train": set(), "dev": set(), "test": set()}
    for call in tiny_calls:
        for turn in call.turns:
            voices[call.split].add(turn.meta["voice"])
            templates[call.split].add(turn.meta["template"])
            assert bank[turn.meta["template"]] == call.split
            assert variant_split(turn.meta["voice"]) == call.split
    for cov in read_utterances(tiny_corpus / "coverage.jsonl"):
        voices["train"].add(cov.voice)
    assert not voices["test"] & voices["train"]
    assert not templates["test"] & templates["train"]
    assert not voices["dev"] & voices["train"]


def _digest(folder: Path) -> dict[str, str]:
    return {
        p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def test_same_seed_same_bytes_at_any_worker_count(tmp_path: Path) -> None:
    cfg = load_synth_config(preset_path("tiny"), calls=3, coverage_sentences=2)
    generate_corpus(cfg, tmp_path / "a", seed=7, workers=1)
    generate_corpus(cfg, tmp_path / "b", seed=7, workers=2)
    generate_corpus(cfg, tmp_path / "c", seed=8, workers=2)
    assert _digest(tmp_path / "a") == _digest(tmp_path / "b")
    assert (tmp_path / "a/calls.jsonl").read_bytes() != (tmp_path / "c/calls.jsonl").read_bytes()
    assert not list(tmp_path.glob("*.partial-*"))


def test_existing_corpus_is_not_overwritten_silently(tmp_path: Path) -> None:
    (tmp_path / "x").mkdir()
    with pytest.raises(FileExistsError):
        generate_corpus(load_synth_config(preset_path("tiny"), calls=1), tmp_path / "x", workers=1)


def test_silence_defect_is_dead_air(tiny_corpus: Path, tiny_calls: list[CallRecord]) -> None:
    events = [(c, e) for c in tiny_calls for e in c.truth.events if e.item == "silence"]
    assert events
    for call, ev in events:
        assert ev.end - ev.start > load_rubric()["silence"].params["max_seconds"]
        x = _channels(tiny_corpus, call)
        inner = slice(ev.start + 0.2, ev.end - 0.2)
        for speaker in (AGENT, CUSTOMER):
            ch = x[CHANNEL_OF[speaker]]
            quiet = np.sqrt(np.mean(_segment(ch, inner.start, inner.stop) ** 2))
            assert quiet < 0.35 * _speech_rms(ch, call, speaker), (call.id, speaker)


def test_interruption_is_speech_on_both_channels(tiny_corpus: Path, tiny_calls: list[CallRecord]) -> None:
    events = [(c, e) for c in tiny_calls for e in c.truth.events if e.item == "interruption"]
    assert events
    for call, ev in events:
        assert ev.end - ev.start > load_rubric()["interruption"].params["min_overlap_seconds"]
        x = _channels(tiny_corpus, call)
        for speaker in (AGENT, CUSTOMER):
            ch = x[CHANNEL_OF[speaker]]
            during = np.sqrt(np.mean(_segment(ch, ev.start, ev.end) ** 2))
            assert during > 0.4 * _speech_rms(ch, call, speaker), (call.id, speaker)
        agent_turn = next(t for t in call.turns if t.speaker == AGENT and abs(t.start - ev.start) < 1e-3)
        customer_turn = next(t for t in call.turns if t.speaker == CUSTOMER and abs(t.end - ev.end) < 1e-3)
        assert agent_turn.end > ev.end and customer_turn.start < ev.start


def test_turns_are_where_the_speech_is(tiny_corpus: Path, tiny_calls: list[CallRecord]) -> None:
    call = tiny_calls[0]
    x = _channels(tiny_corpus, call)
    for speaker in (AGENT, CUSTOMER):
        own, other = x[CHANNEL_OF[speaker]], x[1 - CHANNEL_OF[speaker]]
        turns = [t for t in call.turns if t.speaker == speaker]
        speech = np.mean([np.sqrt(np.mean(_segment(own, t.start, t.end) ** 2)) for t in turns])
        silent_other = [
            t
            for t in turns
            if not any(o.speaker != speaker and o.start < t.end and t.start < o.end for o in call.turns)
        ]
        leak = np.mean([np.sqrt(np.mean(_segment(other, t.start, t.end) ** 2)) for t in silent_other])
        assert speech > 3 * leak


def test_channel_is_band_limited_telephone(tiny_corpus: Path, tiny_calls: list[CallRecord]) -> None:
    x = _channels(tiny_corpus, tiny_calls[0])
    f, p = welch(x[0], fs=SAMPLE_RATE, nperseg=512)
    band = p[(f >= 300) & (f <= 3400)].mean()
    assert 10 * np.log10(p[f < 150].mean() / band) < -15
    assert 10 * np.log10(p[(f > 3750)].mean() / band) < -15


def test_speech_rate_defect_is_measurable(tiny_calls: list[CallRecord]) -> None:
    params = load_rubric()["speech_rate"].params
    flagged = 0
    for call in tiny_calls:
        turns = [t for t in call.turns if t.speaker == AGENT]
        cpm = chars_per_minute([t.text for t in turns], sum(t.end - t.start for t in turns))
        outside = not params["min_cpm"] <= cpm <= params["max_cpm"]
        assert outside == ("speech_rate" in call.truth.defects), (call.id, cpm)
        flagged += outside
    assert 0 < flagged < len(tiny_calls)


def _measure(emotion: str, voice: Voice, rng: np.random.Generator) -> tuple[float, float, float]:
    """Median pitch (Hz), energy (RMS) and duration (s) of one sentence through the telephone channel."""
    wav = synthesize("您好，很高兴为您服务，请问您遇到了什么问题？", voice, emotion)
    y = TelephoneChannel(snr_db=30)(wav, ESPEAK_RATE, rng)
    y = y[0] if y.ndim == 2 else y
    return float(np.median(pitch_track(y))), float(np.sqrt(np.mean(y**2))), len(y) / SAMPLE_RATE


@pytest.mark.parametrize("variant", ["m3", "f2"])
def test_emotions_differ_in_pitch_energy_and_rate(variant: str) -> None:
    rng = np.random.default_rng(0)
    voice = Voice(variant, pitch=45, rate=190, loudness=30)
    m = {e: _measure(e, voice, rng) for e in ("neutral", "happy", "angry", "sad", "surprise")}
    pitch, energy, dur = ({e: v[i] for e, v in m.items()} for i in range(3))
    assert pitch["sad"] < pitch["neutral"] < pitch["happy"] < pitch["surprise"]
    assert pitch["angry"] > pitch["neutral"]
    assert energy["sad"] < energy["neutral"] < energy["angry"]
    assert dur["angry"] < dur["neutral"] < dur["sad"]


def test_emotions_overlap_between_speakers() -> None:
    """A calm high voice is higher than an angry low one: pitch alone cannot give the emotion away."""
    rng = np.random.default_rng(0)
    low_angry = _measure("angry", Voice("m3", pitch=30, rate=190, loudness=30), rng)[0]
    high_calm = _measure("neutral", Voice("m3", pitch=70, rate=190, loudness=30), rng)[0]
    assert high_calm > low_angry


def test_corpus_emotions_carry_energy(tiny_corpus: Path, tiny_utterances: list[Utterance]) -> None:
    """Within each speaker, angry turns are louder than their own neutral ones, measured in the corpus."""
    by_voice: dict[tuple[str, str], dict[str, list[float]]] = {}
    for u in tiny_utterances:
        rms = float(np.sqrt(np.mean(load_utterance(u, tiny_corpus) ** 2)))
        by_voice.setdefault((u.call_id, u.speaker), {}).setdefault(u.emotion, []).append(rms)
    ratios = [
        np.mean(e["angry"]) / np.mean(e["neutral"])
        for e in by_voice.values()
        if "angry" in e and "neutral" in e
    ]
    assert ratios and np.median(ratios) > 1.2


def test_utterances_cut_from_calls(tiny_corpus: Path, tiny_utterances: list[Utterance]) -> None:
    u = tiny_utterances[0]
    x = load_utterance(u, tiny_corpus)
    assert abs(len(x) - u.duration * SAMPLE_RATE) <= 2
    assert u.channel == CHANNEL_OF[u.speaker]


def _centroid_hz(x: np.ndarray) -> float:
    spectrum = np.abs(np.fft.rfft(x))
    return float((spectrum * np.fft.rfftfreq(len(x), 1 / ESPEAK_RATE)).sum() / spectrum.sum())


def test_made_up_timbres_speak_differently_and_only_in_train() -> None:
    def draw(rate: float, split: str = "train") -> list[Voice]:
        rng = np.random.default_rng(3)
        return [sample_voice(rng, split, "customer", rate) for _ in range(40)]

    shipped = set(variants_for_split("train"))
    assert draw(0.0) == [Voice(v.variant, v.pitch, v.rate, v.loudness) for v in draw(0.0)]
    assert all(v.timbre is None and v.variant in shipped for v in draw(0.0))  # corpora made before: unchanged
    mixed = draw(0.5)
    made_up = [v for v in mixed if v.timbre]
    assert 8 <= len(made_up) <= 32 and len({v.variant for v in made_up}) == len(made_up)
    assert all(v.variant.startswith("rand-") and "formant 1" in str(v.timbre) for v in made_up)
    for split in ("dev", "test"):  # held-out voices stay the shipped held-out variants
        assert all(v.timbre is None and variant_split(v.variant) == split for v in draw(1.0, split))
    text = "您好请问有什么可以帮您"
    bright = "language variant\n" + "".join(f"formant {k} 150 100 100\n" for k in range(9))
    dark = bright.replace(" 150 ", " 70 ")
    with pytest.raises(SynthesisError, match="private_espeak_data"):
        synthesize(text, Voice("rand-bright", 50, 180, 30, timbre=bright))
    with private_espeak_data() as root:
        centroids = [
            _centroid_hz(synthesize(text, Voice(name, 50, 180, 30, timbre=t)))
            for name, t in (("rand-bright", bright), ("rand-dark", dark))
        ]
        # espeak-ng lists at most 350 voices: made-up timbres share one variant file per process
        private = {p.name for p in (root / "espeak-ng-data" / "voices" / "!v").iterdir()}
        assert set(all_variants()) < private and not [v for v in private if v.startswith("rand-")]
    assert centroids[0] > 1.3 * centroids[1]
    assert not root.exists()  # nothing left behind


def test_mono_mix_calls(tmp_path: Path) -> None:
    cfg = load_synth_config(preset_path("tiny"), calls=2, coverage_sentences=1, mono_fraction=1.0)
    generate_corpus(cfg, tmp_path / "m", workers=1)
    calls = read_calls(tmp_path / "m" / "calls.jsonl")
    assert all(c.channels == "mono" for c in calls)
    assert audio_info(tmp_path / "m" / calls[0].audio).channels == 1
    utts = read_utterances(tmp_path / "m" / "utterances.jsonl")
    assert all(u.channel is None for u in utts)
    x = load_utterance(utts[0], tmp_path / "m")
    assert abs(len(x) - utts[0].duration * SAMPLE_RATE) <= 2 and np.abs(x).max() > 0.01


# --- the dialogue plan across all sixteen industries (generator 2.0), without rendering ----------------


def _plans(scenario: str, defects: set[str], n: int, base: int = 0) -> list:
    from callqa.data.synth.script import plan_call
    from callqa.data.synth.slots import sample_slots

    bank = TemplateBank.load()
    out = []
    for seed in range(n):
        rng = np.random.default_rng((base, seed))
        slots = sample_slots(rng, bank.scenario_slots(scenario))
        out.append(
            (
                slots,
                plan_call(rng, bank, scenario, "train", set(defects), seed % 3 == 0, seed % 2 == 0, slots),
            )
        )
    return out


@pytest.mark.parametrize("scenario", TemplateBank.load().scenarios)
def test_rubric_hooks_hold_in_every_industry(scenario: str) -> None:
    for slots, plan in _plans(scenario, set(), 10):
        kinds = [t.kind for t in plan.turns]
        assert kinds[0] == "greeting" and slots["agent_no"] in plan.turns[0].text
        assert "verify" in kinds and kinds[-1] == "farewell" and "resolve" in kinds
    for _, plan in _plans(
        scenario, {"greeting", "verification", "closing", "resolution", "confidentiality"}, 10
    ):
        kinds = [t.kind for t in plan.turns]
        assert kinds[0] == "greeting_bad" and kinds[-1] == "closing_bad"
        assert "verify" not in kinds and "resolve" not in kinds and "leak" in kinds


def test_customers_speak_colloquially_and_turn_lengths_spread() -> None:
    bank = TemplateBank.load()
    turns = [
        t for i, s in enumerate(bank.scenarios) for _, plan in _plans(s, set(), 12, i) for t in plan.turns
    ]
    customer = [t.text for t in turns if t.speaker == CUSTOMER]
    filler = sum(t.startswith(("嗯", "那个", "就是", "啊", "哎")) for t in customer) / len(customer)
    assert 0.2 < filler < 0.55
    assert any("不对" in t for t in customer) and any("幺" in t for t in customer)
    lengths = [len(t.text) for t in turns]
    assert min(lengths) <= 2 and max(lengths) >= 45
    assert sum(t.kind == "backchannel" for t in turns) > 0.2 * len(bank.scenarios) * 12


def test_a_corpus_with_made_up_training_voices(tmp_path: Path) -> None:
    cfg = load_synth_config(preset_path("tiny"), calls=6, coverage_sentences=3, random_voice_rate=1.0)
    before = set(Path(tempfile.gettempdir()).glob("callqa-espeak-*"))
    generate_corpus(cfg, tmp_path / "r", workers=2)
    assert set(Path(tempfile.gettempdir()).glob("callqa-espeak-*")) <= before  # the private data is gone
    seen: dict[str, set[str]] = {"train": set(), "dev": set(), "test": set()}
    for u in read_utterances(tmp_path / "r" / "utterances.jsonl"):
        seen[str(u.split)].add(str(u.voice))
    for u in read_utterances(tmp_path / "r" / "coverage.jsonl"):
        seen["train"].add(str(u.voice))
    assert seen["train"] and all(v.startswith("rand-") for v in seen["train"])
    for split in ("dev", "test"):
        assert all(variant_split(v) == split for v in seen[split])


def test_natural_clauses_are_short_spoken_chinese() -> None:
    clauses = natural_clauses(30000)
    assert len(clauses) > 20000 and clauses == tuple(sorted(set(clauses)))
    known = set("".join(coverage_words(30000)[0]))
    for clause in clauses[::97]:
        assert CLAUSE_CHARS[0] <= len(clause) <= CLAUSE_CHARS[1]
        assert all("\u4e00" <= c <= "\u9fff" and c in known for c in clause)
    rng = np.random.default_rng(0)
    sentences = [natural_sentence(rng, 30000) for _ in range(200)]
    assert all(s.endswith("。") for s in sentences) and len(set(sentences)) == 200
    assert 0.3 < np.mean(["，" in s for s in sentences]) < 0.7  # one clause or two, half and half


def test_natural_coverage_replaces_random_words(tmp_path: Path) -> None:
    cfg = load_synth_config(preset_path("tiny"), calls=1, coverage_sentences=6, natural_coverage_rate=1.0)
    generate_corpus(cfg, tmp_path / "n", workers=1)
    clauses = set(natural_clauses(cfg.coverage_vocabulary))
    texts = [u.text for u in read_utterances(tmp_path / "n" / "coverage.jsonl")]
    assert len(texts) == 6
    assert all(set(t.rstrip("。").split("，")) <= clauses for t in texts)
