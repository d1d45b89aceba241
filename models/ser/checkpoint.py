"""Reading a SER training checkpoint: one check, shared by fine-tuning and export."""

from __future__ import annotations

import os
from typing import Any

from callqa.models.checkpoint import CheckpointError, read_checkpoint
from callqa.models.ser.features import FeatureConfig


def read_ser_checkpoint(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The checkpoint's dict, refused unless it holds a SER model config and features of this version."""
    ckpt = read_checkpoint(path)
    hp = ckpt.get("hyper_parameters", {})
    if "model" not in hp or "features" not in hp:
        raise CheckpointError(f"{path}: not a SER checkpoint (no model/features hyper-parameters)")
    FeatureConfig.from_dict(hp["features"], str(path))
    return ckpt
