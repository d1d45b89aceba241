"""MLflow experiments whose artifacts live beside their tracking store, never in the working directory.

With a SQLite tracking URI, MLflow puts artifacts under ./mlruns of whatever folder the process runs
in; creating the experiment with an explicit artifact location keeps runs/ self-contained.
"""

from __future__ import annotations

from pathlib import Path

import mlflow


def artifact_location(tracking_uri: str) -> str | None:
    """``sqlite:///runs/mlflow.db`` -> ``runs/mlartifacts`` (absolute); None for server URIs."""
    if tracking_uri.startswith("sqlite:///"):
        return str((Path(tracking_uri.removeprefix("sqlite:///")).parent / "mlartifacts").resolve())
    return None


def use_experiment(name: str, tracking_uri: str) -> str:
    """Point MLflow at ``tracking_uri`` and make ``name`` the active experiment, creating it (with its
    artifact location) if needed; returns the experiment id."""
    mlflow.set_tracking_uri(tracking_uri)
    client = mlflow.MlflowClient(tracking_uri)
    exp = client.get_experiment_by_name(name)
    exp_id = exp.experiment_id if exp else client.create_experiment(name, artifact_location(tracking_uri))
    mlflow.set_experiment(experiment_id=exp_id)
    return exp_id
