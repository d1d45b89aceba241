"""The ASR building blocks: tokenizer, front-end, Conformer-CTC shapes, and CTC decoding."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torchaudio

from callqa.models.asr.conformer import ConformerCTC, ConformerCTCConfig, SpecAugmentConfig, spec_augment
from callqa.models.asr.decoding import Hotwords, greedy_ids, hotwords_from_text, prefix_beam_search
from callqa.models.asr.frontend import FrontendConfig, LogMelFrontend
from callqa.models.tokenizer import CharTokenizer, normalize


def test_tokenizer_round_trip_and_unknowns() -> None:
    tok = CharTokenizer.build(["您好，请问有什么可以帮您？", "好的，谢谢！"])
    assert tok.vocab[:2] == ["<blank>", "<unk>"]
    assert tok.vocab[2] in ("您", "好")  # most frequent characters first
    ids = tok.encode("您好，谢谢")
    assert tok.decode(ids) == "您好谢谢"
    assert tok.encode("龘") == [tok.unk_id]
    assert CharTokenizer.from_json(tok.to_json()).vocab == tok.vocab
    assert normalize("ＡＢＣ，你好 123！") == "abc你好123"


def test_frontend_matches_torchaudio_spectrogram() -> None:
    cfg = FrontendConfig()
    fe = LogMelFrontend(cfg)
    wave = torch.randn(2, 8000) * 0.1
    feats, lens = fe(wave, torch.tensor([8000, 6000]))
    assert feats.shape == (2, (8000 - 256) // 80 + 1, cfg.n_mels)
    assert lens.tolist() == [(8000 - 256) // 80 + 1, (6000 - 256) // 80 + 1]
    window = torch.zeros(256)
    window[28:228] = torch.hann_window(200, periodic=True)
    ref = torchaudio.transforms.MelSpectrogram(
        sample_rate=8000,
        n_fft=256,
        hop_length=80,
        f_min=20.0,
        f_max=4000.0,
        n_mels=40,
        center=False,
        window_fn=lambda n: window,
        mel_scale="htk",
        norm=None,
    )(wave)
    assert torch.allclose(feats, torch.log(ref.transpose(1, 2) + 1e-6), atol=1e-3)


def test_frontend_normalization_is_estimated() -> None:
    fe = LogMelFrontend(FrontendConfig())
    waves = [torch.randn(4000) * s for s in (0.01, 0.1, 0.5)]
    fe.set_normalization(waves)
    feats, _ = fe(torch.stack([w[:4000] for w in waves]), torch.tensor([4000] * 3))
    assert abs(float(feats.mean())) < 0.2
    assert 0.7 < float(feats.std()) < 1.3


@pytest.mark.parametrize("factor", [4, 8])
def test_conformer_shapes_and_lengths(factor: int) -> None:
    cfg = ConformerCTCConfig(
        vocab_size=10, subsampling=factor, d_model=32, num_heads=2, ffn_dim=64, num_layers=2, kernel_size=7
    )
    model = ConformerCTC(cfg).eval()
    lens = torch.tensor([16000, 12000, 8000])
    wave = torch.randn(3, 16000) * 0.1 * (torch.arange(16000)[None, :] < lens[:, None])
    logp, out_lens = model(wave, lens)
    assert logp.shape[0] == 3 and logp.shape[2] == 10
    assert out_lens[0] == logp.shape[1] and out_lens[0] > out_lens[1] > out_lens[2] > 0
    frames = (16000 - 256) // 80 + 1
    assert abs(logp.shape[1] - frames / factor) <= 2
    assert torch.allclose(logp.exp().sum(-1), torch.ones(3, logp.shape[1]), atol=1e-4)
    # an utterance scores the same alone as padded in a batch
    alone, _ = model(wave[2:, :8000], lens[2:])
    assert torch.allclose(alone[0], logp[2, : out_lens[2]], atol=1e-5)
    assert ConformerCTCConfig.from_dict(cfg.to_dict()) == cfg


def test_specaugment_masks_only_when_training() -> None:
    feats = torch.ones(2, 100, 40)
    out = spec_augment(feats, SpecAugmentConfig(freq_masks=2, freq_width=8, time_masks=2, time_width=0.1))
    assert (out == 0).any() and (out == 1).any()
    cfg = ConformerCTCConfig(
        vocab_size=5, d_model=16, num_heads=2, ffn_dim=32, num_layers=1, kernel_size=3, dropout=0.0
    )
    model = ConformerCTC(cfg).eval()
    w, n = torch.randn(1, 4000), torch.tensor([4000])
    assert torch.equal(model(w, n)[0], model(w, n)[0])


def _one_hot_path(path: list[int], vocab: int, sharp: float = 8.0) -> np.ndarray:
    logits = np.full((len(path), vocab), 0.0)
    logits[np.arange(len(path)), path] = sharp
    return logits - np.log(np.exp(logits).sum(axis=1, keepdims=True))


def test_greedy_merges_repeats_and_drops_blanks() -> None:
    lp = _one_hot_path([0, 3, 3, 0, 3, 4, 4, 0], vocab=6)
    assert greedy_ids(lp) == [3, 3, 4]


def test_beam_agrees_with_greedy_on_peaky_output() -> None:
    lp = _one_hot_path([0, 2, 2, 0, 5, 0, 3, 3], vocab=6)
    best, _ = prefix_beam_search(lp, beam=4)[0]
    assert best == greedy_ids(lp) == [2, 5, 3]


def test_beam_sums_paths_that_greedy_misses() -> None:
    # frame by frame "a" never wins, but the paths spelling "a" together outweigh blank-blank
    p = np.array([[0.4, 0.3, 0.3], [0.4, 0.3, 0.3]])  # blank, a, b
    lp = np.log(p)
    assert greedy_ids(lp) == []
    best, _ = prefix_beam_search(lp, beam=4)[0]
    assert best in ([1], [2])


def test_hotword_bias_tips_an_ambiguous_character() -> None:
    tok = CharTokenizer(list("星海网络心"))
    ids = tok.encode("星海网络")
    lp = np.log(np.full((6, len(tok)), 1e-4))
    path = [ids[0], ids[1], 0, ids[2], ids[3], 0]
    lp[np.arange(6), path] = np.log(0.9)
    x = tok.index["心"]
    lp[0, ids[0]], lp[0, x] = np.log(0.45), np.log(0.5)  # 心 narrowly beats 星 on the first frame
    plain = tok.decode(prefix_beam_search(lp, beam=6)[0][0])
    biased = tok.decode(
        prefix_beam_search(lp, beam=6, hotwords=hotwords_from_text(["星海网络"], tok.encode))[0][0]
    )
    assert plain == "心海网络" and biased == "星海网络"


def test_hotword_bonus_counts_a_finished_word_once() -> None:
    hw = Hotwords(((5, 6),), bonus=1.0)
    assert hw.progress((1, 5)) == 1
    assert hw.progress((1, 5, 6)) == 0
