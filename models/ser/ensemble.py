"""Several SER models trained apart, judged together: the mean of their log-probabilities.

Runs of one recipe that differ only in their seed land on held-out voices up to 0.015 UA apart, and
which one is best on dev says little about which is best on test (dev and test are different voices).
They err on different turns, though, so the mean of their log-probabilities (a normalised geometric
mean of their probabilities) beats each of them: the variance of one run is what it removes. Each member
keeps its own stats normalisation and pair scales; all take the same inputs, so the ensemble exports as
one ONNX graph with the inputs of one member and the runtime feeds it like any SER model.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn


@dataclass
class SerEnsembleConfig:
    #: each member's model config, with its ``type`` (as ``build_ser_model`` takes it)
    members: list[dict[str, Any]] = field(default_factory=list)

    @property
    def context_rounds(self) -> int:
        """Peer hops the runtime must feed: a window that suffices for the member with most rounds
        gives every member the same result as the whole speaker."""
        return max((int(m.get("context_rounds", 0)) for m in self.members), default=0)

    def to_dict(self) -> dict[str, Any]:
        return {"members": self.members, "context_rounds": self.context_rounds}


class SerEnsemble(nn.Module):
    """The members' inputs -> (batch, n_classes) mean log-probabilities, usable as logits."""

    def __init__(self, cfg: SerEnsembleConfig, load_weights: bool = True):
        super().__init__()
        from callqa.models.registry import build_ser_model, ser_input_names

        if len(cfg.members) < 2:
            raise ValueError(f"an ensemble needs at least two members, not {len(cfg.members)}")
        self.members = nn.ModuleList(build_ser_model(m, load_weights) for m in cfg.members)
        names = {tuple(ser_input_names(m)) for m in self.members}
        if len(names) > 1:
            raise ValueError(f"ensemble members take different inputs: {sorted(names)}")
        self.cfg = cfg
        self.input_kind = getattr(self.members[0], "input_kind", "features")

    def forward(self, *inputs: torch.Tensor) -> torch.Tensor:
        return torch.stack([m(*inputs).log_softmax(-1) for m in self.members]).mean(0)
