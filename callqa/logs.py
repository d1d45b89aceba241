"""Logging for the command line: Rich output, and PII masked in every record before it is written."""

from __future__ import annotations

import logging

from rich.console import Console
from rich.logging import RichHandler

from callqa.data.pii import PiiLogFilter


def setup_logging(verbose: bool = False) -> None:
    """Records go to stderr, so that stdout carries only what a command outputs (``callqa transcribe
    --format jsonl`` is read by other programs, and a warning line in it would break them)."""
    handler = RichHandler(console=Console(stderr=True), show_path=False, rich_tracebacks=False, markup=False)
    handler.addFilter(PiiLogFilter())
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO, format="%(message)s", handlers=[handler], force=True
    )
    for noisy in ("jieba", "matplotlib", "PIL", "urllib3", "filelock", "httpx", "httpcore"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


def make_console() -> Console:
    """A console for tables: the terminal's width, or a wide page when output goes to a file or CI log,
    where wrapping at 80 columns would cut the tables to pieces."""
    console = Console()
    return console if console.is_terminal else Console(width=160)
