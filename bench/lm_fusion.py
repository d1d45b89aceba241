"""Language-model fusion grid: dev CER over n-gram order, LM weight and length bonus for one ONNX model.

Run: .venv/bin/python bench/lm_fusion.py runs/quickstart/export/asr/asr.onnx \
         --corpus runs/quickstart/corpus [--split dev] [--limit 320] [--orders 3,4] \
         [--weights 0.3,0.5,0.8] [--bonuses 0.5,1.5] [--beam 8]
The acoustic model runs once per utterance and its log-probabilities are kept, so each grid point
costs only the beam search. The n-grams are counted by the same code as ``callqa train lm`` (training
split and coverage of ``--lm-corpus``, the evaluated corpus by default). Tune on dev, report on test;
copy the table into bench/RESULTS.md with the machine it ran on.
"""

from __future__ import annotations

import argparse
import itertools
import tempfile
import time
from pathlib import Path

import numpy as np
from tqdm import tqdm

from callqa.data.segments import load_utterance
from callqa.evaluation.asr_eval import split_utterances
from callqa.evaluation.metrics import cer
from callqa.models.asr.decoding import LmFusion, greedy_ids, prefix_beam_search
from callqa.models.asr.lm import CharNgram
from callqa.models.tokenizer import normalize
from callqa.serving.asr_onnx import OnnxAsr
from callqa.training.lm import build_lm


def floats(text: str) -> list[float]:
    return [float(x) for x in text.split(",")]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("model", type=Path)
    ap.add_argument("--corpus", type=Path, required=True)
    ap.add_argument("--lm-corpus", type=Path, action="append", help="text for the n-grams (repeatable)")
    ap.add_argument("--split", default="dev")
    ap.add_argument("--limit", type=int, default=320, help="utterances, spread evenly over the split")
    ap.add_argument("--orders", default="3,4")
    ap.add_argument("--weights", default="0.3,0.5,0.8")
    ap.add_argument("--bonuses", default="0.5,1.5")
    ap.add_argument("--beam", type=int, default=8)
    args = ap.parse_args()

    asr = OnnxAsr(args.model, threads=1)
    utts = split_utterances(args.corpus, args.split)
    utts = utts[:: max(1, len(utts) // args.limit)][: args.limit]
    refs, logps = [], []
    for u in tqdm(utts, desc="acoustic model", unit="utt"):
        wave = load_utterance(u, args.corpus, asr.sample_rate)
        lp, n = asr.run(wave[None], np.array([len(wave)]))
        refs.append(normalize(u.text))
        logps.append(lp[0, : int(n[0])])

    def score(decode) -> tuple[float, float]:
        t0 = time.perf_counter()
        hyps = [asr.tokenizer.decode(decode(lp)) for lp in logps]
        return cer(refs, hyps), time.perf_counter() - t0

    print(f"{args.model} on {len(refs)} {args.split} utterances of {args.corpus}\n")
    print("| decoding | order | weight | bonus | CER | decode s |")
    print("|---|---:|---:|---:|---:|---:|")
    c, s = score(greedy_ids)
    print(f"| greedy | | | | {c:.4f} | {s:.1f} |")
    c, s = score(lambda lp: prefix_beam_search(lp, args.beam)[0][0])
    print(f"| beam {args.beam} | | | | {c:.4f} | {s:.1f} |")
    with tempfile.TemporaryDirectory() as tmp:
        for order in (int(o) for o in args.orders.split(",")):
            path = build_lm(args.lm_corpus or [args.corpus], args.model, Path(tmp) / f"lm{order}.json", order)
            lm = CharNgram.load(path, asr.tokenizer.vocab)
            for w, b in itertools.product(floats(args.weights), floats(args.bonuses)):
                fusion = LmFusion(lm, w, b)
                c, s = score(lambda lp, f=fusion: prefix_beam_search(lp, args.beam, lm=f)[0][0])
                print(f"| beam {args.beam} + LM | {order} | {w:g} | {b:g} | {c:.4f} | {s:.1f} |", flush=True)


if __name__ == "__main__":
    main()
