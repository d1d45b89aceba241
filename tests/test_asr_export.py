"""ONNX export of the ASR model: parity with PyTorch, metadata, int8, and transcription without torch."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch
from typer.testing import CliRunner

from callqa.cli import app
from callqa.data.schema import Utterance
from callqa.export.asr_report import PARITY_TOLERANCE, export_asr
from callqa.models.tokenizer import CharTokenizer
from callqa.serving.asr_onnx import OnnxAsr
from callqa.training.asr_module import AsrModule

TINY = {"d_model": 32, "num_heads": 2, "ffn_dim": 64, "num_layers": 2, "kernel_size": 7}


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory, tiny_corpus: Path, tiny_utterances: list[Utterance]):
    tmp = tmp_path_factory.mktemp("export")
    torch.manual_seed(0)
    tok = CharTokenizer.build(u.text for u in tiny_utterances)
    module = AsrModule(TINY, tok.to_json())
    ckpt = tmp / "tiny.ckpt"
    torch.save({"hyper_parameters": dict(module.hparams), "state_dict": module.state_dict()}, ckpt)
    report = export_asr(ckpt, tmp / "out", int8=True, corpus=tiny_corpus, limit=6)
    return tmp, tok, report


def test_parity_at_several_lengths_and_batches(exported) -> None:
    _, _, report = exported
    cases = report["parity"]["cases"]
    assert len({c["seconds"] for c in cases}) >= 3 and len({c["batch"] for c in cases}) >= 2
    assert report["parity"]["passed"]
    assert max(c["max_abs_diff"] for c in cases) <= PARITY_TOLERANCE
    assert all(c["same_text"] for c in cases)


def test_onnx_file_describes_itself(exported) -> None:
    tmp, tok, report = exported
    asr = OnnxAsr(report["onnx"])
    assert asr.tokenizer.vocab == tok.vocab
    assert asr.sample_rate == 8000
    assert json.loads(asr.meta["callqa.model_config"])["num_layers"] == TINY["num_layers"]
    on_disk = json.loads((tmp / "out" / "export.json").read_text(encoding="utf-8"))
    assert on_disk["parity"]["passed"]


def test_int8_is_smaller_and_measured(exported) -> None:
    _, _, report = exported
    q = report["int8"]
    assert q["bytes"] < q["fp32_bytes"]
    assert np.isfinite(q["test_cer_fp32"]) and np.isfinite(q["test_cer_int8"])
    assert OnnxAsr(q["onnx"]).meta["callqa.quantization"] == "int8-dynamic"


def test_transcribe_goes_on_after_a_bad_file(exported, tiny_corpus: Path, tmp_path: Path) -> None:
    _, _, report = exported
    good = next((tiny_corpus / "audio").glob("*.wav"))
    bad = tmp_path / "notes.wav"
    bad.write_text("not audio at all", encoding="utf-8")
    mono = tmp_path / "mono.flac"
    sf.write(mono, np.zeros(16000, dtype=np.float32) + 0.01, 16000)
    result = CliRunner().invoke(
        app, ["transcribe", str(bad), str(good), str(mono), "--model", report["onnx"]]
    )
    assert result.exit_code == 1
    headers = [ln for ln in result.stdout.splitlines() if ln.startswith("== ")]  # a turn table per call
    assert [h.split(":")[0] for h in headers] == [f"== {good}", f"== {mono}"]
    assert "notes.wav" in result.stderr and result.stderr.count("error:") == 1


def test_transcribe_path_never_imports_torch(exported) -> None:
    _, _, report = exported
    code = (
        "import sys, numpy as np\n"
        "from callqa.cli import app\n"
        "from callqa.data.audio import read_audio\n"
        "from callqa.serving.asr_onnx import OnnxAsr\n"
        f"asr = OnnxAsr({report['onnx']!r})\n"
        "asr.transcribe([np.zeros(8000, dtype=np.float32)], beam=4)\n"
        "assert 'torch' not in sys.modules, 'torch was imported'\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_evaluate_breaks_cer_down_and_logs(exported, tiny_corpus: Path, tmp_path: Path) -> None:
    import mlflow

    _, _, report = exported
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    result = CliRunner().invoke(
        app,
        [
            "evaluate",
            "asr",
            report["onnx"],
            "--corpus",
            str(tiny_corpus),
            "--out",
            str(tmp_path / "eval"),
            "--limit",
            "12",
            "--tracking-uri",
            uri,
            "--hotword",
            "您好",
            "--hotword",
            "谢谢",
        ],
    )
    assert result.exit_code == 0, result.output
    rep = json.loads((tmp_path / "eval" / "asr_eval.json").read_text(encoding="utf-8"))
    assert rep["utterances"] == 12 and rep["cer"] >= 0
    assert set(rep["breakdowns"]) == {"snr", "rate", "emotion", "speaker", "voice"}
    total = sum(v["utterances"] for v in rep["breakdowns"]["emotion"].values())
    assert total == 12
    assert (tmp_path / "eval" / "report.html").stat().st_size > 1000
    hw = rep["hotwords"]
    assert hw["words"] == ["您好", "谢谢"] and hw["utterances"] >= 1
    assert {"cer_plain", "cer_biased", "recall_plain", "recall_biased"} <= set(hw)
    runs = mlflow.MlflowClient(uri).search_runs(
        [mlflow.MlflowClient(uri).get_experiment_by_name("asr-eval").experiment_id]
    )
    assert runs and "cer" in runs[0].data.metrics


def test_language_model_is_counted_in_the_model_ids_and_fused(
    exported, tiny_corpus: Path, tmp_path: Path
) -> None:
    from callqa.data.synth.coverage import natural_clauses
    from callqa.models.asr.lm import CharNgram

    _, tok, report = exported
    lm = tmp_path / "lm.json"
    runner = CliRunner()
    train_lm = ["train", "lm", "--corpus", str(tiny_corpus), "--model", report["onnx"]]
    built = runner.invoke(app, [*train_lm, "--out", str(lm)])
    assert built.exit_code == 0, built.output
    model = CharNgram.load(lm, tok.vocab)
    assert model.order == 3 and model.score(tok.encode("您好")) > model.score(tok.encode("好您"))
    plain = tmp_path / "plain.json"
    built = runner.invoke(app, [*train_lm, "--out", str(plain), "--no-natural"])
    assert built.exit_code == 0, built.output
    plain_model = CharNgram.load(plain, tok.vocab)
    known = set(tok.vocab)
    heard = [c for c in natural_clauses(30000) if set(c) <= known][:50]
    assert len(heard) >= 5  # free wording the corpus's own text never says, scored by both
    assert sum(model.score(tok.encode(c)) for c in heard) > sum(
        plain_model.score(tok.encode(c)) for c in heard
    )

    out = tmp_path / "eval"
    args = ["evaluate", "asr", report["onnx"], "--corpus", str(tiny_corpus), "--limit", "6"]
    result = runner.invoke(app, [*args, "--out", str(out), "--lm", str(lm), "--lm-weight", "0.3"])
    assert result.exit_code == 0, result.output
    rep = json.loads((out / "asr_eval.json").read_text(encoding="utf-8"))
    assert rep["decoding"] == "beam 2, lm.json x0.3, bonus 1" and rep["utterances"] == 6

    good = next((tiny_corpus / "audio").glob("*.wav"))
    said = runner.invoke(app, ["transcribe", str(good), "--model", report["onnx"], "--lm", str(lm)])
    assert said.exit_code == 0 and said.stdout.startswith(f"== {good}"), said.output
    other = tmp_path / "other.json"
    CharNgram.train([[2, 3]], [*tok.vocab, "外"]).save(other)
    refused = runner.invoke(app, ["transcribe", str(good), "--model", report["onnx"], "--lm", str(other)])
    assert refused.exit_code != 0 and "different vocabulary" in str(refused.exception)


def _with_run(exported, tmp_path: Path, run_id: str, uri: str) -> Path:
    """The fixture's checkpoint, stamped with an MLflow run as train asr stamps its checkpoints."""
    tmp, _, _ = exported
    ckpt = torch.load(tmp / "tiny.ckpt", weights_only=True)
    ckpt["hyper_parameters"].update(mlflow_run_id=run_id, mlflow_tracking_uri=uri)
    path = tmp_path / "stamped.ckpt"
    torch.save(ckpt, path)
    return path


def test_checkpoint_from_elsewhere_exports_into_a_new_run(
    exported, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """The shipped base names a run in the store of the machine that trained it, which is not here."""
    import mlflow

    monkeypatch.setenv("CALLQA_RUNS", str(tmp_path / "runs"))
    foreign = "1272084d485d4362b03091117631ebc3"
    ckpt = _with_run(exported, tmp_path, foreign, f"sqlite:///{tmp_path}/other-machine/mlflow.db")
    report = export_asr(ckpt, tmp_path / "out", int8=False)
    assert report["parity"]["passed"]
    assert not (tmp_path / "other-machine").exists()
    warnings = [r for r in caplog.records if r.levelname == "WARNING" and "callqa" in r.name]
    assert len(warnings) == 1 and foreign in warnings[0].getMessage()
    client = mlflow.MlflowClient(f"sqlite:///{tmp_path}/runs/mlflow.db")
    (run,) = client.search_runs([client.get_experiment_by_name("export").experiment_id])
    assert run.data.tags["callqa.source_run_id"] == foreign
    assert "export/parity_max_abs_diff" in run.data.metrics
    assert {a.path for a in client.list_artifacts(run.info.run_id, "onnx")} >= {"onnx/asr.onnx"}
