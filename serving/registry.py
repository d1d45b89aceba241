"""Models named by registry reference (``models:/callqa-asr@champion``) fetched to a local folder,
so the server loads what ``callqa promote`` made champion exactly as it loads a file. MLflow is
imported only when such a reference is given."""

from __future__ import annotations

from pathlib import Path

PREFIX = "models:/"


def resolve(ref: str | Path, kind: str, tracking_uri: str, dst: Path) -> tuple[Path, str]:
    """A local path for ``ref`` and what a result should name as its source: a file as given, or a
    registry reference downloaded under ``dst`` and named by the version it pointed to
    (``models:/NAME/3``: an alias moves, a version does not). For ``kind`` asr, ser or qa, the path
    is the file the server loads (the ONNX flavour's model file, or a transparent QA model's JSON)."""
    text = str(ref)
    if not text.startswith(PREFIX):
        return Path(ref), text
    import mlflow

    # a models:/ reference is looked up in the registry store, which is not implied by tracking_uri=
    mlflow.set_tracking_uri(tracking_uri)
    mlflow.set_registry_uri(tracking_uri)
    name, _, version = text.removeprefix(PREFIX).partition("/")
    try:
        if "@" in name:  # fix the alias to its version first, so the download and the name agree
            name, alias = name.split("@", 1)
            version = mlflow.MlflowClient().get_model_version_by_alias(name, alias).version
        source = f"{PREFIX}{name}/{version}"
        local = mlflow.artifacts.download_artifacts(artifact_uri=source, dst_path=str(Path(dst) / kind))
    except mlflow.exceptions.MlflowException as err:
        raise ValueError(f"{text}: not found in {tracking_uri} ({err.message})") from None
    files = sorted(Path(local).rglob("*"))
    onnx = [f for f in files if f.name in (f"{kind}.onnx", "model.onnx")]
    models = onnx or [f for f in files if kind == "qa" and f.suffix == ".json" and f.name != "export.json"]
    if not models:
        raise ValueError(f"{text}: no {kind} model among its files ({', '.join(f.name for f in files)})")
    return models[0], source
