"""``callqa score``: listen to each call, judge it by the rubric, write one result record per call.

Runs on onnxruntime and plain Python (the pipeline, then the rules; the QA model joins here when it
exists). Inputs are audio files, folders of them, or a ``calls.jsonl`` (whose records give each call's id
and channel layout); without an ASR model a ``calls.jsonl`` is judged from its own transcripts.

A batch never loses work: results go line by line to ``OUT.partial`` and are renamed onto ``OUT`` when
the batch ends, and a rerun after a crash picks the partial file up and skips the calls it holds. A
call that fails goes to the errors file with its reason and the batch goes on.
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from tqdm import tqdm

from callqa.data.audio import AudioError
from callqa.data.constants import CHANNEL_OF
from callqa.data.pii import mask_pii
from callqa.data.results import CallResult, ModelInfo
from callqa.data.rubric import Rubric
from callqa.data.schema import CallRecord, SchemaError, read_calls, resolve_audio
from callqa.data.scores import CallScore
from callqa.models.qa.base import QaModel
from callqa.qa.rules import RuleSet
from callqa.qa.sheet import check_model_rubric, judge_call
from callqa.qa.timeline import CallView

log = logging.getLogger(__name__)

#: What a folder is searched for.
AUDIO_SUFFIXES = frozenset({".wav", ".flac", ".ogg", ".opus", ".mp3", ".m4a", ".amr", ".au"})


@dataclass(frozen=True)
class Job:
    """One call to score: from its audio (``path``) or, with ``record`` and no audio, from its turns."""

    id: str
    path: Path | None
    speakers: Mapping[str, int] | None = None
    record: CallRecord | None = None


def jobs(inputs: Sequence[Path], from_text: bool = False) -> Iterator[Job]:
    """Expand files, folders and calls.jsonl files into calls, in a stable order."""
    for path in inputs:
        if path.is_dir() and (path / "calls.jsonl").is_file():
            path = path / "calls.jsonl"
        if path.is_dir():
            for p in sorted(q for q in path.rglob("*") if q.suffix.lower() in AUDIO_SUFFIXES):
                yield Job(p.stem, p)
        elif path.name.endswith(".jsonl"):
            for rec in read_calls(path):
                audio = None if from_text else resolve_audio(rec.audio, path.parent)
                speakers = None if rec.channels == "mono" else dict(rec.channels)
                yield Job(rec.id, audio, speakers, rec)
        else:
            yield Job(path.stem, path)


class Scorer:
    """The pipeline (optional), the rules of one rubric and the sheet, applied to one call at a time."""

    def __init__(
        self,
        rubric: Rubric,
        pipeline: object | None = None,
        raw: bool = False,
        rubric_source: str = "rubric",
        agent_channel: int = CHANNEL_OF["agent"],
        model: QaModel | None = None,
        model_path: str | os.PathLike[str] | None = None,
        sources: Mapping[str, str] | None = None,
    ) -> None:
        self.pipeline, self.raw, self.model = pipeline, raw, model
        #: Kind -> what a record names as the model's path where it is not the file loaded: a
        #: registry version (``models:/callqa-asr/3``) rather than the temporary folder it came to.
        self.sources = dict(sources or {})
        self.rules = RuleSet(rubric, rubric_source)
        self.model_info: ModelInfo | None = None
        if model is not None:
            check_model_rubric(model, rubric, rubric_source)
            self.model_info = ModelInfo(
                kind=model.kind,
                path=self.sources.get("qa") or (os.fspath(model_path) if model_path else None),
                version=model.version,
            )
        self.default_speakers = {"agent": agent_channel, "customer": 1 - agent_channel}
        if pipeline is not None and not getattr(pipeline, "raw", True):
            raise ValueError(
                "the scoring pipeline must keep numbers raw: the confidentiality rule reads them"
            )

    def model_infos(self, from_audio: bool) -> dict[str, ModelInfo]:
        """The models a record scored now names: the pipeline's (from audio) and the QA model."""
        models = self._named(self.pipeline.models()) if from_audio and self.pipeline is not None else {}  # type: ignore[attr-defined]
        if self.model_info is not None:
            models["qa"] = self.model_info
        return models

    def _named(self, models: Mapping[str, ModelInfo]) -> dict[str, ModelInfo]:
        return {
            k: m.model_copy(update={"path": self.sources[k]}) if k in self.sources else m
            for k, m in models.items()
        }

    def provenance(self, from_audio: bool) -> dict[str, object]:
        """What a record scored now would say made it: rubric, masking and models (by kind, file,
        version and quantization), so a resumed batch can refuse lines another set-up wrote."""
        rubric = self.rules.rubric
        return _provenance(
            {"name": rubric.name, "version": rubric.version}, not self.raw, self.model_infos(from_audio)
        )

    def score(self, job: Job) -> CallScore:
        t0 = time.perf_counter()
        result: CallResult | None = None
        if job.path is not None:
            if self.pipeline is None:
                raise ValueError(f"{job.path}: audio needs an ASR model (--model)")
            result = self.pipeline.run_file(job.path, job.id, job.speakers or self.default_speakers)  # type: ignore[attr-defined]
            view = CallView.from_result(result)
        elif job.record is not None:
            view = CallView.from_record(job.record)
        else:
            raise ValueError(f"{job.id}: nothing to score")
        return self.judge(view, result, time.perf_counter() - t0)

    def judge(self, view: CallView, result: CallResult | None = None, seconds: float = 0.0) -> CallScore:
        out = judge_call(view, self.rules, self.model)
        if not self.raw:
            out.events = [e.model_copy(update={"evidence": mask_pii(e.evidence)}) for e in out.events]
        out.masked = not self.raw
        if result is not None:
            out.call = result if self.raw else masked(result)
            out.models = self._named(result.models)
            out.warnings = list(result.warnings) + out.warnings
        if self.model_info is not None:
            out.models["qa"] = self.model_info
        if not view.roles_known and out.judged:
            out.warnings.append("mono mix: the items about what the agent says were not judged")
        out.processing_seconds = round(seconds, 3)
        return out


def masked(result: CallResult) -> CallResult:
    turns = [t.model_copy(update={"text": mask_pii(t.text)}) for t in result.turns]
    return result.model_copy(update={"turns": turns, "masked": True})


@dataclass
class BatchReport:
    scored: int
    skipped: int
    failed: int
    out: Path
    errors: Path | None
    #: Scored calls that could not be judged (no speech): in ``out`` with ``judged: false``.
    not_judged: int = 0


def score_batch(
    scorer: Scorer,
    inputs: Sequence[Path],
    out: Path,
    errors: Path | None = None,
    from_text: bool = False,
    progress: bool = True,
) -> BatchReport:
    """Score every call of ``inputs`` into ``out`` (JSONL), resuming an interrupted run of the same
    command. Failures go to ``errors`` (default ``OUT`` with ``.errors.jsonl``), one line each."""

    def here(todo: list[Job]) -> Iterator[tuple[Job, CallScore | str]]:
        for job in todo:
            yield job, attempt(scorer, job)

    return run_batch(lambda: scorer.provenance(not from_text), inputs, out, here, errors, from_text, progress)


def attempt(scorer: Scorer, job: Job) -> CallScore | str:
    """The call's score, or why it could not be scored (naming its file)."""
    try:
        return scorer.score(job)
    except (AudioError, SchemaError, OSError, ValueError) as err:
        message = " ".join(str(err).split())
        where = str(job.path or job.id)
        return message if where in message else f"{where}: {message}"


def run_batch(
    provenance: Callable[[], Mapping[str, object]],
    inputs: Sequence[Path],
    out: Path,
    results: Callable[[list[Job]], Iterable[tuple[Job, CallScore | str]]],
    errors: Path | None = None,
    from_text: bool = False,
    progress: bool = True,
) -> BatchReport:
    """The batch around any way of scoring: resume from ``OUT.partial``, write each result as it comes
    (in the calls' order), list failures, rename at the end. ``results`` scores the calls still to do;
    ``provenance`` says what set-up scores them, asked only when there is a partial file to check."""
    out = Path(out)
    errors = Path(errors) if errors is not None else out.with_suffix(".errors.jsonl")
    partial = out.with_name(out.name + ".partial")
    done = _finished_ids(partial, provenance)
    todo = [j for j in jobs(inputs, from_text) if j.id not in done]
    if done:
        log.info("resuming %s: %d call(s) already scored", partial, len(done))
    failed: list[dict[str, str]] = []
    unjudged = 0
    out.parent.mkdir(parents=True, exist_ok=True)
    with open(partial, "a", encoding="utf-8") as fh:
        for job, score in tqdm(
            results(todo), total=len(todo), desc="scoring", unit="call", disable=not progress
        ):
            if isinstance(score, str):
                failed.append({"id": job.id, "input": str(job.path or job.id), "error": score})
                log.error("%s", score)
                continue
            if not score.judged:
                unjudged += 1
                log.warning("%s: %s", job.path or job.id, "; ".join(score.warnings))
            fh.write(json.dumps(score.to_json(), ensure_ascii=False) + "\n")
            fh.flush()
    os.replace(partial, out)
    if failed:
        with open(errors, "w", encoding="utf-8") as fh:
            fh.writelines(json.dumps(f, ensure_ascii=False) + "\n" for f in failed)
    elif errors.exists():
        errors.unlink()
    return BatchReport(
        len(todo) - len(failed), len(done), len(failed), out, errors if failed else None, unjudged
    )


def _provenance(
    rubric: Mapping[str, object], masked: bool, models: Mapping[str, object]
) -> dict[str, object]:
    infos = {k: v if isinstance(v, ModelInfo) else ModelInfo.model_validate(v) for k, v in models.items()}
    return {
        "rubric": f"{rubric.get('name')} {rubric.get('version')}",
        "masked": masked,
        **{k: f"{m.kind} {m.path} {m.version} {m.quantization}" for k, m in sorted(infos.items())},
    }


def _finished_ids(partial: Path, provenance: Callable[[], Mapping[str, object]]) -> set[str]:
    """Ids of the complete lines of an interrupted run; a torn last line is dropped from the file.

    Lines written with another rubric, masking or model are refused rather than kept: a batch that
    mixes them looks whole and is not (a rerun after swapping the ASR model once left a training file
    heard by three set-ups). A line scored from text compares only what text scoring uses."""
    if not partial.is_file():
        return set()
    expected = provenance()
    ids, good = set(), []
    with open(partial, encoding="utf-8") as fh:
        for n, line in enumerate(fh, 1):
            try:
                rec = json.loads(line)
                call_id = rec["id"]
                got = _provenance(rec["rubric"], rec.get("masked", False), rec.get("models", {}))
            except (json.JSONDecodeError, KeyError, TypeError, ValueError):
                break
            want = dict(expected) if "asr" in got else {k: v for k, v in expected.items() if k in _TEXT_KEYS}
            if got != want:
                diff = "; ".join(
                    f"{k}: {got.get(k)} (now {want.get(k)})"
                    for k in sorted({*got, *want})
                    if got.get(k) != want.get(k)
                )
                raise ValueError(
                    f"{partial}:{n}: scored with another set-up ({diff}); delete the file to score afresh"
                )
            ids.add(call_id)
            good.append(line if line.endswith("\n") else line + "\n")
    partial.write_text("".join(good), encoding="utf-8")
    return ids


#: What a record scored from its transcripts owes to the set-up.
_TEXT_KEYS = frozenset({"rubric", "masked", "qa"})
