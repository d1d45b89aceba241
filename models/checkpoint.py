"""Reading training checkpoints: the one place that calls ``torch.load``.

Lightning checkpoints hold tensors, numbers, strings and plain containers, which ``weights_only=True``
loads without running any pickled code, so a checkpoint from elsewhere cannot execute anything here. The
project's own checkpoints (training, packaged bases) all load this way; a file that does not is refused
rather than unpickled in full, since that would run whatever code it carries.
"""

from __future__ import annotations

import os
import pickle
from pathlib import Path
from typing import Any

import torch


class CheckpointError(ValueError):
    """A file that is not a readable checkpoint (the message names it and why)."""


def read_checkpoint(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The checkpoint's dict on the CPU, loaded with ``weights_only=True``."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: no such checkpoint file")
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError:
        raise CheckpointError(
            f"{path}: not a checkpoint that loads safely (torch.load with weights_only=True refused it)"
        ) from None
    except (RuntimeError, EOFError, OSError, ValueError) as exc:
        raise CheckpointError(f"{path}: not a checkpoint ({exc})") from None
    if not isinstance(ckpt, dict):
        raise CheckpointError(f"{path}: not a checkpoint (holds a {type(ckpt).__name__}, not a dict)")
    return ckpt


def hyper_parameters(path: str | os.PathLike[str]) -> dict[str, Any]:
    return read_checkpoint(path).get("hyper_parameters", {})


def model_state(ckpt: dict[str, Any]) -> dict[str, torch.Tensor]:
    """The bare model's weights in a LightningModule checkpoint (``model.`` prefix dropped). A packaged
    base may hold int8 weights with per-row scales; they come back as float here, and fp16 ones are
    cast by ``load_state_dict`` as it copies into the fp32 parameters."""
    scales = ckpt.get("int8_scales", {})
    return {
        k.removeprefix("model."): v.float() * scales[k] if k in scales else v
        for k, v in ckpt["state_dict"].items()
        if k.startswith("model.")
    }
