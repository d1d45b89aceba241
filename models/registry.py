"""One registry from a config's ``type`` to the model class that builds it."""

from __future__ import annotations

from typing import Any

from torch import nn


def build_asr_model(config: dict[str, Any], vocab_size: int, load_weights: bool = True) -> nn.Module:
    """Build the ASR model a config names (``type``: conformer, the default, or hf_ctc)."""
    config = dict(config)
    kind = config.pop("type", "conformer")
    if kind == "conformer":
        from callqa.models.asr.conformer import ConformerCTC, ConformerCTCConfig

        return ConformerCTC(ConformerCTCConfig.from_dict({**config, "vocab_size": vocab_size}))
    if kind == "hf_ctc":
        from callqa.models.asr.hf_ctc import HFCTC, HFCTCConfig

        return HFCTC(HFCTCConfig(**{**config, "vocab_size": vocab_size}), load_weights=load_weights)
    raise ValueError(f"unknown ASR model type {kind!r}; known: conformer, hf_ctc")


def build_ser_model(config: dict[str, Any], load_weights: bool = True) -> nn.Module:
    """Build the SER model a config names (``type``: encoder, the default from-scratch model, hf, or
    ensemble, several of those judged together)."""
    config = dict(config)
    kind = config.pop("type", "encoder")
    if kind == "encoder":
        from callqa.models.ser.encoder import SerEncoder, SerEncoderConfig

        return SerEncoder(SerEncoderConfig(**config))
    if kind == "hf":
        from callqa.models.ser.hf_head import HFSer, HFSerConfig

        return HFSer(HFSerConfig(**config), load_weights=load_weights)
    if kind == "ensemble":
        from callqa.models.ser.ensemble import SerEnsemble, SerEnsembleConfig

        return SerEnsemble(SerEnsembleConfig(members=config["members"]), load_weights=load_weights)
    raise ValueError(f"unknown SER model type {kind!r}; known: encoder, hf, ensemble")


def ser_input_names(model: nn.Module) -> list[str]:
    """The inputs a SER model's forward takes, in order, by the names the training batch and the ONNX
    graph both use: features (or waves, for an SSL head), then the call context for a model with one."""
    if getattr(model, "input_kind", "features") == "wave":
        own = ["wave", "wave_lengths", "stats"]
    else:
        own = ["frames", "lengths", "stats"]
    if getattr(model.cfg, "context_rounds", 0) == 0:
        return own
    from callqa.models.ser.features import CONTEXT_INPUTS

    return own + list(CONTEXT_INPUTS)


def build_qa_model(config: dict[str, Any]) -> nn.Module:
    """Build the neural QA model a config names (``type``: turns, the transformer over turns, or
    ensemble, several of those judged together)."""
    config = dict(config)
    kind = config.pop("type", "turns")
    if kind == "turns":
        from callqa.models.qa.turns import TurnQa, TurnQaConfig

        return TurnQa(TurnQaConfig(**config))
    if kind == "ensemble":
        from callqa.models.qa.turns import TurnQaEnsemble

        return TurnQaEnsemble(config["members"])
    raise ValueError(f"unknown QA model type {kind!r}; known: turns, ensemble")
