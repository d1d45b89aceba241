"""The ``callqa`` command line: one entry, a subcommand per job."""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Annotated

import typer

from callqa import __version__
from callqa.logs import make_console, setup_logging
from callqa.models.asr.decoding import LENGTH_BONUS, LM_WEIGHT
from callqa.paths import default_tracking_uri, runs_dir

log = logging.getLogger("callqa")

LmOption = Annotated[
    Path | None, typer.Option(help="Character n-gram from callqa train lm, fused into beam search.")
]
LmWeightOption = Annotated[float, typer.Option(help="Weight of the language model's log-probability.")]
LengthBonusOption = Annotated[float, typer.Option(help="Nats per output character, against short output.")]
VadOption = Annotated[str, typer.Option(help="Voice activity: energy, or silero (ONNX).")]
MaxSegmentOption = Annotated[float, typer.Option(help="Longest stretch of audio the ASR is given (s).")]
AgentChannelOption = Annotated[int, typer.Option(help="Stereo channel the agent is on (0 or 1).")]
BeamOption = Annotated[int, typer.Option(help="Beam width (1 = greedy).")]
RulesRubricOption = Annotated[
    Path | None,
    typer.Option(
        help="Rubric whose rules judge the calls (same items as the corpus's; default: the corpus's own "
        "rubric.yaml, a snapshot from when it was generated)."
    ),
]
HotwordOption = Annotated[list[str] | None, typer.Option(help="Domain word to favour; repeatable.")]
ThreadsOption = Annotated[int | None, typer.Option(help="onnxruntime threads.")]
SerModelOption = Annotated[Path | None, typer.Option(help="Speech-emotion ONNX file (emotion rules).")]
RubricFileOption = Annotated[Path | None, typer.Option(help="Rubric YAML (default: the packaged one).")]
RawOption = Annotated[bool, typer.Option(help="Leave phone, ID and card numbers unmasked.")]

app = typer.Typer(
    name="callqa",
    help="Quality inspection (智能质检) for Chinese call-centre calls: data, training, export, serving.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
corpus_app = typer.Typer(help="Look inside a corpus folder (synthetic or real).", no_args_is_help=True)
app.add_typer(corpus_app, name="corpus")
export_app = typer.Typer(
    help="Export a trained model to ONNX with parity and int8 checks.", no_args_is_help=True
)
app.add_typer(export_app, name="export")
evaluate_app = typer.Typer(help="Evaluate a model on a corpus split, with reports.", no_args_is_help=True)
app.add_typer(evaluate_app, name="evaluate")
train_app = typer.Typer(help="Train a model (Lightning, tracked in MLflow).", no_args_is_help=True)
app.add_typer(train_app, name="train")


def _version(value: bool) -> None:
    if value:
        typer.echo(f"callqa {__version__}")
        raise typer.Exit()


@app.callback()
def main_options(
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Debug logging.")] = False,
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version and exit.")
    ] = False,
) -> None:
    setup_logging(verbose)


@app.command()
def synth(
    out: Annotated[Path, typer.Option("--out", "-o", help="Corpus folder to create.")],
    preset: Annotated[
        str, typer.Option(help="tiny (tests, seconds) | small (quickstart) | large (GPU).")
    ] = "tiny",
    config: Annotated[Path | None, typer.Option(help="A synth YAML instead of a preset.")] = None,
    seed: Annotated[int, typer.Option(help="Same seed, same corpus, byte for byte.")] = 0,
    workers: Annotated[int | None, typer.Option(help="Processes (default: all cores).")] = None,
    calls: Annotated[int | None, typer.Option(help="Override the number of calls.")] = None,
    coverage: Annotated[int | None, typer.Option(help="Override the number of coverage sentences.")] = None,
    rubric: Annotated[
        Path | None, typer.Option(help="Rubric YAML (default: configs/rubric/default.yaml).")
    ] = None,
    mono_fraction: Annotated[
        float | None, typer.Option(help="Share of calls stored as a mono mix instead of stereo.")
    ] = None,
    random_voices: Annotated[
        float | None,
        typer.Option(help="Share of training speakers given a made-up espeak timbre (dev/test: never)."),
    ] = None,
    natural_coverage: Annotated[
        float | None,
        typer.Option(help="Share of coverage sentences taken from real written Chinese, not random words."),
    ] = None,
    overwrite: Annotated[bool, typer.Option(help="Replace an existing corpus folder.")] = False,
) -> None:
    """Generate the synthetic call corpus: stereo 8 kHz calls, utterances, coverage sentences, inspections."""
    from callqa.data.synth.config import load_synth_config, preset_path
    from callqa.data.synth.generate import generate_corpus

    cfg = load_synth_config(
        config or preset_path(preset),
        calls=calls,
        coverage_sentences=coverage,
        mono_fraction=mono_fraction,
        random_voice_rate=random_voices,
        natural_coverage_rate=natural_coverage,
    )
    info = generate_corpus(cfg, out, seed=seed, workers=workers, rubric_path=rubric, overwrite=overwrite)
    c = info["counts"]
    log.info(
        "%d calls (%.2f h), %d utterances, %d coverage sentences -> %s",
        c["calls"],
        c["call_hours"],
        c["utterances"],
        c["coverage_sentences"],
        out,
    )


@app.command("synth-handwritten")
def synth_handwritten(
    out: Annotated[Path, typer.Option("--out", "-o", help="Corpus folder to create.")],
    seed: Annotated[int, typer.Option(help="Same seed, same folder, byte for byte.")] = 0,
    workers: Annotated[int | None, typer.Option(help="Processes (default: all cores).")] = None,
    overwrite: Annotated[bool, typer.Option(help="Replace an existing folder.")] = False,
    name: Annotated[
        str,
        typer.Option(
            "--set", help="gen-dev: turns for ASR; qa-calls: whole calls labelled by the rubric, for QA."
        ),
    ] = "gen-dev",
) -> None:
    """Render a hand-written evaluation set (held-out voices, split test; never train or tune on it)."""
    if name == "gen-dev":
        from callqa.data.synth.handwritten import render_handwritten as render
    elif name == "qa-calls":
        from callqa.data.synth.handwritten_calls import render_labelled_calls as render
    else:
        raise typer.BadParameter(f"{name!r}: use gen-dev or qa-calls", param_hint="--set")
    c = render(out, seed=seed, workers=workers, overwrite=overwrite)["counts"]
    log.info(
        "%d calls, %d utterances, %d industries -> %s", c["calls"], c["utterances"], c["industries"], out
    )


@corpus_app.command("stats")
def corpus_stats(
    corpus: Annotated[Path, typer.Argument(help="Corpus folder (with calls.jsonl).")],
    out: Annotated[
        Path | None,
        typer.Option(help="Where to write stats.json, PNGs and report.html (default: CORPUS/stats)."),
    ] = None,
) -> None:
    """Counts, hours, defect rates, emotion mix, inspector bias and agreement: table, PNG plots, HTML."""
    from callqa.evaluation.corpus_report import corpus_stats_report, render_stats

    stats, files = corpus_stats_report(corpus, out)
    render_stats(stats, make_console())
    log.info("wrote %d files to %s", len(files), out or corpus / "stats")


#: Training commands hand every argument, --help included, to their LightningCLI parser, whose help
#: lists the trainer's, model's and data's options (typer's would show none of them).
LIGHTNING_ARGS = {"allow_extra_args": True, "ignore_unknown_options": True, "help_option_names": []}


@train_app.command("asr", context_settings=LIGHTNING_ARGS, add_help_option=False)
def train_asr_command(ctx: typer.Context) -> None:
    """Train the Conformer-CTC ASR model: --config configs/asr/NAME.yaml [--section.key=value ...].

    Arguments go to LightningCLI: further --section.key=value ones override the config, for example
    --trainer.max_epochs=3 or --data.batch_seconds=60; --help lists them all.
    """
    from callqa.training.asr_cli import train_asr

    train_asr(ctx.args)


@export_app.command("asr")
def export_asr_command(
    checkpoint: Annotated[Path, typer.Argument(help="A checkpoint from callqa train asr.")],
    out: Annotated[Path, typer.Option(help="Folder for asr.onnx, asr.int8.onnx and export.json.")] = Path(
        "runs/export/asr"
    ),
    int8: Annotated[bool, typer.Option(help="Also write a dynamically quantised int8 model.")] = True,
    corpus: Annotated[
        Path | None, typer.Option(help="Corpus whose test utterances measure the int8 CER change.")
    ] = None,
    limit: Annotated[int, typer.Option(help="Test utterances to decode for the CER comparison.")] = 200,
    tracking_uri: Annotated[
        str | None,
        typer.Option(
            help="MLflow store to log to (default: the checkpoint's own when its run is there, "
            "else sqlite:///runs/mlflow.db)."
        ),
    ] = None,
) -> None:
    """Export to ONNX (dynamic batch and time, self-describing), check parity, quantise to int8."""
    from callqa.export.asr_report import export_asr

    report = export_asr(checkpoint, out, int8=int8, corpus=corpus, limit=limit, tracking_uri=tracking_uri)
    if not report["parity"]["passed"]:
        raise typer.Exit(1)


@evaluate_app.command("asr")
def evaluate_asr_command(
    model: Annotated[Path, typer.Argument(help="An ASR ONNX file from callqa export asr.")],
    corpus: Annotated[Path, typer.Option(help="Corpus folder.")],
    split: Annotated[str, typer.Option(help="Which split to score.")] = "test",
    out: Annotated[Path | None, typer.Option(help="Report folder (default: runs/eval/asr-MODEL).")] = None,
    limit: Annotated[int | None, typer.Option(help="Score at most this many utterances.")] = None,
    beam: BeamOption = 1,
    tracking_uri: Annotated[
        str | None, typer.Option(help="MLflow tracking URI to log to (e.g. sqlite:///runs/mlflow.db).")
    ] = None,
    hotword: Annotated[
        list[str] | None,
        typer.Option(help="Domain word: measure beam search with vs without biasing. Repeatable."),
    ] = None,
    lm: LmOption = None,
    lm_weight: LmWeightOption = LM_WEIGHT,
    length_bonus: LengthBonusOption = LENGTH_BONUS,
) -> None:
    """CER overall and by SNR, speaking rate, emotion, speaker and voice; worst utterances; HTML report."""
    from callqa.evaluation.asr_eval import evaluate_asr

    evaluate_asr(
        model,
        corpus,
        out or runs_dir() / "eval" / f"asr-{model.stem}",
        split=split,
        limit=limit,
        beam=beam,
        tracking_uri=tracking_uri,
        hotwords=hotword,
        lm=lm,
        lm_weight=lm_weight,
        length_bonus=length_bonus,
    )


@evaluate_app.command("qa")
def evaluate_qa_command(
    model: Annotated[
        Path, typer.Argument(help="A QA model: JSON from callqa train qa, or ONNX from callqa export qa.")
    ],
    corpus: Annotated[Path, typer.Option(help="Corpus folder with inspected calls.")],
    heard: Annotated[Path, typer.Option(help="What the pipeline heard: callqa score CORPUS --raw output.")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Report folder.")] = Path("runs/eval/qa"),
    split: Annotated[str, typer.Option(help="train, dev, test or all.")] = "test",
    n_boot: Annotated[int, typer.Option(help="Bootstrap resamples per interval.")] = 1000,
    tracking_uri: Annotated[str | None, typer.Option(help="MLflow tracking URI to log to.")] = None,
    rubric: RulesRubricOption = None,
) -> None:
    """Judge a split's calls from what the pipeline heard and compare with the inspectors' consensus,
    each inspector, and the ground truth; HTML report with plots."""
    from callqa.evaluation.qa_eval import evaluate_qa

    report = evaluate_qa(corpus, heard, model, out, split, n_boot, tracking_uri, rubric)
    t = report["totals"].get("model_vs_consensus")
    if t:
        typer.echo(
            f"total QWK vs consensus {t['qwk'][0]:.3f} [{t['qwk'][1]:.3f}, {t['qwk'][2]:.3f}]; "
            f"mean inspector QWK {report['totals'].get('mean_inspector_qwk')}"
        )
    typer.echo(f"report: {Path(out) / 'report.html'}")


@evaluate_app.command("ser")
def evaluate_ser_command(
    model: Annotated[Path, typer.Argument(help="A SER ONNX file from callqa export ser.")],
    corpus: Annotated[Path, typer.Option(help="Corpus folder.")],
    split: Annotated[str, typer.Option(help="Which split to score.")] = "test",
    out: Annotated[Path | None, typer.Option(help="Report folder (default: runs/eval/ser-MODEL).")] = None,
    threads: ThreadsOption = None,
) -> None:
    """UA, WA, macro-F1, per-class recall, confusion PNG, ECE and coverage at the uncertain threshold."""
    from callqa.evaluation.ser_eval import evaluate_ser

    out = out or runs_dir() / "eval" / f"ser-{model.stem}"
    evaluate_ser(model, corpus, out, split=split, threads=threads)


@export_app.command("ser")
def export_ser_command(
    checkpoint: Annotated[Path, typer.Argument(help="A checkpoint from callqa train ser.")],
    out: Annotated[Path, typer.Option(help="Folder for ser.onnx, ser.int8.onnx and export.json.")] = Path(
        "runs/export/ser"
    ),
    corpus: Annotated[
        Path | None,
        typer.Option(help="Corpus: dev calibrates (temperature, threshold), test gates parity and int8."),
    ] = None,
    int8: Annotated[bool, typer.Option(help="Also write a dynamically quantised int8 model.")] = True,
) -> None:
    """Export SER to ONNX (dynamic batch and time, metadata inside), calibrate, check parity, int8."""
    from callqa.export.ser import export_ser

    report = export_ser(checkpoint, out, corpus=corpus, int8=int8)
    if not report["parity"]["passed"]:
        raise typer.Exit(1)


@export_app.command("qa")
def export_qa_command(
    checkpoint: Annotated[Path, typer.Argument(help="A checkpoint from callqa train qa-turns.")],
    out: Annotated[Path, typer.Option(help="Folder for qa.onnx and export.json.")] = Path("runs/export/qa"),
    corpus: Annotated[
        Path | None, typer.Option(help="Corpus whose heard calls also gate parity (with --heard).")
    ] = None,
    heard: Annotated[
        Path | None, typer.Option(help="What the pipeline heard in --corpus (score --raw).")
    ] = None,
) -> None:
    """Export the neural QA model to ONNX (dynamic batch, turns and characters; everything it needs in
    the file) and check parity."""
    from callqa.export.qa import export_qa

    report = export_qa(checkpoint, out, corpus=corpus, heard=heard)
    if not report["parity"]["passed"]:
        raise typer.Exit(1)


@app.command()
def transcribe(
    files: Annotated[
        list[Path], typer.Argument(help="Call recordings (WAV, FLAC, OGG, MP3, ...): mono, or stereo.")
    ],
    model: Annotated[
        Path, typer.Option("--model", "-m", help="An ASR ONNX file (CTC, or a Whisper encoder).")
    ],
    emotion: Annotated[bool, typer.Option(help="Speech emotion per turn (needs --ser-model).")] = False,
    ser_model: Annotated[Path | None, typer.Option(help="A speech-emotion ONNX file.")] = None,
    output: Annotated[
        str, typer.Option("--format", help="text: a turn table per call; jsonl: one result per line.")
    ] = "text",
    vad: VadOption = "energy",
    max_segment: MaxSegmentOption = 15.0,
    agent_channel: AgentChannelOption = 0,
    raw: Annotated[bool, typer.Option(help="Print phone, ID and card numbers unmasked.")] = False,
    beam: BeamOption = 1,
    hotword: HotwordOption = None,
    threads: ThreadsOption = None,
    lm: LmOption = None,
    lm_weight: LmWeightOption = LM_WEIGHT,
    length_bonus: LengthBonusOption = LENGTH_BONUS,
) -> None:
    """Listen to whole calls on onnxruntime only: who spoke when, what they said (and how, with
    --emotion), with the silences and overlaps between the speakers. A file that is not a usable call
    recording is reported on one line and the rest still go through; the exit code is 1 if any failed."""
    import json

    from callqa.data.constants import AGENT, CUSTOMER
    from callqa.serving.timeline import turn_table

    if output not in ("text", "jsonl"):
        raise typer.BadParameter(f"{output!r}: use text or jsonl", param_hint="--format")
    _check_channel(agent_channel)
    if emotion and ser_model is None:
        raise typer.BadParameter("--emotion needs --ser-model SER.onnx", param_hint="--ser-model")
    ser = ser_model if emotion else None
    pipeline = _pipeline_spec(
        model, ser, vad, max_segment, beam, hotword, threads, lm, lm_weight, length_bonus, raw
    ).build()
    speakers = {AGENT: agent_channel, CUSTOMER: 1 - agent_channel}
    failed = 0
    for path in files:
        try:
            result = pipeline.run_file(path, speakers=speakers)
        except (OSError, ValueError) as err:
            message = " ".join(str(err).split())
            typer.echo(f"error: {message if str(path) in message else f'{path}: {message}'}", err=True)
            failed += 1
            continue
        for warning in result.warnings:
            log.warning("%s: %s", path, warning)
        if output == "jsonl":
            typer.echo(json.dumps(result.to_json(), ensure_ascii=False))
        else:
            typer.echo("\n".join(turn_table(result)))
    if failed:
        raise typer.Exit(1)


def _check_channel(agent_channel: int) -> None:
    if agent_channel not in (0, 1):
        raise typer.BadParameter(f"{agent_channel}: use 0 or 1", param_hint="--agent-channel")


def _pipeline_spec(
    model: Path,
    ser_model: Path | None,
    vad: str,
    max_segment: float,
    beam: int,
    hotword: list[str] | None,
    threads: int | None,
    lm: Path | None,
    lm_weight: float,
    length_bonus: float,
    raw: bool,
):
    """The call pipeline that transcribe, score and serve share, from their common options."""
    from callqa.serving.spec import PipelineSpec

    hotwords = tuple(hotword or ())
    return PipelineSpec(
        model, ser_model, vad, max_segment, beam, hotwords, threads, lm, lm_weight, length_bonus, raw
    )


@app.command()
def score(
    inputs: Annotated[
        list[Path],
        typer.Argument(help="Recordings, folders of them, or a calls.jsonl (or a corpus folder with one)."),
    ],
    out: Annotated[Path, typer.Option("--out", "-o", help="Results, one JSON record per call.")],
    model: Annotated[
        Path | None,
        typer.Option("--model", "-m", help="ASR ONNX file; without one a calls.jsonl is judged by its text."),
    ] = None,
    ser_model: SerModelOption = None,
    qa_model: Annotated[
        Path | None,
        typer.Option(
            help="QA model: JSON from callqa train qa, or ONNX from callqa export qa; without one the "
            "rules alone decide."
        ),
    ] = None,
    rubric: RubricFileOption = None,
    errors: Annotated[Path | None, typer.Option(help="List of failed calls (OUT.errors.jsonl).")] = None,
    raw: RawOption = False,
    vad: VadOption = "energy",
    max_segment: MaxSegmentOption = 15.0,
    agent_channel: AgentChannelOption = 0,
    beam: BeamOption = 1,
    hotword: HotwordOption = None,
    threads: ThreadsOption = None,
    lm: LmOption = None,
    lm_weight: LmWeightOption = LM_WEIGHT,
    length_bonus: LengthBonusOption = LENGTH_BONUS,
    spot: Annotated[
        bool,
        typer.Option(
            help="Spot the rubric's phrases in the ASR posteriors, not only the best-path text (CTC models)."
        ),
    ] = True,
    ray: Annotated[
        str | None,
        typer.Option(
            help="Score on Ray Data: '' for a local Ray, or a cluster ADDRESS (ray://host:10001); needs the "
            "ray extra."
        ),
    ] = None,
    ray_workers: Annotated[int, typer.Option(help="Scoring actors on Ray, each with its own sessions.")] = 2,
) -> None:
    """Judge whole calls by the rubric: turns, emotions, rule events with their evidence, item scores,
    total, band and fatal items, one record per call. Resumes an interrupted run; a bad call goes to
    the errors file and the rest go on (exit code 1 if any failed)."""
    from callqa.serving.score import score_batch
    from callqa.serving.spec import ScorerSpec

    _check_channel(agent_channel)
    pipeline = None
    if model is not None:
        pipeline = _pipeline_spec(
            model, ser_model, vad, max_segment, beam, hotword, threads, lm, lm_weight, length_bonus, raw=True
        )
    spec = ScorerSpec(pipeline, rubric, qa_model, raw, agent_channel, spot)
    if ray is not None:
        from callqa.serving.score_ray import score_batch_ray

        report = score_batch_ray(
            spec, inputs, out, errors, from_text=model is None, address=ray or None, workers=ray_workers
        )
    else:
        report = score_batch(spec.build(), inputs, out, errors, from_text=model is None)
    log.info(
        "%d call(s) scored into %s%s",
        report.scored,
        report.out,
        f", {report.skipped} kept from an interrupted run" if report.skipped else "",
    )
    if report.not_judged:
        log.warning("%d call(s) had no speech to judge (judged: false in %s)", report.not_judged, report.out)
    if report.failed:
        typer.echo(f"error: {report.failed} call(s) failed; see {report.errors}", err=True)
        raise typer.Exit(1)


@app.command()
def promote(
    kind: Annotated[str, typer.Argument(help="asr, ser or qa.")],
    export: Annotated[
        Path, typer.Argument(help="The export folder (with export.json), or a transparent QA model's JSON.")
    ],
    evaluation: Annotated[
        Path,
        typer.Option(
            "--eval", help="The model's evaluation report: asr_eval.json, metrics.json, qa_eval.json."
        ),
    ],
    name: Annotated[str | None, typer.Option(help="Registered model name (default callqa-KIND).")] = None,
    tracking_uri: Annotated[
        str | None, typer.Option(help="MLflow tracking URI (default: the project's runs/mlflow.db).")
    ] = None,
    int8_bound: Annotated[float, typer.Option(help="What int8 may cost on the test set.")] = 0.01,
    tolerance: Annotated[
        float, typer.Option(help="How much worse a metric without an interval may be.")
    ] = 0.005,
) -> None:
    """Register a model in the MLflow Model Registry and make it the champion only if every gate
    passes: export parity, the int8 cost, and no worse than the current champion on the same
    evaluation set. Exit code 1 when refused; the reasons are logged and tagged on the version."""
    from callqa.export.promote import promote as promote_model

    decision, version = promote_model(
        kind, export, evaluation, tracking_uri or default_tracking_uri(), name, int8_bound, tolerance
    )
    typer.echo(
        f"{name or 'callqa-' + kind} version {version}: {'champion' if decision.promote else 'refused'}"
    )
    for reason in decision.reasons:
        typer.echo(f"  {reason}")
    if not decision.promote:
        raise typer.Exit(1)


@app.command()
def serve(
    model: Annotated[Path, typer.Option("--model", "-m", help="ASR ONNX file, or models:/NAME@champion.")],
    ser_model: SerModelOption = None,
    qa_model: Annotated[
        Path | None, typer.Option(help="QA model (JSON or ONNX); without one the rules alone decide.")
    ] = None,
    rubric: RubricFileOption = None,
    host: Annotated[
        str, typer.Option(help="Address to bind; loopback unless asked otherwise.")
    ] = "127.0.0.1",
    port: Annotated[int, typer.Option()] = 8000,
    api_key: Annotated[
        str | None, typer.Option(envvar="CALLQA_API_KEY", help="Key every request but health must carry.")
    ] = None,
    max_upload_mb: Annotated[float, typer.Option(help="Largest upload accepted.")] = 200.0,
    max_call_minutes: Annotated[float, typer.Option(help="Longest recording accepted.")] = 120.0,
    max_concurrent: Annotated[int, typer.Option(help="Calls scored at once.")] = 2,
    max_queue: Annotated[int, typer.Option(help="Calls waiting for a worker; one more gets 429.")] = 8,
    timeout: Annotated[float, typer.Option(help="Seconds a call may take before a 504.")] = 600.0,
    raw: RawOption = False,
    tracking_uri: Annotated[
        str | None, typer.Option(help="MLflow store for models:/NAME@champion (default: runs/mlflow.db).")
    ] = None,
    vad: VadOption = "energy",
    max_segment: MaxSegmentOption = 15.0,
    agent_channel: AgentChannelOption = 0,
    beam: BeamOption = 1,
    threads: ThreadsOption = None,
) -> None:
    """Serve the scoring pipeline over HTTP: POST /v1/calls:score with a recording returns what callqa
    score writes for it; /v2 has the Open Inference Protocol's health and model metadata. The models
    load once, here. Stops on Ctrl-C or SIGTERM after the calls in flight finish."""
    import tempfile

    import uvicorn

    from callqa.serving.app import Limits, create_app
    from callqa.serving.registry import resolve
    from callqa.serving.spec import ScorerSpec

    _check_channel(agent_channel)
    uri = tracking_uri or default_tracking_uri()
    # one onnxruntime thread pool per worker share of the cores: on 2 cores with 2 workers, one thread
    # each scored 2.5 call-minutes a wall-second where the default (every core each) scored 1.8
    threads = threads or max(1, (os.cpu_count() or 1) // max_concurrent)
    # registry models are fetched to a folder that lives only while they load: the sessions hold them
    with tempfile.TemporaryDirectory(prefix="callqa-models-") as fetched:
        sources: dict[str, str] = {}
        model, sources["asr"] = resolve(model, "asr", uri, Path(fetched))
        if ser_model:
            ser_model, sources["ser"] = resolve(ser_model, "ser", uri, Path(fetched))
        if qa_model:
            qa_model, sources["qa"] = resolve(qa_model, "qa", uri, Path(fetched))
        pipeline = _pipeline_spec(
            model, ser_model, vad, max_segment, beam, None, threads, None, 0.0, 0.0, raw=True
        )
        spec = ScorerSpec(pipeline, rubric, qa_model, raw, agent_channel, True, tuple(sources.items()))
        scorer = spec.build()
    limits = Limits(max_upload_mb, max_call_minutes, max_concurrent, max_queue, timeout)
    app_ = create_app(scorer, limits, api_key)
    log.info(
        "serving %s on http://%s:%d (API key %s)",
        ", ".join(scorer.model_infos(True)),
        host,
        port,
        "required" if api_key else "off",
    )
    uvicorn.run(app_, host=host, port=port, log_level="info", timeout_graceful_shutdown=int(timeout))


@train_app.command("whisper", context_settings=LIGHTNING_ARGS, add_help_option=False)
def train_whisper_command(ctx: typer.Context) -> None:
    """Fine-tune a local pretrained Whisper: --config configs/asr/whisper-finetune.yaml [overrides, --help
    as for train asr]."""
    from callqa.training.asr_cli import train_whisper

    train_whisper(ctx.args)


@train_app.command("ser", context_settings=LIGHTNING_ARGS, add_help_option=False)
def train_ser_command(ctx: typer.Context) -> None:
    """Train a speech-emotion model: --config configs/ser/quickstart.yaml [overrides, --help as for
    train asr, e.g. --data.corpora=[DIR]]."""
    from callqa.training.ser_cli import train_ser

    train_ser(ctx.args)


@train_app.command("qa-turns", context_settings=LIGHTNING_ARGS, add_help_option=False)
def train_qa_turns_command(
    ctx: typer.Context,
    out: Annotated[
        Path, typer.Option(help="The cross-fitted ensemble checkpoint (its folds beside it).")
    ] = Path("runs/qa/turns/qa-turns.ckpt"),
) -> None:
    """Train the neural QA model over the heard turns, one model per fold, calibrated out of fold:
    --config configs/qa/turns.yaml [overrides, --help as for train asr, e.g. --data.corpus=DIR
    --data.heard=HEARD.jsonl]."""
    from callqa.training.qa_turns_cli import train_qa_turns

    train_qa_turns(ctx.args, out)


@train_app.command("qa")
def train_qa_command(
    corpus: Annotated[Path, typer.Option(help="Corpus folder with inspected calls.")],
    heard: Annotated[Path, typer.Option(help="What the pipeline heard: callqa score CORPUS --raw output.")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Where to write the model (JSON).")],
    split: Annotated[str, typer.Option(help="Calls to learn from: train, dev, test or all.")] = "train",
    labels: Annotated[
        str, typer.Option(help="resolved (Dawid-Skene, re-checks, appeals) or first (first sheet only).")
    ] = "resolved",
    c: Annotated[
        float | None,
        typer.Option(
            "--c", help="Inverse L2 strength of every item's regression (default: chosen per item)."
        ),
    ] = None,
    seed: Annotated[int, typer.Option(help="Seed of the cross-validation folds.")] = 0,
    tracking_uri: Annotated[str | None, typer.Option(help="MLflow tracking URI to log to.")] = None,
    rubric: RulesRubricOption = None,
) -> None:
    """Train the transparent QA model: per rubric item a calibrated logistic regression over the rule
    evidence and timeline features of what the pipeline heard, on inspector labels."""
    from callqa.training.qa_train import train_qa

    train_qa(corpus, heard, out, split, labels, c, seed, tracking_uri, rubric)


@train_app.command("lm")
def train_lm_command(
    corpus: Annotated[list[Path], typer.Option(help="Corpus folder; repeatable.")],
    model: Annotated[
        Path, typer.Option(help="The ASR model (.onnx or .ckpt) whose vocabulary it counts in.")
    ],
    out: Annotated[Path, typer.Option(help="Where to write the JSON model.")],
    order: Annotated[int, typer.Option(help="n of the n-grams.")] = 3,
    natural: Annotated[
        bool, typer.Option(help="Also count the clauses of real written Chinese that coverage draws from.")
    ] = True,
) -> None:
    """Count a character n-gram over the corpora's training text, for beam search (--lm)."""
    from callqa.training.lm import build_lm

    build_lm(corpus, model, out, order, natural)


@train_app.command("package")
def package_command(
    checkpoints: Annotated[
        list[Path],
        typer.Argument(help="Training checkpoints of one run; more than one are averaged (see --ensemble)."),
    ],
    out: Annotated[Path, typer.Option(help="Where to write it.")] = Path("models/asr/base/asr-base.ckpt"),
    recipe: Annotated[str, typer.Option(help="The config that made it, recorded as provenance.")] = "",
    weights: Annotated[str, typer.Option(help="fp16, or int8 with a scale per row.")] = "fp16",
    ensemble: Annotated[
        bool, typer.Option(help="SER checkpoints of separate runs: judge together instead of averaging.")
    ] = False,
    base: Annotated[
        Path | None,
        typer.Option(help="The base a fine-tune started from: move the weights part of the way back to it."),
    ] = None,
    base_weight: Annotated[float, typer.Option(help="How far back towards --base (0: not at all).")] = 0.5,
) -> None:
    """Package checkpoints as a shippable base model: averaged fp16/int8 weights, no optimiser state."""
    from callqa.training.package import package_checkpoint

    provenance = {"recipe": recipe} if recipe else None
    path = package_checkpoint(
        checkpoints, out, provenance, weights=weights, ensemble=ensemble, base=base, base_weight=base_weight
    )
    log.info("wrote %s (%.1f MB)", path, path.stat().st_size / 1e6)


@app.command()
def quickstart(
    out: Annotated[Path | None, typer.Option(help="Run folder (default: runs/quickstart).")] = None,
    preset: Annotated[str, typer.Option(help="Corpus preset.")] = "small",
    seed: Annotated[int, typer.Option()] = 0,
    workers: Annotated[int | None, typer.Option()] = None,
) -> None:
    """The main job end to end on the embedded synthetic corpus (generates it once, then reuses it)."""
    from callqa.quickstart import run_quickstart

    run_quickstart(out or runs_dir() / "quickstart", preset=preset, seed=seed, workers=workers)


def main() -> None:
    """Run the CLI. What a user can get wrong (a bad record, file, folder or checkpoint, an unknown name)
    ends in ``error: <message>`` on one line and exit code 1, the message naming the file and the fault;
    ``--verbose`` shows the traceback instead. Anything else is a bug and keeps its traceback.

    The project's own errors derive from ValueError (SchemaError, AudioError, CheckpointError) or
    FileNotFoundError (CorpusError), and every check in the code raises one of those two with a message
    naming the file: catching the bases keeps torch unimported here (CheckpointError's module needs it)."""
    from callqa.data.synth.voices import SynthesisError

    try:
        app()
    except (OSError, ValueError, SynthesisError) as err:
        if log.isEnabledFor(logging.DEBUG):
            raise
        from callqa.data.pii import mask_pii

        message = " ".join(str(err).split()) or type(err).__name__
        typer.echo(f"error: {mask_pii(message)}", err=True)
        raise SystemExit(1) from None
