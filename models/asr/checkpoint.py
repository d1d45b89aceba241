"""Loading an ASR model from a training checkpoint, which carries its own config and vocabulary."""

from __future__ import annotations

import os
from typing import Any

from torch import nn

from callqa.models.checkpoint import CheckpointError, hyper_parameters, model_state, read_checkpoint
from callqa.models.registry import build_asr_model
from callqa.models.tokenizer import CharTokenizer


def load_asr_checkpoint(path: str | os.PathLike[str]) -> tuple[nn.Module, CharTokenizer, dict[str, Any]]:
    """(model in eval mode, tokenizer, hyper-parameters) from a Lightning checkpoint of AsrModule."""
    ckpt = read_checkpoint(path)
    hp = ckpt.get("hyper_parameters", {})
    if "tokenizer" not in hp or "model" not in hp:
        raise CheckpointError(
            f"{path}: not an ASR checkpoint (no model config or tokenizer in its hyper-parameters)"
        )
    tokenizer = CharTokenizer.from_json(hp["tokenizer"])
    model = build_asr_model(hp["model"], len(tokenizer), load_weights=False)
    model.load_state_dict(model_state(ckpt))
    return model.eval(), tokenizer, hp


def read_tokenizer(path: str | os.PathLike[str]) -> CharTokenizer:
    """The vocabulary a checkpoint was trained with (what fine-tuning must keep using)."""
    hp = hyper_parameters(path)
    if "tokenizer" not in hp:
        raise CheckpointError(f"{path}: no tokenizer in this checkpoint")
    return CharTokenizer.from_json(hp["tokenizer"])
