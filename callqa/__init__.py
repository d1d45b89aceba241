"""callqa: train, track, export and serve quality-inspection models for Chinese call-centre calls."""

__version__ = "0.1.0"
