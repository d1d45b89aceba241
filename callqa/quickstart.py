"""``callqa quickstart``: the main job end to end on the synthetic corpus.

1. Generate the small corpus (reused when one with the same preset, seed and generator version is
   there) and report its statistics.
2. ASR: fine-tune the shipped base checkpoint on it, package it half way back to the base (WiSE-FT,
   training/package.py), export to ONNX with the parity gate, count a
   character n-gram over its training text, and report the held-out (test voices and templates) CER,
   greedy and with the n-gram fused into beam search. Skipped, with a message, without a base.
3. Speech emotion: train the from-scratch SER model on the corpus's call turns, export it (parity gate,
   int8) and report UA, WA and macro-F1 on the held-out voices.
4. The whole call: the test calls through the call pipeline (VAD, segments, ASR, SER) with the CER of
   its own segments beside the per-utterance CER, the turn tables of two calls, and the hand-written
   set (free wording, 11 industries the generator lacks) turn by turn and through the pipeline.
5. Judging: QA models trained on calls the recognisers never heard, measured against the inspectors
   (callqa/quickstart_qa.py).
6. Serving: the three models promoted through the registry's gates, ``callqa serve`` started with the
   champions, the test and evaluation calls scored over HTTP, and where to look next
   (callqa/quickstart_serve.py).
Every figure lands in ``summary.json`` of the run folder.
"""

from __future__ import annotations

import json
import logging
from importlib import resources
from pathlib import Path

from callqa.data.corpus import Corpus, CorpusError
from callqa.data.files import write_json
from callqa.data.synth.config import load_synth_config, preset_path
from callqa.data.synth.generate import GENERATOR_VERSION, generate_corpus
from callqa.evaluation.corpus_report import corpus_stats_report, render_stats
from callqa.logs import make_console
from callqa.paths import default_tracking_uri
from callqa.serving.pipeline import CallPipeline

log = logging.getLogger(__name__)


def _reusable(corpus: Path, **expected: object) -> bool:
    """Whether a corpus folder is already there and its corpus.json has every ``expected`` value."""
    try:
        info = Corpus(corpus).info
    except CorpusError:  # none there yet
        return False
    return all(info.get(k) == v for k, v in expected.items())


BASE_ASR = Path(str(resources.files("callqa.models") / "asr" / "base" / "asr-base.ckpt"))
#: How far the fine-tuned ASR moves back towards its base. Chosen with the stage-19 base on corpus13's
#: dev split, a richer generator corpus the quickstart never trains on: CER 0.2070 / 0.2064 / 0.2069 at
#: 0.3 / 0.5 / 0.7, 0.2098 fine-tuned alone (0), 0.2084 the base alone (1). Never on the hand-written set.
FINETUNE_BASE_WEIGHT = 0.5


def asr_stage(corpus: Path, out: Path, base: Path = BASE_ASR, overrides: tuple[str, ...] = ()) -> dict | None:
    """Fine-tune, export and evaluate the ASR model; None when there is no base checkpoint to start from.

    ``overrides`` are extra ``--section.key=value`` training arguments (tests shrink the run with them).
    """
    if not base.exists():
        log.warning(
            "ASR stage skipped: no base checkpoint at %s yet (made by configs/asr/base-cpu.yaml)", base
        )
        return None
    log.info("stage 2/6: fine-tuning the base ASR checkpoint %s on %s", base, corpus)
    from callqa.evaluation.asr_eval import evaluate_asr
    from callqa.export.asr_report import export_asr
    from callqa.training.asr_cli import train_asr
    from callqa.training.lm import build_lm
    from callqa.training.package import package_checkpoint

    cfg = Path(str(resources.files("callqa.configs") / "asr" / "finetune.yaml"))
    cli = train_asr(
        [
            "--config",
            str(cfg),
            f"--model.init_from={base}",
            f"--data.tokenizer_from={base}",
            f"--data.corpora=[{corpus}]",
            f"--trainer.default_root_dir={out / 'asr'}",
            f"--trainer.callbacks.init_args.dirpath={out / 'asr' / 'checkpoints'}",
            *overrides,
        ]
    )
    ckpt = cli.trainer.checkpoint_callback.best_model_path or cli.trainer.checkpoint_callback.last_model_path
    tuned = package_checkpoint(
        ckpt, out / "asr" / "asr-finetuned.ckpt", base=base, base_weight=FINETUNE_BASE_WEIGHT
    )
    log.info(
        "packaged %s with its weights %.0f %% of the way back to the base", tuned, 100 * FINETUNE_BASE_WEIGHT
    )
    export = export_asr(tuned, out / "export" / "asr", int8=True, corpus=corpus)
    report = evaluate_asr(export["onnx"], corpus, out / "eval" / "asr", split="test")
    lm = build_lm([corpus], export["onnx"], out / "export" / "asr" / "lm.json")
    fused = evaluate_asr(export["onnx"], corpus, out / "eval" / "asr-lm", split="test", beam=8, lm=lm)
    report["with_lm"] = {k: fused[k] for k in ("cer", "decoding", "utterances")} | {"lm": str(lm)}
    log.info("ASR test CER (held-out voices and templates, 8 kHz): %.4f greedy", report["cer"])
    log.info("ASR test CER with the corpus's n-gram: %.4f (%s)", fused["cer"], fused["decoding"])
    return report


def run_quickstart(
    out: Path,
    preset: str = "small",
    seed: int = 0,
    workers: int | None = None,
    tracking_uri: str | None = None,
) -> None:
    """The stages in order; ``tracking_uri``: where the models are registered (default: the project's
    store, where the training runs are too)."""
    corpus = out / "corpus"
    if _reusable(corpus, preset=preset, seed=seed, generator_version=GENERATOR_VERSION):
        log.info("reusing the %s corpus in %s", preset, corpus)
    else:
        log.info("stage 1/6: generating the %s synthetic corpus in %s", preset, corpus)
        generate_corpus(
            load_synth_config(preset_path(preset)), corpus, seed=seed, workers=workers, overwrite=True
        )
    stats, _ = corpus_stats_report(corpus, out / "corpus-stats")
    render_stats(stats, make_console())
    log.info("corpus report: %s", out / "corpus-stats" / "report.html")
    summary: dict = {"corpus": str(corpus)}
    asr = asr_stage(corpus, out)
    if asr is not None:
        summary["asr"] = {"test_cer": asr["cer"], "test_cer_lm": asr["with_lm"]["cer"]}
    log.info("stage 3/6: speech emotion on %s", corpus)
    from callqa.training.ser_cli import ser_stage

    ser = ser_stage(corpus, out / "ser")
    summary["ser"] = {k: ser["metrics"][k] for k in ("ua", "wa", "macro_f1")} | {"turns": ser["turns"]}
    if asr is not None:
        log.info("stage 4/6: whole calls through the pipeline")
        from callqa.serving.asr_onnx import load_asr
        from callqa.serving.ser_onnx import load_ser
        from callqa.serving.vad import load_vad

        models = load_asr(asr["model"]), load_vad("energy"), load_ser(out / "ser" / "export" / "ser.onnx")
        summary["pipeline"] = call_stage(corpus, out, CallPipeline(*models, raw=True))
        summary["asr"]["handwritten_cer_lm"] = handwritten_with_lm(asr, out)
        log.info("stage 5/6: judging calls by the rubric and measuring against the inspectors")
        from callqa.data.rubric import load_rubric
        from callqa.qa.rules import RuleSet
        from callqa.quickstart_qa import qa_stage

        # QA listens greedily. The corpus's n-gram lowers the call CER (dev: 0.220 -> 0.151) but pulls
        # wording it never counted towards wording it did: held-out forbidden sentences and read-out
        # numbers vanish, and the judged totals get worse (bench/RESULTS.md, "Judging calls").
        # ... and spots the rubric's phrases in the posteriors, which finds what the best path garbled
        phrases = RuleSet(load_rubric()).phrases()
        listen = CallPipeline(*models, raw=True, keywords=models[0].spotter(phrases))
        summary["qa"] = qa_stage(corpus, out, listen, seed=seed)
        log.info("stage 6/6: promoting the models, serving the champions, scoring calls over HTTP")
        summary["serve"] = serve(out, corpus, tracking_uri or default_tracking_uri())
    write_json(out / "summary.json", summary)
    log.info("figures of this run: %s", out / "summary.json")


def serve(out: Path, corpus: Path, tracking_uri: str) -> dict:
    """Stage 6 on this run's models and reports (the folders the stages before wrote)."""
    from callqa.quickstart_serve import Candidate, serve_stage

    candidates = [
        Candidate("asr", out / "export" / "asr", out / "eval" / "asr" / "asr_eval.json"),
        Candidate("ser", out / "ser" / "export", out / "ser" / "eval" / "metrics.json"),
        Candidate("qa", out / "qa" / "qa-linear.json", out / "qa" / "eval" / "qa_eval.json"),
    ]
    report = json.loads((out / "qa" / "eval" / "qa_eval.json").read_text(encoding="utf-8"))
    return serve_stage(out, candidates, corpus, out / "qa-eval", report, tracking_uri)


def handwritten_with_lm(asr: dict, out: Path) -> float:
    """The hand-written set turn by turn with the corpus's n-gram fused into beam search, as the test
    split is scored: how much of its error a language model of the generator's text takes back."""
    from callqa.evaluation.asr_eval import evaluate_asr

    lm = asr["with_lm"]["lm"]
    fused = evaluate_asr(asr["model"], out / "handwritten", out / "eval" / "handwritten-lm", beam=8, lm=lm)
    log.info("hand-written set CER with the corpus's n-gram: %.4f (%s)", fused["cer"], fused["decoding"])
    return fused["cer"]


def call_stage(corpus: Path, out: Path, pipeline: CallPipeline, handwritten: Path | None = None) -> dict:
    """Test calls and the hand-written set (``handwritten``: another dialogues YAML in its place) through
    ``pipeline``, built with ``raw=True`` so masked digits do not count as errors; prints two test calls'
    turn tables and returns the figures."""
    from callqa.data.synth.handwritten import HANDWRITTEN_VERSION, render_handwritten
    from callqa.evaluation.pipeline_eval import evaluate_pipeline
    from callqa.serving.timeline import turn_table

    test = evaluate_pipeline(pipeline, corpus, "test")
    console = make_console()
    for result in test.results[:2]:
        for line in turn_table(result):
            console.print(line, markup=False, highlight=False)
    hand_dir = out / "handwritten"
    if handwritten is not None or not _reusable(hand_dir, handwritten_version=HANDWRITTEN_VERSION):
        render_handwritten(hand_dir, overwrite=True, path=handwritten)
    hand = evaluate_pipeline(pipeline, hand_dir, "test")
    figures = {"test": test.summary(), "handwritten": hand.summary()}
    log.info(
        "pipeline CER on the test calls: %.4f (per utterance %.4f); turn start/end error median %.3f/%.3f s",
        test.pipeline_cer,
        test.utterance_cer,
        figures["test"]["start_error_median"],
        figures["test"]["end_error_median"],
    )
    log.info(
        "hand-written set CER: %.4f turn by turn, %.4f through the pipeline",
        hand.utterance_cer,
        hand.pipeline_cer,
    )
    return figures
