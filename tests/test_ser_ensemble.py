"""SER ensembles: separate runs packaged as one model that exports, serves and fine-tunes like any."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from callqa.export.ser import export_ser
from callqa.models.checkpoint import read_checkpoint
from callqa.models.registry import build_ser_model, ser_input_names
from callqa.models.ser.features import FeatureExtractor, speaker_inputs
from callqa.serving.ser_onnx import load_ser, segment_feed
from callqa.training.package import package_checkpoint
from tests.test_ser import CONTEXT_MODEL, CONTEXT_NAMES, _checkpoint, _eager, voice

ONE_ROUND = {**CONTEXT_MODEL, "context_rounds": 1, "channels": 24}


def _members(tmp_path: Path) -> list[Path]:
    paths = []
    for k, model in enumerate((CONTEXT_MODEL, ONE_ROUND)):
        (tmp_path / f"m{k}").mkdir()
        paths.append(_checkpoint(tmp_path / f"m{k}", model))
    return paths


def test_ensemble_judges_with_the_mean_of_its_members_log_probabilities() -> None:
    torch.manual_seed(0)
    ens = build_ser_model({"type": "ensemble", "members": [CONTEXT_MODEL, ONE_ROUND]}).eval()
    assert ser_input_names(ens) == CONTEXT_NAMES and ens.cfg.context_rounds == 2
    xs = speaker_inputs([voice(110.0 + 9 * k, 0.5, seed=k) for k in range(6)], FeatureExtractor())
    feed = segment_feed(xs, None, np.arange(6), CONTEXT_NAMES, rounds=2)
    members = [torch.from_numpy(_eager(m, feed)).log_softmax(-1).numpy() for m in ens.members]
    np.testing.assert_allclose(_eager(ens, feed), np.mean(members, axis=0), atol=1e-5)
    assert not np.allclose(members[0], members[1], atol=1e-3)  # two different judges
    with pytest.raises(ValueError, match="different inputs"):
        build_ser_model({"type": "ensemble", "members": [CONTEXT_MODEL, {"type": "encoder", "channels": 16}]})
    with pytest.raises(ValueError, match="at least two"):
        build_ser_model({"type": "ensemble", "members": [CONTEXT_MODEL]})


def test_packaged_ensemble_exports_serves_and_fine_tunes(tmp_path: Path) -> None:
    from callqa.training.ser_module import SerModule

    paths = _members(tmp_path)
    out = package_checkpoint(paths, tmp_path / "ens.ckpt", ensemble=True)
    ckpt = read_checkpoint(out)
    assert ckpt["hyper_parameters"]["model"]["type"] == "ensemble"
    assert [m["file"] for m in ckpt["provenance"]["members"]] == ["ser.ckpt", "ser.ckpt"]
    for k, p in enumerate(paths):  # every member whole, in fp16
        own = read_checkpoint(p)["state_dict"]
        for name, v in own.items():
            packed = ckpt["state_dict"][name.replace("model.", f"model.members.{k}.", 1)]
            torch.testing.assert_close(packed.float(), v, atol=1e-3, rtol=1e-3)

    report = export_ser(out, tmp_path / "export", int8=False)
    assert report["parity"]["passed"], report["parity"]
    ser = load_ser(tmp_path / "export" / "ser.onnx", threads=1)
    assert ser.context_rounds == 2 and "peer_pairs" in ser.inputs
    probs = ser.classify([voice(120.0 + 5 * k, 0.5, seed=k) for k in range(12)])
    assert probs.shape == (12, 5) and np.allclose(probs.sum(1), 1, atol=1e-5)

    tuned = SerModule({"type": "encoder"}, init_from=str(out))  # the base decides: an ensemble
    assert len(tuned.model.members) == 2 and tuned.model.members[1].cfg.channels == 24
    assert tuned.hparams["model"]["type"] == "ensemble"
    for k, v in tuned.state_dict().items():
        if k.startswith("model."):
            torch.testing.assert_close(v, ckpt["state_dict"][k].float())


def test_package_refuses_what_cannot_join_an_ensemble(tmp_path: Path) -> None:
    paths = _members(tmp_path)
    ens = package_checkpoint(paths, tmp_path / "ens.ckpt", ensemble=True)
    with pytest.raises(ValueError, match="already an ensemble"):
        package_checkpoint([paths[0], ens], tmp_path / "nested.ckpt", ensemble=True)
    asr = tmp_path / "asr.ckpt"
    torch.save({"hyper_parameters": {"model": {}}, "state_dict": {}}, asr)
    with pytest.raises(ValueError, match="not a SER checkpoint"):
        package_checkpoint([paths[0], asr], tmp_path / "bad.ckpt", ensemble=True)


def test_members_without_normalisation_get_the_train_sets_and_keep_it_in_the_checkpoint() -> None:
    from callqa.models.ser.features import PAIR_DIM, FeatureConfig
    from callqa.training.ser_module import SerModule

    dim = FeatureConfig().stats_dim
    norm, scale = [[1.0] * dim, [2.0] * dim], [3.0] * PAIR_DIM
    members = [CONTEXT_MODEL, {**ONE_ROUND, "stats_norm": [[0.5] * dim, [4.0] * dim]}]
    module = SerModule({"type": "ensemble", "members": members}, stats_norm=norm, pair_scale=scale)
    fresh, packaged = module.model.members
    assert fresh.stats_std.tolist() == norm[1] and fresh.pair_scale.tolist() == scale
    assert packaged.stats_std.tolist() == [4.0] * dim  # a member's own normalisation is kept
    saved = module.hparams["model"]["members"]
    assert saved[0]["stats_norm"] == norm and saved[0]["pair_scale"] == scale
    assert saved[1]["stats_norm"][1] == [4.0] * dim and saved[1]["channels"] == 24
