"""Quality of predictions against a truth (human labels or the gold operator): no model needed."""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
from sklearn.metrics import roc_auc_score


@dataclass(frozen=True)
class Quality:
    precision: float
    recall: float
    f1: float
    support: int  # rows truly positive
    predicted: int  # rows predicted positive

    def as_dict(self) -> dict[str, float]:
        return asdict(self)


def quality(predicted: np.ndarray, truth: np.ndarray, right: np.ndarray | None = None) -> Quality:
    """Precision, recall and F1 of boolean predictions; an empty prediction has precision 1 by convention.

    With extracted values, `right` says whether a row's values equal the true ones: a predicted row counts as a
    hit only if it is true and right, so a wrong value is both a false positive and a false negative.
    """
    predicted, truth = np.asarray(predicted, dtype=bool), np.asarray(truth, dtype=bool)
    hits = predicted & truth if right is None else predicted & truth & np.asarray(right, dtype=bool)
    tp = int(hits.sum())
    n_pred, n_true = int(predicted.sum()), int(truth.sum())
    precision = tp / n_pred if n_pred else 1.0
    recall = tp / n_true if n_true else 1.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return Quality(precision, recall, f1, n_true, n_pred)


def auc(scores: np.ndarray, truth: np.ndarray) -> float:
    """Ranking quality of raw scores, independent of any threshold (NaN when one class is absent)."""
    truth = np.asarray(truth, dtype=bool)
    if truth.all() or not truth.any():
        return float("nan")
    return float(roc_auc_score(truth, scores))
