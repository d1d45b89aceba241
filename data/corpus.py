"""The one reader of a corpus folder.

A corpus is a folder with ``calls.jsonl`` and, when it was generated or cut into utterances, also
``utterances.jsonl``, ``coverage.jsonl``, ``corpus.json``, ``inspectors.json`` and ``rubric.yaml``. Training,
evaluation, the quickstart and the benchmarks all read it through :class:`Corpus`, so that a real centre's
export, which may hold only calls.jsonl and audio, is read the same way everywhere. Each file is read and
validated once, on first use.
"""

from __future__ import annotations

import json
import logging
import os
from functools import cached_property
from pathlib import Path
from typing import Any

from callqa.data.rubric import Rubric, load_rubric
from callqa.data.schema import CallRecord, Utterance, read_calls, read_utterances

log = logging.getLogger(__name__)


class CorpusError(FileNotFoundError):
    """The folder is not a corpus (the message names it and what is missing)."""


class Corpus:
    """A corpus folder; optional files read as empty when absent."""

    def __init__(self, root: str | os.PathLike[str]):
        self.dir = Path(root)
        if not self.dir.is_dir():
            raise CorpusError(f"{self.dir}: not a folder")
        if not (self.dir / "calls.jsonl").is_file() and not (self.dir / "utterances.jsonl").is_file():
            raise CorpusError(f"{self.dir}: no calls.jsonl or utterances.jsonl: not a corpus folder")

    def __repr__(self) -> str:
        return f"Corpus({str(self.dir)!r})"

    @cached_property
    def info(self) -> dict[str, Any]:
        """corpus.json (preset, seed, generator version, counts, fingerprint); empty for a real export."""
        info = _read_json(self.dir / "corpus.json", default={})
        return info if isinstance(info, dict) else {}

    @property
    def fingerprint(self) -> str:
        return str(self.info.get("fingerprint", "?"))

    @cached_property
    def rubric(self) -> Rubric:
        path = self.dir / "rubric.yaml"
        return load_rubric(path if path.is_file() else None)

    @cached_property
    def calls(self) -> list[CallRecord]:
        path = self.dir / "calls.jsonl"
        if not path.is_file():
            raise CorpusError(f"{self.dir}: no calls.jsonl")
        return read_calls(path)

    @cached_property
    def utterances(self) -> list[Utterance]:
        return _read_optional_utterances(self.dir / "utterances.jsonl")

    @cached_property
    def coverage(self) -> list[Utterance]:
        return _read_optional_utterances(self.dir / "coverage.jsonl")

    @cached_property
    def profiles(self) -> dict[str, dict[str, Any]]:
        """The simulated inspectors' true parameters (inspectors.json), by inspector id."""
        profiles = _read_json(self.dir / "inspectors.json", default=[])
        return {str(p["id"]): p for p in profiles if isinstance(p, dict) and "id" in p}

    def split_utterances(self, split: str, with_text: bool = True) -> list[Utterance]:
        """Utterances of one split (those with a transcript only, unless ``with_text`` is False)."""
        return [u for u in self.utterances if u.split == split and (u.text or not with_text)]

    def split_calls(self, split: str) -> list[CallRecord]:
        return [c for c in self.calls if c.split == split]


def _read_json(path: Path, default: Any) -> Any:
    if not path.is_file():
        return default
    with open(path, encoding="utf-8") as fh:
        return json.load(fh)


def _read_optional_utterances(path: Path) -> list[Utterance]:
    if not path.is_file():
        log.info("%s not found; its counts are zero", path)
        return []
    return read_utterances(path)
