"""Reading training checkpoints: the one place that calls ``torch.load``.

Lightning checkpoints hold tensors, numbers, strings and plain containers, which ``weights_only=True``
loads without running any pickled code, so a checkpoint from elsewhere cannot execute anything here.
Older checkpoints may hold other objects (a dataclass in the hyper-parameters, say); those are read with
``weights_only=False`` only after the safe load refused them, and the fallback is logged.
"""

from __future__ import annotations

import logging
import os
import pickle
from pathlib import Path
from typing import Any

import torch

log = logging.getLogger(__name__)


class CheckpointError(ValueError):
    """A file that is not a readable checkpoint (the message names it and why)."""


def read_checkpoint(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The checkpoint's dict on the CPU, safely where it can be."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: no such checkpoint file")
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError:
        log.debug("%s: not loadable with weights_only=True; loading it in full", path)
        try:
            ckpt = torch.load(path, map_location="cpu", weights_only=False)
        except Exception as exc:
            raise CheckpointError(f"{path}: not a checkpoint ({exc})") from None
    except (RuntimeError, EOFError, OSError) as exc:
        raise CheckpointError(f"{path}: not a checkpoint ({exc})") from None
    if not isinstance(ckpt, dict):
        raise CheckpointError(f"{path}: not a checkpoint (holds a {type(ckpt).__name__}, not a dict)")
    return ckpt


def hyper_parameters(path: str | os.PathLike[str]) -> dict[str, Any]:
    return read_checkpoint(path).get("hyper_parameters", {})
