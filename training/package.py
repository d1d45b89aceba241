"""Packaging trained checkpoints as a shippable base model: weights only, fp16 or int8, with provenance.

A Lightning checkpoint carries optimiser state (twice the weights again for AdamW) and fp32 weights;
the base model in the repo needs neither. Loading converts fp16 back to fp32 (``load_state_dict``
copies into the existing parameters), so training and export code read it like any checkpoint.

Several checkpoints of one run can be averaged first (as WeNet and icefall do): while the learning
rate is still high, single checkpoints sit at noisy points around a minimum and their mean sits
closer to it, which lowers CER for free.

A fine-tuned model can also be packaged partway back towards the base it started from
(``base``/``base_weight``, WiSE-FT: Wortsman et al., 2022). Fine-tuning a broad base on a small corpus
buys that corpus's voices and wording at the price of what the base knew; a fine-tune and its base lie
in one basin of the loss, so their weighted mean keeps most of both. On the quickstart's corpus, half
way lowered CER on a richer corpus's dev split below both ends, and on the small corpus's test split
below the base (bench/RESULTS.md, "Fine-tuning half way back to the base").

With ``weights="int8"`` each weight matrix is stored as int8 with one fp32 scale per output channel
(biases and norms stay fp16): half the size again, so a 4M-parameter base fits in about 4 MB. The
rounding error (at most half a step of 1/127 of a row's largest weight) is far below what the first
fine-tuning steps move, and ``callqa.models.asr.checkpoint.model_state`` restores float weights.

The package also carries a summary of the training run from MLflow (data fingerprint, final metrics,
the dev CER curve), so the committed base says what made it even where that MLflow store is gone, and
the provenance of the checkpoint it was initialised from, when it was.
"""

from __future__ import annotations

import io
import logging
import os
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import mlflow
import torch
from mlflow.exceptions import MlflowException

from callqa.data.files import atomic_path, write_json
from callqa.models.checkpoint import model_state, read_checkpoint

log = logging.getLogger(__name__)


def average_state_dicts(
    states: Sequence[dict[str, torch.Tensor]], weights: Sequence[float] | None = None
) -> dict[str, torch.Tensor]:
    """Mean of floating-point tensors over ``states`` (weighted by ``weights``, which sum to one; equal
    without), in the last one's dtype; other tensors (counters) come from the last one."""
    if not states:
        raise ValueError("no checkpoints to average")
    w = None if weights is None else torch.tensor(weights, dtype=torch.float64)
    keys = states[0].keys()
    for i, s in enumerate(states[1:], 1):
        if s.keys() != keys:
            raise ValueError(f"checkpoint {i} has different parameters from checkpoint 0")
    out: dict[str, torch.Tensor] = {}
    for k in keys:
        tensors = [s[k] for s in states]
        if any(t.shape != tensors[0].shape for t in tensors):
            raise ValueError(f"{k}: shapes differ between checkpoints")
        if tensors[-1].is_floating_point():
            stacked = torch.stack([t.double() for t in tensors])
            mean = stacked.mean(0) if w is None else torch.tensordot(w, stacked, dims=1)
            out[k] = mean.to(tensors[-1].dtype)
        else:
            out[k] = tensors[-1]
    return out


def _toward_base(
    state: dict[str, torch.Tensor], hparams: dict[str, Any], base: Path, base_weight: float
) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """(``state`` interpolated towards ``base``, provenance of the step). Only the same architecture and
    vocabulary interpolate; anything else would average unrelated numbers into a broken model."""
    if not 0 <= base_weight < 1:
        raise ValueError(f"base_weight must be in [0, 1), not {base_weight}")
    ckpt = read_checkpoint(base)
    theirs = ckpt.get("hyper_parameters", {})
    for key in ("model", "tokenizer"):
        if theirs.get(key) != hparams.get(key):
            raise ValueError(
                f"{base}: its {key} differs from the checkpoint's; only a model's own base mixes in"
            )
    theirs_state = {f"model.{k}": v for k, v in model_state(ckpt).items()}
    mixed = average_state_dicts([theirs_state, state], weights=(base_weight, 1 - base_weight))
    return mixed, {"base": str(base), "base_weight": base_weight}


def _architecture(ckpt: dict[str, Any]) -> dict[str, Any]:
    """The hyper-parameters that shape the weights; the MLflow provenance may change on a resume."""
    return {k: v for k, v in ckpt["hyper_parameters"].items() if not k.startswith("mlflow_")}


def mlflow_summary(hparams: dict[str, Any], step: int | None = None) -> dict[str, Any] | None:
    """The run a checkpoint remembers, as its MLflow store has it; None when it has no run or the store
    does not know it (a checkpoint packaged on another machine). ``metrics`` are each metric's last value
    logged at or before ``step`` (the packaged checkpoint's), not the run's final ones: a best-dev
    checkpoint from epoch 4 of 12 must not show epoch 12's figures."""
    run_id, uri = hparams.get("mlflow_run_id"), hparams.get("mlflow_tracking_uri")
    if not run_id or not uri:
        return None
    client = mlflow.MlflowClient(uri)
    try:
        run = client.get_run(run_id)
    except MlflowException as e:
        log.warning("MLflow run %s not found in %s (%s); packaging without its summary", run_id, uri, e)
        return None
    params = run.data.params
    return {
        "run_id": run_id,
        "run_name": run.info.run_name,
        "resumed_from": run.data.tags.get("callqa.resumed_from"),
        "experiment_id": run.info.experiment_id,
        "data_fingerprint": params.get("data_fingerprint"),
        "parameters": int(params["parameters"]) if "parameters" in params else None,
        "metrics": _metrics_at(client, run_id, run.data.metrics, step),
        "metrics_step": step,
        "val_cer": [[m.step, m.value] for m in client.get_metric_history(run_id, "val/cer")],
    }


def _metrics_at(
    client: mlflow.MlflowClient, run_id: str, final: dict[str, float], step: int | None
) -> dict[str, float]:
    if step is None:
        return dict(sorted(final.items()))
    out = {}
    for key in sorted(final):
        upto = [m for m in client.get_metric_history(run_id, key) if m.step <= step]
        if upto:
            out[key] = max(upto, key=lambda m: (m.step, m.timestamp)).value
    return out


def lineage(hparams: dict[str, Any]) -> dict[str, Any] | None:
    """The base a run was initialised from and that base's own provenance, so that a model trained in
    stages (a base continued in a later session, a fine-tune of a base) names every stage that made it."""
    src = hparams.get("init_from")
    if not src:
        return None
    if not Path(src).exists():
        log.warning("init_from %s is gone; packaging without its provenance", src)
        return {"path": src}
    base = read_checkpoint(src)
    return {"path": src, "provenance": base.get("provenance")}


def quantize_rows(weight: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Symmetric int8 per output channel (dim 0): ``q * scale`` approximates ``weight``."""
    amax = weight.float().abs().amax(dim=tuple(range(1, weight.dim())), keepdim=True)
    scale = torch.where(amax > 0, amax / 127, torch.ones_like(amax))
    return torch.round(weight.float() / scale).clamp(-127, 127).to(torch.int8), scale


def _pack_weights(state: dict[str, torch.Tensor], weights: str) -> tuple[dict[str, torch.Tensor], dict]:
    """(state dict with fp16 or int8 weights, int8 scales by key)."""
    packed, scales = {}, {}
    for k, v in state.items():
        if weights == "int8" and v.is_floating_point() and v.dim() >= 2:
            packed[k], scales[k] = quantize_rows(v)
        else:
            packed[k] = v.half() if v.is_floating_point() else v
    return packed, scales


def _ensemble(
    paths: list[Path], ckpts: list[dict[str, Any]]
) -> tuple[dict[str, Any], dict[str, torch.Tensor]]:
    """(hyper-parameters, state dict) of one SER ensemble whose members are the checkpoints, each a
    separate run (or an already packaged base), kept whole rather than averaged."""
    features = ckpts[0].get("hyper_parameters", {}).get("features")
    for p, c in zip(paths, ckpts, strict=True):
        hp = c.get("hyper_parameters", {})
        if "features" not in hp or "model" not in hp:
            raise ValueError(
                f"{p}: not a SER checkpoint (no model/features); only SER models make an ensemble"
            )
        if hp["features"] != features:
            raise ValueError(f"{p}: made with other feature settings than {paths[0]}; members share features")
        if hp["model"].get("type") == "ensemble":
            raise ValueError(f"{p}: already an ensemble; give its members' checkpoints instead")
    state = {
        f"model.members.{i}.{k}": v.float() for i, c in enumerate(ckpts) for k, v in model_state(c).items()
    }
    members = [c["hyper_parameters"]["model"] for c in ckpts]
    # the members' runs are named in the provenance; the ensemble itself was never a run
    drop = ("init_from", "mlflow_run_id", "mlflow_tracking_uri")
    hparams = {k: v for k, v in ckpts[-1]["hyper_parameters"].items() if k not in drop}
    return {**hparams, "model": {"type": "ensemble", "members": members}}, state


def _run(paths: list[Path], ckpts: list[dict[str, Any]]) -> dict[str, Any]:
    """Provenance of averaged checkpoints (each with its folder and run, since two cycles' checkpoints
    share file names), and the last one's run as MLflow has it."""
    last = ckpts[-1]
    return {
        "source": paths[-1].name,
        "averaged": [
            {
                "file": f"{p.parent.name}/{p.name}",
                "global_step": c.get("global_step"),
                "mlflow_run_id": c.get("hyper_parameters", {}).get("mlflow_run_id"),
            }
            for p, c in zip(paths, ckpts, strict=True)
        ],
        "global_step": last.get("global_step"),
        "epoch": last.get("epoch"),
        "mlflow": mlflow_summary(last["hyper_parameters"], last.get("global_step")),
        "init_from": lineage(last["hyper_parameters"]),
    }


def _member(path: Path, ckpt: dict[str, Any]) -> dict[str, Any]:
    """Provenance of one ensemble member: its own, when it is a packaged base already."""
    return {"file": path.name, **(ckpt.get("provenance") or _run([path], [ckpt]))}


def package_checkpoint(
    checkpoints: str | os.PathLike[str] | Sequence[str | os.PathLike[str]],
    out: str | os.PathLike[str],
    provenance: dict[str, Any] | None = None,
    weights: str = "fp16",
    ensemble: bool = False,
    base: str | os.PathLike[str] | None = None,
    base_weight: float = 0.5,
) -> Path:
    """Write ``out`` with the hyper-parameters of the last checkpoint and the mean of all weights as
    ``weights`` (fp16 or int8), and its provenance beside it as ``out`` with a ``.json`` suffix,
    readable without torch. With ``ensemble`` the checkpoints are separate SER runs, kept as the
    members of one :class:`~callqa.models.ser.ensemble.SerEnsemble` instead of averaged. With ``base``
    (the checkpoint the run was initialised from) the mean moves ``base_weight`` of the way back to it."""
    if weights not in ("fp16", "int8"):  # before loading what may be gigabytes of checkpoints
        raise ValueError(f"weights must be fp16 or int8, not {weights!r}")
    if ensemble and base is not None:
        raise ValueError("an ensemble keeps its members whole; it does not interpolate towards a base")
    paths = (
        [Path(checkpoints)] if isinstance(checkpoints, str | os.PathLike) else [Path(c) for c in checkpoints]
    )
    ckpts = [read_checkpoint(p) for p in paths]
    if ensemble:
        hparams, weights_fp32 = _ensemble(paths, ckpts)
        made = {"members": [_member(p, c) for p, c in zip(paths, ckpts, strict=True)]}
    else:
        for p, c in zip(paths, ckpts, strict=True):
            if _architecture(c) != _architecture(ckpts[-1]):
                raise ValueError(
                    f"{p}: hyper-parameters differ from {paths[-1]}; only one run's checkpoints average"
                )
        hparams, weights_fp32 = (
            ckpts[-1]["hyper_parameters"],
            average_state_dicts([c["state_dict"] for c in ckpts]),
        )
        made = _run(paths, ckpts)
        if base is not None:
            weights_fp32, made["interpolated"] = _toward_base(weights_fp32, hparams, Path(base), base_weight)
    state, scales = _pack_weights(weights_fp32, weights)
    packed = {
        "hyper_parameters": hparams,
        "state_dict": state,
        "int8_scales": scales,
        "provenance": {
            "weights": weights,
            **made,
            "packaged_at": datetime.now(UTC).isoformat(timespec="seconds"),
            **(provenance or {}),
        },
    }
    buf = io.BytesIO()
    torch.save(packed, buf)
    out = Path(out)
    with atomic_path(out) as tmp:
        tmp.write_bytes(buf.getvalue())
    write_json(out.with_suffix(".json"), packed["provenance"])
    return out
