"""Where generated things go: one git-ignored run folder (``runs/`` or $CALLQA_RUNS), never a code folder."""

from __future__ import annotations

import os
from pathlib import Path


def runs_dir() -> Path:
    return Path(os.environ.get("CALLQA_RUNS", "runs"))


def default_tracking_uri() -> str:
    """The project's own MLflow store, the one the configs in configs/ train into."""
    return f"sqlite:///{runs_dir() / 'mlflow.db'}"
