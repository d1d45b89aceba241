"""The transparent QA model's item F1 on held-out folds of its own training corpus, against the truth.

Run: .venv/bin/python bench/qa_heldout.py --corpus runs/dev/qa-train --heard runs/snd2/train-heard.jsonl \
         [--rubric configs/rubric/default.yaml] [--folds 5] [--repeats 2]
A check of a training change that never looks at the evaluation corpus. For each outer fold the model
is fitted on the other folds (with its own inner cross-validation) and judges the held-out calls as
``callqa evaluate qa`` would. Each row is the mean F1 over ``--repeats`` outer splits, against the
defects the generator put into each call. Compare two commits on one machine.
"""

from __future__ import annotations

import argparse
import logging

import numpy as np
from sklearn.model_selection import KFold

from callqa.data.corpus import Corpus
from callqa.data.rubric import rules_from
from callqa.evaluation.qa_eval import predict
from callqa.qa.rules import RuleSet
from callqa.training.qa_data import qa_data, read_heard
from callqa.training.qa_linear import fit_linear


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--corpus", required=True)
    ap.add_argument("--heard", required=True)
    ap.add_argument("--rubric", default=None)
    ap.add_argument("--folds", type=int, default=5)
    ap.add_argument("--repeats", type=int, default=2)
    args = ap.parse_args()
    logging.basicConfig(level=logging.WARNING)

    corpus = Corpus(args.corpus)
    rubric = rules_from(corpus.rubric, args.rubric)
    data = qa_data(corpus.calls, read_heard(args.heard), rubric)
    truth = {c.id: set(c.truth.defects) for c in corpus.calls if c.truth is not None}
    if len(truth) < len(corpus.calls):
        raise SystemExit(f"{args.corpus}: needs a synthetic corpus, whose calls carry their truth")
    rules = RuleSet(rubric)
    items = [i.id for i in rubric.items if not i.fatal]
    f1: dict[str, list[float]] = {it: [] for it in items}
    for r in range(args.repeats):
        decided = {it: np.zeros(len(data.ids), bool) for it in items}
        for train, test in KFold(args.folds, shuffle=True, random_state=100 + r).split(data.ids):
            model = fit_linear([data.rows[i] for i in train], [data.labels[i] for i in train], rubric, seed=r)
            pred = predict(model, rules, [data.views[i] for i in test])
            for it in items:
                decided[it][test] = pred.defect[it]
        for it in items:
            y = np.array([it in truth[i] for i in data.ids])
            f1[it].append(2 * float((y & decided[it]).sum()) / max(1, int(y.sum() + decided[it].sum())))
    print(f"{len(data.ids)} calls, {args.folds} folds x {args.repeats} repeats: item F1 vs truth")
    for it in items:
        print(f"  {it:<16} {np.mean(f1[it]):.3f}")


if __name__ == "__main__":
    main()
