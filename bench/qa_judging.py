"""What judging a heard call costs: the rules, then each QA model on top of them (the transparent one in
NumPy, the neural one on onnxruntime), per call and against the listening that comes before it.

    python bench/qa_judging.py --heard heard.jsonl --linear qa-linear.json --neural qa.onnx \
        [--rubric R.yaml] [--calls 200]

``heard.jsonl`` is ``callqa score --raw`` output (it also holds each call's listening time). Each call
is judged once, as a scoring run would (a second pass would find its pinyin cached); both models then
score the same call's features, one after the other. Printed: milliseconds per call for the rules and
for each model, each model's cost as a ratio to the rules', and each as a share of the pipeline's own
seconds for the same calls, measured in one run.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from callqa.data.rubric import load_rubric
from callqa.models.qa.features import call_features
from callqa.qa.rules import RuleSet
from callqa.qa.timeline import CallView
from callqa.serving.qa_onnx import load_qa_model
from callqa.training.qa_data import read_heard


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--heard", type=Path, required=True)
    ap.add_argument("--linear", type=Path, required=True)
    ap.add_argument("--neural", type=Path, required=True)
    ap.add_argument("--rubric", type=Path, default=None)
    ap.add_argument("--calls", type=int, default=200)
    args = ap.parse_args()

    results = list(read_heard(args.heard).values())[: args.calls]
    listening = sum(r.processing_seconds for r in results)
    rules = RuleSet(load_rubric(args.rubric))
    models = {"linear": load_qa_model(args.linear), "neural": load_qa_model(args.neural)}
    spent = {"rules": 0.0, **dict.fromkeys(models, 0.0)}
    for result in results:
        view = CallView.from_result(result)
        t0 = time.perf_counter()
        verdicts = rules.judge(view)
        spent["rules"] += time.perf_counter() - t0
        features = call_features(view, verdicts)
        for name, model in models.items():
            t0 = time.perf_counter()
            model.predict_items(view, features)
            spent[name] += time.perf_counter() - t0
    n = len(results)
    print(f"{n} calls; the pipeline heard them in {listening:.1f} s")
    for name, s in spent.items():
        share = f", {s / listening:.2%} of listening" if listening else ""
        print(f"{name:>7}: {1000 * s / n:6.2f} ms per call, x{s / spent['rules']:.3f} of the rules{share}")


if __name__ == "__main__":
    main()
