"""What is separable in the SER features before any network: linear and boosted-tree probes.

Usage: python bench/ser_probe.py CORPUS [CORPUS ...]; trains on train, reports UA on dev and test for
the utterance stats alone (absolute, speaker-relative, both) and with mean-pooled log-mel.
"""

from __future__ import annotations

import sys

import numpy as np
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import recall_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from callqa.data.constants import EMOTIONS
from callqa.logs import setup_logging
from callqa.models.ser.features import UTT_STATS, FeatureConfig
from callqa.training.ser_data import load_items


def main(corpora: list[str]) -> None:
    setup_logging(False)
    items = load_items(corpora, FeatureConfig())
    n = len(UTT_STATS)
    views = {
        "absolute": slice(0, n),
        "relative": slice(n, 2 * n),
        "stats": slice(0, 3 * n + 1),
    }

    def xy(split: str, view: slice, pooled: bool) -> tuple[np.ndarray, np.ndarray]:
        its = items[split]
        x = np.stack([i.x.stats[view] for i in its])
        if pooled:
            x = np.hstack([x, np.stack([i.x.frames[i.x.frames[:, -1] > 0].mean(0) for i in its])])
        return np.nan_to_num(x), np.array([i.label for i in its])

    print("counts", {s: np.bincount([i.label for i in v], minlength=5).tolist() for s, v in items.items()})
    for name, view in views.items():
        for pooled in (False, True):
            xtr, ytr = xy("train", view, pooled)
            for clf_name, clf in (
                (
                    "logreg",
                    make_pipeline(
                        StandardScaler(), LogisticRegression(max_iter=2000, class_weight="balanced")
                    ),
                ),
                ("hgb", HistGradientBoostingClassifier(max_iter=300, class_weight="balanced")),
            ):
                clf.fit(xtr, ytr)
                out = []
                for split in ("dev", "test"):
                    x, y = xy(split, view, pooled)
                    rec = recall_score(
                        y, clf.predict(x), average=None, labels=range(len(EMOTIONS)), zero_division=0
                    )
                    out.append(
                        f"{split} UA {rec.mean():.3f} "
                        + " ".join(f"{e[:3]}={r:.2f}" for e, r in zip(EMOTIONS, rec, strict=True))
                    )
                print(f"{name:9s} pooled={pooled!s:5s} {clf_name:6s} | " + " | ".join(out), flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
