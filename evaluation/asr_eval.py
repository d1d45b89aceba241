"""``callqa evaluate asr``: CER of an exported model on a corpus split, broken down by the conditions
that make telephone ASR hard (noise, voice, speaking rate, emotion, speaker role), with the worst
utterances listed so that errors can be read, not only counted."""

from __future__ import annotations

import logging
import os
from collections import defaultdict
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import jiwer
from tqdm import tqdm

from callqa.data.corpus import Corpus
from callqa.data.files import write_json
from callqa.data.pii import mask_pii
from callqa.data.schema import Utterance
from callqa.data.segments import load_utterance
from callqa.evaluation.plots import plot_group_bars
from callqa.evaluation.report import Section, Table, write_html_report
from callqa.evaluation.tracking import use_experiment
from callqa.models.asr.decoding import LENGTH_BONUS, LM_WEIGHT, LmFusion
from callqa.models.tokenizer import normalize
from callqa.serving.asr_onnx import OnnxAsr, load_asr
from callqa.serving.whisper_onnx import OnnxWhisper

log = logging.getLogger(__name__)


@dataclass
class Scored:
    id: str
    ref: str
    hyp: str
    errors: int
    snr_db: float | None
    voice: str | None
    emotion: str | None
    speaker: str | None
    chars_per_second: float

    @property
    def cer(self) -> float:
        return self.errors / max(1, len(self.ref))


def _errors(ref: str, hyp: str) -> int:
    if not ref:
        return len(hyp)
    out = jiwer.process_characters(ref, hyp)
    return out.substitutions + out.deletions + out.insertions


def _bucket_snr(s: Scored) -> str:
    if s.snr_db is None:
        return "unknown"
    edges = [15, 20, 25, 30]
    lo = max([0, *[e for e in edges if s.snr_db >= e]])
    hi = next((e for e in edges if s.snr_db < e), None)
    return f"{lo}-{hi} dB" if hi else f"≥{lo} dB"


def _bucket_rate(s: Scored) -> str:
    r = s.chars_per_second
    return "<3 char/s" if r < 3 else "3-4 char/s" if r < 4 else "4-5 char/s" if r < 5 else "≥5 char/s"


BREAKDOWNS: dict[str, Callable[[Scored], str]] = {
    "snr": _bucket_snr,
    "rate": _bucket_rate,
    "emotion": lambda s: s.emotion or "unknown",
    "speaker": lambda s: s.speaker or "unknown",
    "voice": lambda s: s.voice or "unknown",
}


def group_cer(rows: list[Scored], key: Callable[[Scored], str]) -> dict[str, dict[str, float]]:
    """Corpus-level CER per group (errors over reference characters, not a mean of utterance CERs)."""
    acc: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0])
    for r in rows:
        a = acc[key(r)]
        a[0] += r.errors
        a[1] += len(r.ref)
        a[2] += 1
    return {k: {"cer": e / max(1, n), "chars": n, "utterances": u} for k, (e, n, u) in sorted(acc.items())}


def corpus_cer(rows: list[Scored]) -> float:
    """Errors over reference characters across the rows; empty references are skipped, as in metrics.cer."""
    kept = [r for r in rows if r.ref]
    return sum(r.errors for r in kept) / max(1, sum(len(r.ref) for r in kept))


def split_utterances(corpus: Path, split: str, limit: int | None = None) -> list[Utterance]:
    utts = Corpus(corpus).split_utterances(split)[:limit]
    if not utts:
        raise ValueError(f"{corpus}: no {split} utterances with text")
    return utts


def split_cer(
    model: str | os.PathLike[str],
    corpus: str | os.PathLike[str],
    split: str = "test",
    limit: int | None = None,
) -> float:
    """Greedy CER of an exported model on a corpus split (what the export step reports for fp32 vs int8)."""
    corpus = Path(corpus)
    return corpus_cer(decode_split(load_asr(model), corpus, split_utterances(corpus, split, limit)))


def decode_split(
    asr: OnnxAsr | OnnxWhisper,
    corpus: Path,
    utts: list[Utterance],
    beam: int = 1,
    hotwords: Any = None,
    batch: int = 16,
    lm: LmFusion | None = None,
) -> list[Scored]:
    rows: list[Scored] = []
    order = sorted(utts, key=lambda u: u.duration)
    for k in tqdm(range(0, len(order), batch), desc="decoding", unit="batch"):
        chunk = order[k : k + batch]
        waves = [load_utterance(u, corpus, asr.sample_rate) for u in chunk]
        hyps = asr.transcribe(waves, beam, hotwords, lm)
        for u, h in zip(chunk, hyps, strict=True):
            ref = normalize(u.text)  # characters outside the model's vocabulary still count as errors
            rows.append(
                Scored(
                    u.id,
                    ref,
                    h.text,
                    _errors(ref, h.text),
                    u.snr_db,
                    u.voice,
                    u.emotion,
                    u.speaker,
                    len(ref) / u.duration,
                )
            )
    return rows


def hotword_recall(rows: list[Scored], words: list[str]) -> float:
    """Share of hotword occurrences in the references that also occur in the hypotheses."""
    hits = total = 0
    for r in rows:
        for w in words:
            n = r.ref.count(w)
            hits += min(n, r.hyp.count(w))
            total += n
    return hits / total if total else float("nan")


def hotword_effect(
    asr: OnnxAsr, corpus: Path, utts: list[Utterance], words: list[str], beam: int
) -> dict[str, Any]:
    """Beam search with and without biasing on the utterances that contain a hotword."""
    words = [normalize(w) for w in words if normalize(w)]
    subset = [u for u in utts if any(w in normalize(u.text) for w in words)]
    if not subset:
        return {"words": words, "utterances": 0}
    plain = decode_split(asr, corpus, subset, beam)
    biased = decode_split(asr, corpus, subset, beam, asr.hotwords(words))

    return {
        "words": words,
        "utterances": len(subset),
        "beam": beam,
        "cer_plain": corpus_cer(plain),
        "cer_biased": corpus_cer(biased),
        "recall_plain": hotword_recall(plain, words),
        "recall_biased": hotword_recall(biased, words),
    }


def evaluate_asr(
    model: str | os.PathLike[str],
    corpus: str | os.PathLike[str],
    out: str | os.PathLike[str],
    split: str = "test",
    limit: int | None = None,
    beam: int = 1,
    worst: int = 20,
    tracking_uri: str | None = None,
    hotwords: list[str] | None = None,
    lm: str | os.PathLike[str] | None = None,
    lm_weight: float = LM_WEIGHT,
    length_bonus: float = LENGTH_BONUS,
) -> dict[str, Any]:
    """Score ``split`` with ``beam`` (fused with the n-gram ``lm`` when given), write the JSON and HTML
    report under ``out`` and, with ``tracking_uri``, log it to MLflow."""
    corpus, out = Path(corpus), Path(out)
    asr = load_asr(model)
    fusion = None
    if lm is not None:
        if not isinstance(asr, OnnxAsr):
            raise ValueError(f"{model}: language-model fusion needs a CTC model (Whisper has its own)")
        fusion = asr.language_model(lm, lm_weight, length_bonus)
        beam = max(beam, 2)
    utts = split_utterances(corpus, split, limit)
    rows = decode_split(asr, corpus, utts, beam, lm=fusion)
    decoding = f"beam {beam}" + (f", {Path(lm).name} x{lm_weight:g}, bonus {length_bonus:g}" if lm else "")
    report: dict[str, Any] = {
        "model": str(model),
        "corpus": str(corpus),
        "corpus_fingerprint": Corpus(corpus).fingerprint,
        "split": split,
        "decoding": decoding,
        "utterances": len(rows),
        "cer": corpus_cer(rows),
        "breakdowns": {name: group_cer(rows, key) for name, key in BREAKDOWNS.items()},
        "worst": [
            {**asdict(r), "ref": mask_pii(r.ref), "hyp": mask_pii(r.hyp), "cer": r.cer}
            for r in sorted(rows, key=lambda r: (-r.cer, r.id))[:worst]
        ],
        # what a paired comparison with another model recomputes the CER from (evaluation.paired)
        "per_item": {r.id: [r.errors, len(r.ref)] for r in rows if r.ref},
    }
    if hotwords and isinstance(asr, OnnxAsr):
        report["hotwords"] = hotword_effect(asr, corpus, utts, hotwords, max(beam, 8))
        hw = report["hotwords"]
        # rounded: the log's PII filter masks long digit runs, and a float's repr has them
        log.info(
            "hotwords on %d utterances (beam %d): CER %.4f plain, %.4f biased; recall %.0f%% -> %.0f%%",
            hw["utterances"],
            hw["beam"],
            hw["cer_plain"],
            hw["cer_biased"],
            100 * hw["recall_plain"],
            100 * hw["recall_biased"],
        )
    write_json(out / "asr_eval.json", report)
    plot = plot_group_bars(
        {
            k: {g: v["cer"] for g, v in report["breakdowns"][k].items()}
            for k in ("snr", "rate", "emotion", "speaker")
        },
        "CER",
        "CER",
        out / "cer_breakdown.png",
    )
    sections = [
        Section("Overall", f"{len(rows)} {split} utterances, CER {report['cer']:.4f} ({decoding})."),
        *[
            Section(
                f"CER by {name}",
                tables=[
                    Table(
                        f"by {name}",
                        [name, "CER", "characters", "utterances"],
                        [[g, v["cer"], v["chars"], v["utterances"]] for g, v in groups.items()],
                    )
                ],
            )
            for name, groups in report["breakdowns"].items()
        ],
        Section(
            "Worst utterances (PII masked)",
            tables=[
                Table(
                    "worst",
                    ["id", "CER", "reference", "hypothesis"],
                    [[w["id"], w["cer"], w["ref"], w["hyp"]] for w in report["worst"]],
                )
            ],
        ),
    ]
    write_html_report(f"ASR evaluation — {Path(model).name}", sections, [plot], out / "report.html")
    if tracking_uri:
        _log_mlflow(report, out, tracking_uri)
    log.info(
        "%s CER %.4f on %d %s utterances (%s)", Path(model).name, report["cer"], len(rows), split, decoding
    )
    return report


def _log_mlflow(report: dict[str, Any], out: Path, tracking_uri: str) -> None:
    import mlflow

    use_experiment("asr-eval", tracking_uri)
    with mlflow.start_run(run_name=f"eval-{Path(report['model']).stem}-{report['split']}"):
        mlflow.log_params({k: report[k] for k in ("model", "corpus", "split", "decoding")})
        mlflow.log_metric("cer", report["cer"])
        for name, groups in report["breakdowns"].items():
            if name == "voice":
                continue
            for g, v in groups.items():
                safe = "".join(c if c.isalnum() else "_" for c in g)
                mlflow.log_metric(f"cer_{name}_{safe}", v["cer"])
        mlflow.log_artifacts(str(out))
