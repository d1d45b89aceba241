"""Models named by registry reference (``models:/callqa-asr@champion``) fetched to a local folder,
so the server loads what ``callqa promote`` made champion exactly as it loads a file. MLflow is
imported only when such a reference is given."""

from __future__ import annotations

import tempfile
from pathlib import Path

PREFIX = "models:/"


def resolve(ref: str | Path, kind: str, tracking_uri: str) -> Path:
    """A local path for ``ref``: a file as given, or a registry reference downloaded; for ``kind``
    asr, ser or qa, the file the server loads (``KIND.onnx``, or a transparent QA model's JSON)."""
    text = str(ref)
    if not text.startswith(PREFIX):
        return Path(ref)
    import mlflow

    # a models:/ reference is looked up in the registry store, which is not implied by tracking_uri=
    mlflow.set_tracking_uri(tracking_uri)
    mlflow.set_registry_uri(tracking_uri)
    try:
        local = mlflow.artifacts.download_artifacts(
            artifact_uri=text, dst_path=tempfile.mkdtemp(prefix="callqa-models-")
        )
    except mlflow.exceptions.MlflowException as err:
        raise ValueError(f"{text}: not found in {tracking_uri} ({err.message})") from None
    files = sorted(Path(local).rglob("*"))
    onnx = [f for f in files if f.name == f"{kind}.onnx"]
    models = onnx or [f for f in files if kind == "qa" and f.suffix == ".json" and f.name != "export.json"]
    if not models:
        raise ValueError(f"{text}: no {kind} model among its files ({', '.join(f.name for f in files)})")
    return models[0]
