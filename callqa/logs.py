"""Logging for the command line: Rich output, and PII masked in every record before it is written."""

from __future__ import annotations

import logging

from rich.logging import RichHandler

from callqa.data.pii import PiiLogFilter


def setup_logging(verbose: bool = False) -> None:
    handler = RichHandler(show_path=False, rich_tracebacks=False, markup=False)
    handler.addFilter(PiiLogFilter())
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO, format="%(message)s", handlers=[handler], force=True
    )
    for noisy in ("jieba", "matplotlib", "PIL", "urllib3", "filelock"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
