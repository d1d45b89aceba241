"""ASR training from random weights: a tiny Conformer-CTC overfits a handful of utterances."""

from __future__ import annotations

from pathlib import Path

import lightning as L
import numpy as np
import pytest
import torch

from callqa.data.schema import Utterance
from callqa.evaluation.metrics import cer
from callqa.models.asr.decoding import greedy_ids
from callqa.models.tokenizer import CharTokenizer, normalize
from callqa.training.asr_data import AsrDataset, Item, collate
from callqa.training.asr_module import AsrModule
from callqa.training.sampler import DurationBatchSampler, share

TINY = {
    "d_model": 96,
    "num_heads": 4,
    "ffn_dim": 192,
    "num_layers": 2,
    "kernel_size": 15,
    "dropout": 0.0,
    "specaugment": {"freq_masks": 0, "time_masks": 0},
}


def test_duration_batches_cover_everything_once() -> None:
    durations = [1.0, 5.0, 2.0, 8.0, 3.0, 1.5, 7.0]
    s = DurationBatchSampler(durations, max_seconds=10.0, shuffle=True, seed=1)
    batches = list(s)
    assert sorted(i for b in batches for i in b) == list(range(len(durations)))
    assert all(max(durations[i] for i in b) * len(b) <= 10.0 or len(b) == 1 for b in batches)
    s.set_epoch(1)
    assert sorted(map(tuple, s)) == sorted(map(tuple, batches))


@pytest.mark.parametrize("world", [2, 3, 4])
def test_ranks_share_an_epoch_once_and_in_step(world: int) -> None:
    rng = np.random.default_rng(world)
    durations = list(rng.uniform(0.5, 9.0, size=101))
    s = DurationBatchSampler(durations, max_seconds=20.0, shuffle=True, seed=3)
    per_rank = [share(list(s.batches), r, world) for r in range(world)]
    assert len({len(b) for b in per_rank}) == 1  # every rank takes the same number of steps
    seen = sorted(i for batches in per_rank for b in batches for i in b)
    assert seen == list(range(len(durations)))  # every utterance once, none dropped
    assert all(batches and all(batches) for batches in per_rank)


@pytest.mark.slow  # 300 optimiser steps; the default suite trains single steps (test_asr_cli)
def test_overfits_a_handful_of_utterances(tiny_corpus: Path, tiny_utterances: list[Utterance]) -> None:
    L.seed_everything(0)
    chosen = sorted((u for u in tiny_utterances if 1.0 < u.duration < 3.0), key=lambda u: u.id)[:4]
    items = [Item(u, tiny_corpus) for u in chosen]
    tok = CharTokenizer.build(u.text for u in chosen)
    module = AsrModule(TINY, tok.to_json(), lr=3e-3, warmup_steps=20, total_steps=400)
    ds = AsrDataset(items, tok, train=False)
    batch = collate([ds[i] for i in range(len(ds))])
    opt = torch.optim.AdamW(module.parameters(), lr=3e-3)
    module.train()
    for _ in range(300):
        opt.zero_grad()
        loss, _, _ = module._loss(batch)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(module.parameters(), 5.0)
        opt.step()
    module.eval()
    with torch.no_grad():
        logp, lengths = module(batch["wave"], batch["lengths"])
    hyps = [tok.decode(greedy_ids(logp[k, : int(lengths[k])].numpy())) for k in range(len(items))]
    refs = [normalize(u.text) for u in chosen]
    assert cer(refs, hyps) < 0.10, list(zip(refs, hyps, strict=True))
    assert np.isfinite(float(loss.detach()))


def test_finetune_starts_from_the_base_and_keeps_its_vocabulary(
    tmp_path: Path, tiny_corpus: Path, tiny_utterances: list[Utterance]
) -> None:
    from callqa.training.asr_data import AsrDataModule

    tok = CharTokenizer.build(
        u.text for u in tiny_utterances[:30]
    )  # a base that has not seen every character
    base = AsrModule(TINY, tok.to_json())
    path = tmp_path / "base.ckpt"
    torch.save({"hyper_parameters": dict(base.hparams), "state_dict": base.state_dict()}, path)

    data = AsrDataModule([str(tiny_corpus)], tokenizer_from=str(path), num_workers=0)
    assert data.vocabulary == tok.to_json()
    tuned = AsrModule(TINY, data.vocabulary, init_from=str(path))
    for (k, a), b in zip(base.model.state_dict().items(), tuned.model.state_dict().values(), strict=True):
        assert torch.equal(a, b), k
    other = CharTokenizer.build(u.text for u in tiny_utterances)
    with pytest.raises(ValueError, match="vocabulary differs"):
        AsrModule(TINY, other.to_json(), init_from=str(path))


def test_packaged_base_is_smaller_and_loads(tmp_path: Path, tiny_utterances: list[Utterance]) -> None:
    import lightning.pytorch as pl

    from callqa.models.asr.checkpoint import load_asr_checkpoint
    from callqa.training.package import package_checkpoint

    tok = CharTokenizer.build(u.text for u in tiny_utterances)
    module = AsrModule(TINY, tok.to_json())
    opt = torch.optim.AdamW(module.parameters())
    full = tmp_path / "full.ckpt"
    torch.save(
        {
            "hyper_parameters": dict(module.hparams),
            "state_dict": module.state_dict(),
            "optimizer_states": [opt.state_dict()],
            "global_step": 7,
            "pytorch-lightning_version": pl.__version__,
        },
        full,
    )
    small = package_checkpoint(full, tmp_path / "base.ckpt", {"cer": 0.1})
    assert small.stat().st_size < 0.7 * full.stat().st_size
    model, tok2, _ = load_asr_checkpoint(small)
    assert tok2.vocab == tok.vocab
    assert torch.load(small, weights_only=True)["provenance"]["global_step"] == 7
    wave, lengths = torch.randn(1, 8000) * 0.1, torch.tensor([8000])
    with torch.no_grad():
        ref, _ = module.eval().model(wave, lengths)
        out, _ = model(wave, lengths)
    assert torch.allclose(ref, out, atol=5e-2)
    assert AsrModule(TINY, tok.to_json(), init_from=str(small)) is not None


def test_package_names_the_base_a_run_started_from(tmp_path: Path, tiny_utterances: list[Utterance]) -> None:
    from callqa.training.package import package_checkpoint

    tok = CharTokenizer.build(u.text for u in tiny_utterances)
    first = tmp_path / "first.ckpt"
    module = AsrModule(TINY, tok.to_json())
    torch.save({"hyper_parameters": dict(module.hparams), "state_dict": module.state_dict()}, first)
    stage1 = package_checkpoint(first, tmp_path / "stage1.ckpt", {"recipe": "stage-one.yaml"})
    assert torch.load(stage1, weights_only=True)["provenance"]["init_from"] is None

    second = tmp_path / "second.ckpt"
    module = AsrModule(TINY, tok.to_json(), init_from=str(stage1))
    torch.save({"hyper_parameters": dict(module.hparams), "state_dict": module.state_dict()}, second)
    stage2 = package_checkpoint(second, tmp_path / "stage2.ckpt")
    origin = torch.load(stage2, weights_only=True)["provenance"]["init_from"]
    assert origin["path"] == str(stage1)
    assert origin["provenance"]["recipe"] == "stage-one.yaml"


def test_package_averages_checkpoints_of_one_run(tmp_path: Path, tiny_utterances: list[Utterance]) -> None:
    from callqa.training.package import package_checkpoint

    tok = CharTokenizer.build(u.text for u in tiny_utterances)
    paths, modules = [], []
    for step in (1, 2):
        torch.manual_seed(step)
        module = AsrModule(TINY, tok.to_json())
        paths.append(tmp_path / f"step{step}.ckpt")
        torch.save(
            {
                "hyper_parameters": dict(module.hparams),
                "state_dict": module.state_dict(),
                "global_step": step,
            },
            paths[-1],
        )
        modules.append(module)
    packed = torch.load(package_checkpoint(paths, tmp_path / "avg.ckpt"), weights_only=True)
    name = next(k for k, v in packed["state_dict"].items() if v.is_floating_point() and v.numel() > 100)
    expected = (modules[0].state_dict()[name] + modules[1].state_dict()[name]) / 2
    assert torch.allclose(packed["state_dict"][name].float(), expected, atol=1e-3)
    assert not torch.allclose(expected, modules[1].state_dict()[name], atol=1e-3)
    assert [a["global_step"] for a in packed["provenance"]["averaged"]] == [1, 2]

    other = AsrModule({**TINY, "num_layers": 1}, tok.to_json())
    torch.save(
        {"hyper_parameters": dict(other.hparams), "state_dict": other.state_dict()}, tmp_path / "other.ckpt"
    )
    with pytest.raises(ValueError, match="hyper-parameters differ"):
        package_checkpoint([paths[0], tmp_path / "other.ckpt"], tmp_path / "bad.ckpt")


def test_package_moves_a_fine_tune_back_towards_its_base(
    tmp_path: Path, tiny_utterances: list[Utterance]
) -> None:
    from callqa.training.package import package_checkpoint

    tok = CharTokenizer.build(u.text for u in tiny_utterances)
    states = {}
    for name in ("base", "tuned"):
        torch.manual_seed(len(name))
        module = AsrModule(TINY, tok.to_json())
        torch.save(
            {"hyper_parameters": dict(module.hparams), "state_dict": module.state_dict()}, tmp_path / name
        )
        states[name] = module.state_dict()
    base, tuned = tmp_path / "base", tmp_path / "tuned"
    packed = torch.load(
        package_checkpoint(tuned, tmp_path / "wise.ckpt", base=base, base_weight=0.25), weights_only=True
    )
    name = next(k for k, v in packed["state_dict"].items() if v.is_floating_point() and v.numel() > 100)
    expected = 0.75 * states["tuned"][name] + 0.25 * states["base"][name]
    assert torch.allclose(packed["state_dict"][name].float(), expected, atol=1e-3)
    assert not torch.allclose(expected, states["tuned"][name], atol=1e-2)
    assert packed["provenance"]["interpolated"] == {"base": str(base), "base_weight": 0.25}
    same = torch.load(
        package_checkpoint(tuned, tmp_path / "same.ckpt", base=base, base_weight=0.0), weights_only=True
    )
    assert torch.allclose(same["state_dict"][name].float(), states["tuned"][name], atol=1e-3)

    other = AsrModule(TINY, CharTokenizer.build(u.text for u in tiny_utterances[:5]).to_json())
    torch.save(
        {"hyper_parameters": dict(other.hparams), "state_dict": other.state_dict()}, tmp_path / "other"
    )
    with pytest.raises(ValueError, match="other: its tokenizer differs"):
        package_checkpoint(tuned, tmp_path / "bad.ckpt", base=tmp_path / "other")
    with pytest.raises(ValueError, match=r"base_weight must be in \[0, 1\)"):
        package_checkpoint(tuned, tmp_path / "bad.ckpt", base=base, base_weight=1.0)
    assert not (tmp_path / "bad.ckpt").exists()


def test_quantize_rows_is_within_half_a_step_of_each_row() -> None:
    from callqa.training.package import quantize_rows

    w = torch.randn(64, 32, 3) * torch.logspace(-3, 1, 64)[:, None, None]  # rows of very different size
    q, scale = quantize_rows(w)
    assert q.dtype == torch.int8 and scale.shape == (64, 1, 1)
    err = (q.float() * scale - w).abs().amax(dim=(1, 2))
    assert torch.all(err <= scale.flatten() / 2 + 1e-9)
    assert torch.all(q.abs().amax(dim=(1, 2)) == 127)  # every row uses its full range


def test_int8_package_is_smaller_than_fp16_and_loads_close(
    tmp_path: Path, tiny_utterances: list[Utterance]
) -> None:
    from callqa.models.asr.checkpoint import load_asr_checkpoint
    from callqa.training.package import package_checkpoint

    tok = CharTokenizer.build(u.text for u in tiny_utterances)
    module = AsrModule(TINY, tok.to_json())
    full = tmp_path / "full.ckpt"
    torch.save({"hyper_parameters": dict(module.hparams), "state_dict": module.state_dict()}, full)
    fp16 = package_checkpoint(full, tmp_path / "fp16.ckpt")
    int8 = package_checkpoint(full, tmp_path / "int8.ckpt", weights="int8")
    assert int8.stat().st_size < 0.7 * fp16.stat().st_size
    model, _, _ = load_asr_checkpoint(int8)
    wave, lengths = torch.randn(2, 8000) * 0.1, torch.tensor([8000, 6000])
    with torch.no_grad():
        ref, _ = module.eval().model(wave, lengths)
        out, _ = model(wave, lengths)
    assert (ref - out).abs().max() < 5e-2
    assert AsrModule(TINY, tok.to_json(), init_from=str(int8)) is not None
    with pytest.raises(ValueError, match="fp16 or int8"):
        package_checkpoint(full, tmp_path / "x.ckpt", weights="int4")
