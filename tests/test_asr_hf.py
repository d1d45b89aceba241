"""Fine-tuning wrappers for pretrained Hugging Face encoders, built from tiny random local checkpoints."""

from __future__ import annotations

from collections.abc import Callable
from importlib import resources
from pathlib import Path

import pytest
import torch
from transformers import HubertConfig, HubertModel, Wav2Vec2Config, Wav2Vec2Model

from callqa.data.schema import Utterance
from callqa.export.asr_report import export_asr
from callqa.models.tokenizer import CharTokenizer
from callqa.training.asr_cli import train_asr
from callqa.training.asr_data import AsrDataset, Item, collate
from callqa.training.asr_module import AsrModule

TINY_ENCODER = {
    "hidden_size": 32,
    "num_hidden_layers": 2,
    "num_attention_heads": 2,
    "intermediate_size": 64,
    # real wav2vec2 downsamples 320x; a tiny stride would turn a 9 s parity clip into 14k attention frames
    "conv_dim": (16, 16, 16, 16),
    "conv_kernel": (10, 3, 3, 3),
    "conv_stride": (5, 4, 4, 4),
    "num_conv_pos_embeddings": 16,
    "num_conv_pos_embedding_groups": 2,
    "feat_extract_norm": "layer",
    "do_stable_layer_norm": True,
}


@pytest.fixture(params=["wav2vec2", "hubert"])
def local_encoder(request: pytest.FixtureRequest, tmp_path: Path) -> Path:
    torch.manual_seed(0)
    if request.param == "wav2vec2":
        model = Wav2Vec2Model(Wav2Vec2Config(**TINY_ENCODER))
    else:
        model = HubertModel(HubertConfig(**TINY_ENCODER))
    path = tmp_path / request.param
    model.save_pretrained(path)
    return path


def test_trains_a_step_and_exports(
    local_encoder: Path, tmp_path: Path, tiny_corpus: Path, tiny_utterances: list[Utterance]
) -> None:
    chosen = [u for u in tiny_utterances if u.duration < 3.0][:3]
    tok = CharTokenizer.build(u.text for u in tiny_utterances)
    module = AsrModule({"type": "hf_ctc", "path": str(local_encoder), "dropout": 0.0}, tok.to_json(), lr=1e-3)
    assert not any(p.requires_grad for p in module.model.encoder.feature_extractor.parameters())
    batch = collate(
        [AsrDataset([Item(u, tiny_corpus) for u in chosen], tok, train=False)[i] for i in range(3)]
    )
    opt = torch.optim.AdamW([p for p in module.parameters() if p.requires_grad], lr=1e-3)
    before = module.model.head.weight.detach().clone()
    loss, logp, lengths = module._loss(batch)
    loss.backward()
    opt.step()
    assert torch.isfinite(loss) and not torch.equal(before, module.model.head.weight)
    assert logp.shape[-1] == len(tok) and int(lengths.max()) == logp.shape[1]

    ckpt = tmp_path / "hf.ckpt"
    torch.save({"hyper_parameters": dict(module.hparams), "state_dict": module.state_dict()}, ckpt)
    local_encoder.rename(tmp_path / "moved")  # the checkpoint must rebuild without the original folder
    report = export_asr(ckpt, tmp_path / "onnx", int8=False)
    assert report["parity"]["passed"], report["parity"]


def test_finetune_config_runs_one_step(local_encoder: Path, one_step_args: Callable[..., list[str]]) -> None:
    config = Path(str(resources.files("callqa.configs") / "asr" / "hf-ctc-finetune.yaml"))
    cli = train_asr(one_step_args(config, f"--model.model.path={local_encoder}"))
    assert cli.trainer.global_step == 1
    assert cli.model.hparams["model"]["hf_config"]["model_type"] == local_encoder.name
