"""``callqa quickstart``: the main job end to end on the synthetic corpus.

1. Generate the small corpus (reused when one with the same preset, seed and generator version is
   there) and report its statistics.
2. ASR: fine-tune the shipped base checkpoint on it, export to ONNX with the parity gate, count a
   character n-gram over its training text, and report the held-out (test voices and templates) CER,
   greedy and with the n-gram fused into beam search. Skipped, with a message, without a base.
Later stages add emotion, QA scoring, serving and evaluation.
"""

from __future__ import annotations

import logging
from importlib import resources
from pathlib import Path

from callqa.data.corpus import Corpus, CorpusError
from callqa.data.synth.config import load_synth_config, preset_path
from callqa.data.synth.generate import GENERATOR_VERSION, generate_corpus
from callqa.evaluation.corpus_report import corpus_stats_report, render_stats
from callqa.logs import make_console

log = logging.getLogger(__name__)


def _reusable(corpus: Path, preset: str, seed: int) -> bool:
    try:
        info = Corpus(corpus).info
    except CorpusError:  # none there yet
        return False
    return (info.get("preset"), info.get("seed"), info.get("generator_version")) == (
        preset,
        seed,
        GENERATOR_VERSION,
    )


BASE_ASR = Path(str(resources.files("callqa.models") / "asr" / "base" / "asr-base.ckpt"))


def asr_stage(corpus: Path, out: Path, base: Path = BASE_ASR, overrides: tuple[str, ...] = ()) -> dict | None:
    """Fine-tune, export and evaluate the ASR model; None when there is no base checkpoint to start from.

    ``overrides`` are extra ``--section.key=value`` training arguments (tests shrink the run with them).
    """
    if not base.exists():
        log.warning(
            "ASR stage skipped: no base checkpoint at %s yet (made by configs/asr/base-cpu.yaml)", base
        )
        return None
    log.info("stage 2/2: fine-tuning the base ASR checkpoint %s on %s", base, corpus)
    from callqa.evaluation.asr_eval import evaluate_asr
    from callqa.serving.export_report import export_asr
    from callqa.training.asr_cli import train_asr
    from callqa.training.lm import build_lm

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
    export = export_asr(ckpt, out / "export" / "asr", int8=True, corpus=corpus)
    report = evaluate_asr(export["onnx"], corpus, out / "eval" / "asr", split="test")
    lm = build_lm([corpus], export["onnx"], out / "export" / "asr" / "lm.json")
    fused = evaluate_asr(export["onnx"], corpus, out / "eval" / "asr-lm", split="test", beam=8, lm=lm)
    report["with_lm"] = {k: fused[k] for k in ("cer", "decoding", "utterances")}
    log.info("ASR test CER (held-out voices and templates, 8 kHz): %.4f greedy", report["cer"])
    log.info("ASR test CER with the corpus's n-gram: %.4f (%s)", fused["cer"], fused["decoding"])
    return report


def run_quickstart(out: Path, preset: str = "small", seed: int = 0, workers: int | None = None) -> None:
    corpus = out / "corpus"
    if _reusable(corpus, preset, seed):
        log.info("reusing the %s corpus in %s", preset, corpus)
    else:
        log.info("stage 1/2: generating the %s synthetic corpus in %s", preset, corpus)
        generate_corpus(
            load_synth_config(preset_path(preset)), corpus, seed=seed, workers=workers, overwrite=True
        )
    stats, _ = corpus_stats_report(corpus, out / "corpus-stats")
    render_stats(stats, make_console())
    log.info("corpus report: %s", out / "corpus-stats" / "report.html")
    asr_stage(corpus, out)
