"""Packaging a trained checkpoint as a shippable base model: weights only, fp16, with provenance.

A Lightning checkpoint carries optimiser state (twice the weights again for AdamW) and fp32 weights;
the base model in the repo needs neither. Loading converts fp16 back to fp32 (``load_state_dict``
copies into the existing parameters), so training and export code read it like any checkpoint.
"""

from __future__ import annotations

import io
import os
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import torch

from callqa.data.files import atomic_path


def package_checkpoint(
    checkpoint: str | os.PathLike[str], out: str | os.PathLike[str], provenance: dict[str, Any] | None = None
) -> Path:
    """Write ``out`` with the checkpoint's hyper-parameters and fp16 weights (and ``provenance``)."""
    ckpt = torch.load(checkpoint, map_location="cpu", weights_only=False)
    state = {k: (v.half() if v.is_floating_point() else v) for k, v in ckpt["state_dict"].items()}
    packed = {
        "hyper_parameters": ckpt["hyper_parameters"],
        "state_dict": state,
        "provenance": {
            "source": Path(checkpoint).name,
            "global_step": ckpt.get("global_step"),
            "epoch": ckpt.get("epoch"),
            "packaged_at": datetime.now(UTC).isoformat(timespec="seconds"),
            **(provenance or {}),
        },
    }
    buf = io.BytesIO()
    torch.save(packed, buf)
    out = Path(out)
    with atomic_path(out) as tmp:
        tmp.write_bytes(buf.getvalue())
    return out
