"""The quickstart's QA stage: judge calls by the rubric and measure the judge against the inspectors.

1. A QA training corpus (the ``qa-train`` preset cut to :data:`TRAIN_CALLS` calls: dev-split sentences,
   voices and agents, which the ASR and SER models never trained on) goes through the call pipeline,
   and both QA models learn from those results and the inspectors' resolved labels: the transparent
   one and the neural one over the turns (cross-fitted in :data:`TURN_FOLDS` folds, exported to ONNX
   with its parity gate). Not the
   small corpus's training calls: the ASR was fine-tuned on them and hears them far better than any
   call it will score, and a QA model fitted to that misreads what the recogniser's output says about
   the call: on the 320-call qa-eval corpus the totals agree as well either way (QWK 0.893 and 0.888
   against the consensus), but the speech-rate item, which counts the characters heard, falls from F1
   0.82 to 0.58 when trained on the recogniser's own training calls.
2. A small evaluation corpus (the ``qa-eval`` preset cut to :data:`EVAL_CALLS` calls: held-out voices,
   templates and agents, every call scored by every inspector) and the hand-written labelled calls go
   through the pipeline and are judged.
3. The agreement table: the model against the consensus and against the truth, beside every inspector.
   The full check uses the whole preset (320 calls); the quickstart's 60 give wide intervals, and says so.
"""

from __future__ import annotations

import logging
import math
from importlib import resources
from pathlib import Path
from typing import Any

from callqa.data.corpus import Corpus
from callqa.data.schema import write_records
from callqa.data.synth.config import load_synth_config
from callqa.data.synth.generate import generate_corpus
from callqa.data.synth.handwritten_calls import QA_CALLS_VERSION, render_labelled_calls
from callqa.evaluation.qa_eval import evaluate_qa
from callqa.evaluation.report import Table, print_table
from callqa.logs import make_console
from callqa.serving.pipeline import CallPipeline
from callqa.training.qa_train import train_qa

log = logging.getLogger(__name__)

EVAL_CALLS = 60
TRAIN_CALLS = 200
N_BOOT = 300
#: Folds of the neural QA model: three, not the config's five, to keep the quickstart short.
TURN_FOLDS = 3


def preset_corpus(path: Path, preset: str, calls: int, seed: int) -> Path:
    """A packaged synth preset cut to ``calls`` calls, generated unless ``path`` already holds it."""
    info = Corpus(path).info if (path / "corpus.json").is_file() else {}
    if info.get("seed") != seed or info.get("counts", {}).get("calls") != calls:
        config = Path(str(resources.files("callqa.configs") / "synth" / f"{preset}.yaml"))
        generate_corpus(load_synth_config(config, calls=calls), path, seed=seed, overwrite=True)
    return path


def hear(pipeline: CallPipeline, corpus_dir: Path, split: str | None, path: Path) -> Path:
    """Every call of a split through the pipeline (raw text), written as a heard file."""
    from tqdm import tqdm

    corpus = Corpus(corpus_dir)
    calls = corpus.calls if split is None else corpus.split_calls(split)
    results = [
        pipeline.run_file(corpus.dir / c.audio, c.id) for c in tqdm(calls, desc="pipeline", unit="call")
    ]
    write_records(path, results)
    return path


def qa_stage(
    corpus: Path,
    out: Path,
    pipeline: CallPipeline,
    seed: int = 0,
    eval_calls: int = EVAL_CALLS,
    handwritten: Path | None = None,
    train_calls: int = TRAIN_CALLS,
) -> dict:
    """Hear, train, judge and measure. ``handwritten``: another labelled-calls YAML in place of the
    shipped one."""
    qa = out / "qa"
    train_dir = preset_corpus(out / "qa-train", "qa-train", train_calls, seed + 2)
    train = hear(pipeline, train_dir, None, qa / "heard-train.jsonl")
    model_path = qa / "qa-linear.json"
    train_qa(train_dir, train, model_path, split="all")

    test = hear(pipeline, corpus, "test", qa / "heard-test.jsonl")
    eval_dir = preset_corpus(out / "qa-eval", "qa-eval", eval_calls, seed + 1)
    eval_heard = hear(pipeline, eval_dir, None, qa / "heard-eval.jsonl")
    hand_dir = out / "qa-handwritten"
    hand_info = Corpus(hand_dir).info if (hand_dir / "corpus.json").is_file() else {}
    if handwritten is not None or hand_info.get("handwritten_version") != QA_CALLS_VERSION:
        render_labelled_calls(hand_dir, overwrite=True, path=handwritten)
    hand_heard = hear(pipeline, hand_dir, None, qa / "heard-handwritten.jsonl")

    turns_path = train_turns(train_dir, train, qa / "turns")
    reports = {
        "test": evaluate_qa(corpus, test, model_path, qa / "eval-test", "test", N_BOOT),
        "eval": evaluate_qa(eval_dir, eval_heard, model_path, qa / "eval", "test", N_BOOT),
        "handwritten": evaluate_qa(hand_dir, hand_heard, model_path, qa / "eval-handwritten", "test", N_BOOT),
        "eval-turns": evaluate_qa(eval_dir, eval_heard, turns_path, qa / "eval-turns", "test", N_BOOT),
        "handwritten-turns": evaluate_qa(
            hand_dir, hand_heard, turns_path, qa / "eval-handwritten-turns", "test", N_BOOT
        ),
    }
    print_agreement(reports)
    log.info("QA report: %s", qa / "eval" / "report.html")
    return summary(reports)


def train_turns(train_dir: Path, heard: Path, out: Path) -> Path:
    """The neural QA model on the QA training calls, exported; refused if its parity gate fails."""
    from callqa.export.qa import export_qa
    from callqa.training.qa_turns_cli import train_qa_turns

    config = Path(str(resources.files("callqa.configs") / "qa" / "turns.yaml"))
    args = [
        "--config",
        str(config),
        f"--data.corpus={train_dir}",
        f"--data.heard={heard}",
        f"--data.folds={TURN_FOLDS}",
        "--trainer.enable_progress_bar=false",
    ]
    train_qa_turns(args, out / "qa-turns.ckpt")
    report = export_qa(out / "qa-turns.ckpt", out / "export", corpus=train_dir, heard=heard)
    if not report["parity"]["passed"]:
        raise RuntimeError(f"the neural QA model failed its ONNX parity gate: {report['parity']}")
    return out / "export" / "qa.onnx"


def ci_text(v: list[float] | None) -> str:
    """A figure with its interval, as the agreement tables show it."""
    if not v or not math.isfinite(v[0]):
        return "—"
    return f"{v[0]:.3f} [{v[1]:.3f}, {v[2]:.3f}]" if math.isfinite(v[1]) else f"{v[0]:.3f}"


def _row(name: str, m: dict[str, Any]) -> list[Any]:
    return [name, m["calls"], *(ci_text(m[k]) for k in ("qwk", "spearman", "mae", "band_exact"))]


def print_agreement(reports: dict[str, dict[str, Any]]) -> None:
    ev = reports["eval"]
    t = ev["totals"]
    named: list[tuple[str, dict[str, Any]]] = []
    if "model_vs_consensus" in t:
        named.append(("model vs consensus", t["model_vs_consensus"]))
        named.append(("model (expected total)", t["model_expected_vs_consensus"]))
        turns = reports.get("eval-turns", {}).get("totals", {})
        if "model_vs_consensus" in turns:
            named.append(("neural model vs consensus", turns["model_vs_consensus"]))
        named += [(f"{r} vs the others", v["vs_consensus"]) for r, v in t.get("inspectors", {}).items()]
    for name, key in (("eval", "eval"), ("hand-written", "handwritten")):
        for who, suffix in (("model", ""), ("neural model", "-turns")):
            rep = reports.get(key + suffix, {})
            if rep.get("truth", {}).get("model"):
                named.append((f"{who} vs truth ({name})", rep["truth"]["model"]))
    named += [(f"{r} vs truth", m) for r, m in ev["truth"].get("inspectors", {}).items()]
    rows = [_row(n, m) for n, m in named]
    print_table(
        make_console(),
        Table(
            f"Total score agreement on {ev['calls']} evaluation calls (quickstart size: wide intervals)",
            ["who", "calls", "QWK", "Spearman", "MAE", "band exact"],
            rows,
        ),
    )


def summary(reports: dict[str, dict[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, rep in reports.items():
        items = {i: refs["vs_truth"]["f1"][0] for i, refs in rep["items"].items() if "vs_truth" in refs}
        out[name] = {"calls": rep["calls"], "item_f1_vs_truth": items}
        if "model_vs_consensus" in rep["totals"]:
            out[name]["qwk_vs_consensus"] = rep["totals"]["model_vs_consensus"]["qwk"]
            out[name]["mean_inspector_qwk"] = rep["totals"].get("mean_inspector_qwk")
        if rep["truth"].get("model"):
            out[name]["qwk_vs_truth"] = rep["truth"]["model"]["qwk"]
    return out
