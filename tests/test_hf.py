"""Utterance manifests round-trip through a Hugging Face Dataset with an Audio column."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from datasets import Audio

from callqa.data.constants import SAMPLE_RATE
from callqa.data.hf import from_hf_dataset, to_hf_dataset
from callqa.data.schema import Utterance, read_utterances
from callqa.data.segments import load_utterance


def test_manifest_to_dataset_and_back(
    tmp_path: Path, tiny_corpus: Path, tiny_utterances: list[Utterance]
) -> None:
    utts = tiny_utterances[:6]
    ds = to_hf_dataset(utts, tiny_corpus)
    assert isinstance(ds.features["audio"], Audio)
    assert ds.features["audio"].sampling_rate == SAMPLE_RATE
    assert ds["text"] == [u.text for u in utts]

    back = from_hf_dataset(ds, tmp_path / "hf")
    assert back == read_utterances(tmp_path / "hf" / "utterances.jsonl")
    for orig, new in zip(utts, back, strict=True):
        assert (new.id, new.text, new.speaker, new.emotion, new.split) == (
            orig.id,
            orig.text,
            orig.speaker,
            orig.emotion,
            orig.split,
        )
        a, b = load_utterance(orig, tiny_corpus), load_utterance(new, tmp_path / "hf")
        assert len(a) == len(b)
        assert np.max(np.abs(a - b)) < 1e-3  # 16-bit storage


def test_dataset_decodes_audio(tiny_corpus: Path, tiny_utterances: list[Utterance]) -> None:
    ds = to_hf_dataset(tiny_utterances[:2], tiny_corpus)
    samples = ds[0]["audio"].get_all_samples()
    assert samples.sample_rate == SAMPLE_RATE
    assert samples.data.shape[-1] == round(tiny_utterances[0].duration * SAMPLE_RATE)


def test_dataset_from_arrays_at_other_rates(tmp_path: Path) -> None:
    from datasets import Dataset, Features, Value

    tone = (0.3 * np.sin(2 * np.pi * 440 * np.arange(16000) / 16000)).astype(np.float32)
    ds = Dataset.from_dict(
        {"id": ["x1"], "text": ["你好"], "audio": [{"array": tone, "sampling_rate": 16000}]},
        features=Features({"id": Value("string"), "text": Value("string"), "audio": Audio()}),
    )
    (u,) = from_hf_dataset(ds, tmp_path)
    assert u.text == "你好" and abs(u.duration - 1.0) < 1e-3
    assert len(load_utterance(u, tmp_path)) == SAMPLE_RATE
