"""Opening exported models with onnxruntime: one place for the execution providers, the thread
settings and the check that a file is the kind of callqa model the caller expects. No torch."""

from __future__ import annotations

import os
from typing import Any

import onnxruntime as ort


def providers() -> list[str]:
    """CUDA when onnxruntime-gpu and a GPU are present, else CPU."""
    available = ort.get_available_providers()
    return [p for p in ("CUDAExecutionProvider", "CPUExecutionProvider") if p in available]


def open_session(
    path: str | os.PathLike[str], kind: str, threads: int | None = None, gpu: bool = False
) -> tuple[ort.InferenceSession, dict[str, Any]]:
    """The session and its callqa metadata; a file that is not ONNX, or not a callqa model of
    ``kind``, is refused with its name and what it is instead. ``threads``: intra-op threads (one
    inter-op thread: a scoring process runs one graph at a time)."""
    opts = ort.SessionOptions()
    if threads:
        opts.intra_op_num_threads = threads
        opts.inter_op_num_threads = 1
    session = _session(path, opts, providers() if gpu else ["CPUExecutionProvider"])
    meta: dict[str, Any] = dict(session.get_modelmeta().custom_metadata_map)
    if meta.get("callqa.kind") != kind:
        raise ValueError(
            f"{path}: not a callqa {kind} model (metadata callqa.kind={meta.get('callqa.kind')!r})"
        )
    return session, meta


def model_kind(path: str | os.PathLike[str]) -> str | None:
    """The ``callqa.kind`` a file's metadata declares (None when it declares none)."""
    meta = _session(path, ort.SessionOptions(), ["CPUExecutionProvider"]).get_modelmeta()
    return meta.custom_metadata_map.get("callqa.kind")


def _session(
    path: str | os.PathLike[str], opts: ort.SessionOptions, using: list[str]
) -> ort.InferenceSession:
    try:
        return ort.InferenceSession(str(path), opts, providers=using)
    except Exception as exc:  # onnxruntime raises its own exception types for unreadable files
        raise ValueError(f"{path}: cannot open as an ONNX model ({exc})") from None
