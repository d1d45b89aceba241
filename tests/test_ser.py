"""Speech emotion: speaker-relative features, metrics and calibration, export parity, the runtime."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from callqa.data.constants import EMOTIONS, SAMPLE_RATE, UNCERTAIN
from callqa.evaluation.ser_metrics import (
    choose_threshold,
    classification_metrics,
    ece,
    fit_temperature,
    nll,
    softmax,
)
from callqa.export.ser import export_ser
from callqa.models.registry import build_ser_model
from callqa.models.ser.features import (
    UTT_STATS,
    FeatureConfig,
    FeatureExtractor,
    RawFeatures,
    _peers,
    context_window,
    gate_pitch,
    speaker_inputs,
    speaker_normalise,
    turn_offsets,
)
from callqa.serving.ser_onnx import load_ser, segment_feed

F0 = UTT_STATS.index("f0_median")
N = len(UTT_STATS)


def voice(f0: float, seconds: float = 1.5, level: float = 0.2, seed: int = 0) -> np.ndarray:
    """A harmonic tone with a 4 Hz syllable envelope: a crude voiced utterance at pitch ``f0``."""
    t = np.arange(int(seconds * SAMPLE_RATE)) / SAMPLE_RATE
    x = sum(np.sin(2 * np.pi * f0 * h * t) / h for h in range(1, 6))
    env = 0.6 + 0.4 * np.sin(2 * np.pi * 4 * t)
    return (level * x * env + 1e-3 * np.random.default_rng(seed).standard_normal(len(t))).astype(np.float32)


def test_features_measure_pitch_relative_to_the_speaker() -> None:
    ext = FeatureExtractor()
    raw = ext.raw(voice(150.0))
    assert 12 * np.log2(150 / 100) == pytest.approx(raw.stats[F0], abs=0.3)
    xs = speaker_inputs([voice(120.0), voice(120.0, seed=1), voice(160.0)], ext)
    rel = [x.stats[N + F0] for x in xs]
    assert rel[2] == pytest.approx(12 * np.log2(160 / 120), abs=0.4)
    assert abs(rel[0]) < 0.2
    assert xs[0].frames.shape[1] == FeatureConfig().frame_dim and xs[0].stats.shape == (
        FeatureConfig().stats_dim,
    )


def test_pitch_gate_discards_a_turn_tracked_on_a_harmonic() -> None:
    """A turn whose frames were tracked two octaves up (a harmonic of a band-passed low voice) must
    not move the speaker's reference nor its own median: the speaker's modal pitch anchors the gate."""
    ext = FeatureExtractor()
    raws = [ext.raw(voice(110.0, seed=k)) for k in range(4)] + [ext.raw(voice(130.0, seed=9))]
    broken = raws[0].frames.copy()
    voiced = np.flatnonzero(broken[:, -2] != 0)
    broken[voiced[: int(0.7 * len(voiced))], -2] += 24.0  # most of turn 0 on the fourth harmonic
    stats = raws[0].stats.copy()
    stats[F0] = np.median(broken[voiced, -2])
    raws[0] = RawFeatures(broken, raws[0].active, stats)
    gated = gate_pitch(raws, FeatureConfig())
    assert gated[0].stats[F0] == pytest.approx(raws[1].stats[F0], abs=0.5)
    xs = speaker_normalise(raws, FeatureConfig())
    assert abs(xs[1].stats[N + F0]) < 0.2  # the reference is the calm voices, not the broken turn
    assert xs[4].stats[N + F0] == pytest.approx(12 * np.log2(130 / 110), abs=0.4)
    ungated = speaker_normalise(raws, FeatureConfig(f0_gate=0.0))
    assert ungated[0].stats[F0] > xs[0].stats[F0] + 12


def hiss(seconds: float, level: float, seed: int) -> np.ndarray:
    """Band noise around 3 kHz: a crude fricative, much quieter than a vowel at the same voice effort."""
    x = np.random.default_rng(seed).standard_normal(int(seconds * SAMPLE_RATE))
    spec = np.fft.rfft(x)
    freqs = np.fft.rfftfreq(len(x), 1 / SAMPLE_RATE)
    spec[(freqs < 2500) | (freqs > 3500)] = 0
    y = np.fft.irfft(spec, len(x))
    return (level * y / y.std()).astype(np.float32)


def test_turns_are_compared_sound_by_sound_not_by_their_mean_level() -> None:
    """Two turns of one speaker with different words (one mostly vowels, one mostly fricatives), the
    second said 3 dB louder: their mean levels differ by the words far more than by the voice, while
    comparing like frames recovers the 3 dB."""
    ext = FeatureExtractor()
    gain = 10 ** (3 / 20)
    vowels = np.concatenate([voice(120.0, 2.0, seed=1), hiss(0.5, 0.02, 2)])
    fricatives = gain * np.concatenate([voice(120.0, 0.5, seed=3), hiss(2.0, 0.02, 4)])
    raws = [ext.raw(vowels), ext.raw(fricatives)]
    stats = np.stack([r.stats for r in raws])
    pitch, level = turn_offsets(raws, stats, FeatureConfig())
    assert level[1, 0] == pytest.approx(3.0, abs=0.5) and level[0, 1] == -level[1, 0]
    assert abs(pitch[1, 0]) < 0.3
    mean_gap = stats[1, UTT_STATS.index("energy_mean")] - stats[0, UTT_STATS.index("energy_mean")]
    assert abs(mean_gap - 3.0) > 2.0  # what version 2 compared
    medians, _ = turn_offsets(raws, stats, FeatureConfig(match_frames=0))
    assert medians[1, 0] == pytest.approx(stats[1, F0] - stats[0, F0])


def test_a_turn_is_compared_with_a_bounded_number_of_neighbours() -> None:
    assert _peers(0, 5, None).tolist() == [1, 2, 3, 4]
    assert _peers(0, 100, 4).tolist() == [1, 2, 3, 4]
    assert _peers(50, 100, 4).tolist() == [48, 49, 51, 52]
    assert _peers(99, 100, 4).tolist() == [95, 96, 97, 98]


def test_features_of_another_version_are_refused(tmp_path: Path) -> None:
    old = FeatureConfig().to_dict()
    del old["version"]  # written before versions were recorded
    with pytest.raises(ValueError, match=r"old\.onnx: SER features version 1"):
        FeatureConfig.from_dict(old, "old.onnx")
    old["version"] = 2  # before turns were compared sound by sound
    with pytest.raises(ValueError, match="version 2"):
        FeatureConfig.from_dict(old, "old.onnx")
    assert FeatureConfig.from_dict(FeatureConfig().to_dict()) == FeatureConfig()


def test_features_take_one_short_or_silent_wave() -> None:
    ext = FeatureExtractor()
    for wave in (voice(200.0, seconds=0.3), np.zeros(10, np.float32), np.zeros(SAMPLE_RATE, np.float32)):
        (x,) = speaker_inputs([wave], ext)
        assert np.isfinite(x.frames).all() and np.isfinite(x.stats).all()
        assert not x.stats[N : 2 * N].any()  # alone, nothing to be relative to


def test_metrics_and_calibration() -> None:
    labels = np.array([0, 0, 0, 0, 1, 2])
    m = classification_metrics(labels, np.array([0, 0, 0, 0, 0, 2]), 5)
    assert m["wa"] == pytest.approx(5 / 6) and m["ua"] == pytest.approx(2 / 3)  # absent classes skipped
    rng = np.random.default_rng(0)
    y = rng.integers(0, 5, 2000)
    logits = rng.standard_normal((2000, 5))
    logits[np.arange(2000), y] += 2.0
    logits *= 4.0  # overconfident
    t = fit_temperature(logits, y)
    assert t > 1.5 and nll(logits, y, t) < nll(logits, y, 1.0)
    assert ece(softmax(logits, t), y) < ece(softmax(logits), y)
    thr = choose_threshold(softmax(logits, t), y, 0.9)
    keep = softmax(logits, t).max(1) >= thr
    assert (softmax(logits, t).argmax(1)[keep] == y[keep]).mean() >= 0.9
    weak = rng.standard_normal((2000, 5))  # no threshold makes chance 90 % right
    thr = choose_threshold(softmax(weak), y, 0.9, min_coverage=0.5)
    assert (softmax(weak).max(1) >= thr).mean() >= 0.5


def _checkpoint(tmp_path: Path, model: dict) -> Path:
    torch.manual_seed(0)
    net = build_ser_model(model)
    path = tmp_path / "ser.ckpt"
    saved = {"hf_config": net.cfg.hf_config} if model.get("type") == "hf" else {}
    torch.save(
        {
            "hyper_parameters": {"model": {**model, **saved}, "features": FeatureConfig().to_dict()},
            "state_dict": {f"model.{k}": v for k, v in net.state_dict().items()},
        },
        path,
    )
    return path


def test_fine_tuning_starts_from_the_base_and_refuses_other_features(tmp_path: Path) -> None:
    from callqa.training.ser_module import SerModule

    ckpt = _checkpoint(tmp_path, {"type": "encoder", "channels": 16, "conv_layers": 1})
    tuned = SerModule({"type": "encoder"}, features=FeatureConfig().to_dict(), init_from=str(ckpt))
    assert tuned.model.cfg.channels == 16  # the base's architecture, not the config's default
    base = torch.load(ckpt, weights_only=True)["state_dict"]
    assert all(torch.equal(v, base[k]) for k, v in tuned.state_dict().items() if k.startswith("model."))
    with pytest.raises(ValueError, match="other feature settings"):
        SerModule({"type": "encoder"}, features=FeatureConfig(f0_gate=4.0).to_dict(), init_from=str(ckpt))


CONTEXT_MODEL = {"type": "encoder", "channels": 16, "conv_layers": 1, "context_rounds": 2, "context_dim": 32}
CONTEXT_NAMES = ["frames", "lengths", "stats", "peer_stats", "peer_pairs", "peer_mask", "index"]


def _eager(model: torch.nn.Module, feed: dict) -> np.ndarray:
    with torch.no_grad():
        return model(*(torch.from_numpy(feed[n]) for n in CONTEXT_NAMES)).numpy()


def test_a_long_speaker_is_judged_in_windows_that_give_the_full_result() -> None:
    """Batches of a long call's turns see only a window of their speaker's others: the turns they are
    compared with, and those turns' own peers, and so exactly what all the turns together would give."""
    torch.manual_seed(0)
    model = build_ser_model(CONTEXT_MODEL).eval()
    cfg = FeatureConfig(match_peers=4)
    xs = speaker_inputs(
        [voice(110.0 + 7 * (k % 5), 0.4 + 0.1 * (k % 3), seed=k) for k in range(23)], FeatureExtractor(cfg)
    )
    everything = _eager(model, segment_feed(xs, None, np.arange(23), CONTEXT_NAMES, rounds=2))
    for lo in range(0, 23, 5):
        idx = np.arange(lo, min(lo + 5, 23))
        feed = segment_feed(xs, None, idx, CONTEXT_NAMES, rounds=2)
        assert len(feed["peer_stats"]) < 23  # a window, not the whole speaker
        np.testing.assert_allclose(_eager(model, feed), everything[idx], atol=1e-5)
    too_short = segment_feed(xs, None, np.arange(10, 12), CONTEXT_NAMES, rounds=1)
    assert not np.allclose(
        _eager(model, too_short), everything[10:12], atol=1e-5
    )  # one round of reach is too little


def test_speakers_batched_together_do_not_see_each_other() -> None:
    torch.manual_seed(0)
    model = build_ser_model(CONTEXT_MODEL).eval()
    ext = FeatureExtractor()
    a = speaker_inputs([voice(120.0, seed=k) for k in range(3)], ext)
    b = speaker_inputs([voice(200.0 + 20 * k, seed=k) for k in range(4)], ext)
    alone = [_eager(model, segment_feed(g, None, np.arange(len(g)), CONTEXT_NAMES)) for g in (a, b)]
    feed = segment_feed(a + b, None, np.arange(7), ["frames", "lengths", "stats"])
    feed["peer_stats"], feed["peer_pairs"], feed["peer_mask"] = context_window([(a, 0, 3), (b, 0, 4)])
    feed["index"] = np.arange(7)
    np.testing.assert_allclose(_eager(model, feed), np.concatenate(alone), atol=1e-5)
    assert not feed["peer_mask"][:3, 3:].any() and not feed["peer_mask"].diagonal().any()


def test_call_context_model_exports_with_parity(tmp_path: Path) -> None:
    ckpt = _checkpoint(tmp_path, CONTEXT_MODEL)
    report = export_ser(ckpt, tmp_path / "out", int8=False)
    assert report["parity"]["passed"], report["parity"]
    ser = load_ser(tmp_path / "out" / "ser.onnx", threads=1)
    assert ser.context_rounds == 2 and "peer_pairs" in ser.inputs
    waves = [voice(120.0 + 5 * k, 0.5 + 0.05 * k, seed=k) for k in range(40)]  # more than one batch
    probs = ser.classify(waves)
    assert probs.shape == (40, 5) and np.allclose(probs.sum(1), 1, atol=1e-5)
    assert ser.classify(waves[:1]).shape == (1, 5) and ser.classify([]).shape == (0, 5)


def test_export_parity_and_runtime(tmp_path: Path) -> None:
    ckpt = _checkpoint(tmp_path, {"type": "encoder", "channels": 32, "conv_layers": 2})
    report = export_ser(ckpt, tmp_path / "out")
    assert report["parity"]["passed"], report["parity"]
    assert max(r["max_abs_diff"] for r in report["parity"]["synthetic"]) <= 1e-3
    for name in ("ser.onnx", "ser.int8.onnx"):
        ser = load_ser(tmp_path / "out" / name, threads=1)
        assert ser.labels == EMOTIONS and ser.sample_rate == SAMPLE_RATE and ser.meta["callqa.kind"] == "ser"
        waves = [voice(130.0, s) for s in (0.3, 2.0, 20.0)]
        probs = ser.classify(waves)
        assert probs.shape == (3, len(EMOTIONS)) and np.allclose(probs.sum(1), 1, atol=1e-5)
        assert ser.classify(waves[:1]).shape == (1, 5) and ser.classify([]).shape == (0, 5)
        ser.threshold = 1.01
        assert ser.decide(probs) == [UNCERTAIN] * 3


def test_runtime_never_imports_torch(tmp_path: Path) -> None:
    ckpt = _checkpoint(tmp_path, {"type": "encoder", "channels": 16, "conv_layers": 1})
    export_ser(ckpt, tmp_path / "out", int8=False)
    code = (
        "import sys, numpy as np; from callqa.serving.ser_onnx import load_ser;"
        f"s = load_ser({str(tmp_path / 'out' / 'ser.onnx')!r});"
        "print(s.classify([np.zeros(8000, np.float32)]).shape, 'torch' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "(1, 5) False"


def test_hf_head_on_a_tiny_local_encoder_exports(tmp_path: Path) -> None:
    from transformers import Wav2Vec2Config, Wav2Vec2Model

    from tests.test_asr_hf import TINY_ENCODER

    torch.manual_seed(0)
    Wav2Vec2Model(Wav2Vec2Config(**TINY_ENCODER)).save_pretrained(tmp_path / "w2v")
    ckpt = _checkpoint(tmp_path, {"type": "hf", "path": str(tmp_path / "w2v"), "dropout": 0.0})
    report = export_ser(ckpt, tmp_path / "out", int8=False)
    assert report["parity"]["passed"], report["parity"]
    ser = load_ser(tmp_path / "out" / "ser.onnx")
    assert ser.meta["callqa.input_kind"] == "wave"
    assert ser.classify([voice(140.0, 1.0), voice(180.0, 0.5)]).shape == (2, 5)


def test_batches_hold_whole_speakers_in_order() -> None:
    from types import SimpleNamespace

    from callqa.training.ser_data import GroupBatchSampler

    groups = [0] * 5 + [5] * 2 + [7] * 9 + [16] * 1
    items = [SimpleNamespace(group=g) for g in groups]
    for shuffle in (False, True):
        batches = list(GroupBatchSampler(items, batch_size=6, shuffle=shuffle))
        assert sorted(k for b in batches for k in b) == list(range(len(items)))
        for b in batches:
            for g in {groups[k] for k in b}:
                assert [k for k in b if groups[k] == g] == [k for k in range(len(items)) if groups[k] == g]
