"""How to build a scorer, as plain data: what ``callqa score``, ``callqa serve`` and ``--ray`` workers
build their pipeline and scorer from. A spec pickles where onnxruntime sessions do not, so a Ray
actor builds its own scorer from the same spec the command line made."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from callqa.serving.pipeline import CallPipeline
from callqa.serving.score import Scorer


@dataclass(frozen=True)
class PipelineSpec:
    model: Path
    ser_model: Path | None = None
    vad: str = "energy"
    max_segment: float = 15.0
    beam: int = 1
    hotwords: tuple[str, ...] = ()
    threads: int | None = None
    lm: Path | None = None
    lm_weight: float = 0.0
    length_bonus: float = 0.0
    raw: bool = True

    def build(self) -> CallPipeline:
        from callqa.serving.asr_onnx import OnnxAsr, load_asr
        from callqa.serving.vad import load_vad

        asr = load_asr(self.model, self.threads)
        ser = None
        if self.ser_model is not None:
            from callqa.serving.ser_onnx import load_ser

            ser = load_ser(self.ser_model, self.threads)
        ctc = isinstance(asr, OnnxAsr)
        return CallPipeline(
            asr,
            load_vad(self.vad, self.threads or 1),
            ser,
            max_segment=self.max_segment,
            beam=self.beam,
            hotwords=asr.hotwords(list(self.hotwords)) if self.hotwords and ctc else None,
            lm=asr.language_model(self.lm, self.lm_weight, self.length_bonus) if self.lm and ctc else None,
            raw=self.raw,
        )


@dataclass(frozen=True)
class ScorerSpec:
    pipeline: PipelineSpec | None = None
    rubric: Path | None = None
    qa_model: Path | None = None
    raw: bool = False
    agent_channel: int = 0
    #: Spot the rubric's phrases in the posteriors of each turn (a CTC model's; other engines do not).
    spot: bool = True
    #: (kind, source) pairs: what records name as a model's path where the file came from elsewhere.
    sources: tuple[tuple[str, str], ...] = ()

    def build(self) -> Scorer:
        from callqa.data.rubric import load_rubric
        from callqa.qa.rules import RuleSet
        from callqa.serving.asr_onnx import OnnxAsr
        from callqa.serving.qa_onnx import load_qa_model

        sheet = load_rubric(self.rubric)
        source = str(self.rubric or "default rubric")
        pipeline = self.pipeline.build() if self.pipeline is not None else None
        if pipeline is not None and self.spot and isinstance(pipeline.asr, OnnxAsr):
            pipeline.keywords = pipeline.asr.spotter(RuleSet(sheet, source).phrases())
        return Scorer(
            sheet,
            pipeline,
            raw=self.raw,
            rubric_source=source,
            agent_channel=self.agent_channel,
            model=load_qa_model(self.qa_model) if self.qa_model is not None else None,
            model_path=self.qa_model,
            sources=dict(self.sources),
        )
