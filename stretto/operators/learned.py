"""Learned operators: a regularised logistic model per query and predicate, fitted on the sample's tuning labels.

Its inputs are each document's stored embedding (projected onto the sample's top principal directions: no label
is used for that) and, optionally, the score of one cheap LLM operator already profiled. It scores every row in
microseconds from the stored embeddings, so over the embedding alone it is nearly free and can go first in a
cascade; over [an LLM operator's score + embedding] it costs what that operator costs (the score must be
computed) and is that operator better calibrated: it also fixes predicates the small model ranks inversely.
Google BigQuery's AI.IF(..., optimization_mode => 'MINIMIZE_COST') trains such a model on embeddings inside the
query; the guarantee comes from the certification, which tests the learned operator on labels it was not
fitted on (the tuning / certification split of the optimizer; see engine.query.learned_operators).

Its identity names its inputs: `learned(<embedder>)` or `learned(<embedder>+<operator identity>)`.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from stretto.operators.stored_embeddings import EmbeddingTable
from stretto.plan.template import Template
from stretto.profiling.operator import CandidateOperator, ScoredRows

DIMENSIONS = 16  # principal directions of the embedding kept as features
L2 = 1.0  # ridge penalty on the standardised features' weights (not on the intercept)


def learned_identity(embedder: str, score_of: str | None = None) -> str:
    return f"learned({embedder}{'+' + score_of if score_of else ''})"


def is_learned(identity: str) -> bool:
    return identity.startswith("learned(")


@dataclass(frozen=True)
class Projection:
    """Centre, project onto `basis`, then standardise: fitted on unlabelled sample embeddings."""

    mean: np.ndarray  # (dimension,)
    basis: np.ndarray  # (dimension, k)
    scale: np.ndarray  # (k,)

    @classmethod
    def fit(cls, vectors: np.ndarray, k: int = DIMENSIONS) -> Projection:
        mean = vectors.mean(axis=0)
        _, _, vt = np.linalg.svd(vectors - mean, full_matrices=False)
        basis = vt[: min(k, len(vt))].T
        projected = (vectors - mean) @ basis
        return cls(mean, basis, np.maximum(projected.std(axis=0), 1e-6))

    def __call__(self, vectors: np.ndarray) -> np.ndarray:
        return ((vectors - self.mean) @ self.basis) / self.scale


def fit_logistic(features: np.ndarray, labels: np.ndarray, l2: float = L2, iterations: int = 50) -> np.ndarray:
    """Weights (features + 1, the intercept last) of an L2-regularised logistic regression, by Newton's method
    (iteratively reweighted least squares); the intercept is not penalised."""
    x = np.hstack([features, np.ones((len(features), 1))])
    y = labels.astype(np.float64)
    penalty = np.full(x.shape[1], l2)
    penalty[-1] = 0.0
    w = np.zeros(x.shape[1])
    for _ in range(iterations):
        p = 1.0 / (1.0 + np.exp(-np.clip(x @ w, -30, 30)))
        gradient = x.T @ (p - y) + penalty * w
        hessian = (x * (p * (1 - p))[:, None]).T @ x + np.diag(penalty) + 1e-9 * np.eye(len(w))
        step = np.linalg.solve(hessian, gradient)
        w -= step
        if np.abs(step).max() < 1e-8:
            break
    return w


@dataclass(frozen=True)
class ScoreScale:
    """Standardises an input operator's score with the sample's mean and spread (no label used)."""

    mean: float
    scale: float

    @classmethod
    def fit(cls, scores: np.ndarray) -> ScoreScale:
        return cls(float(scores.mean()), float(max(scores.std(), 1e-6)))

    def __call__(self, scores: np.ndarray) -> np.ndarray:
        return (scores - self.mean) / self.scale


def features(
    projection: Projection, vectors: np.ndarray, scale: ScoreScale | None, scores: np.ndarray | None
) -> np.ndarray:
    """[projected embedding (, standardised input score)] per row."""
    x = projection(vectors)
    return x if scores is None or scale is None else np.hstack([x, scale(scores)[:, None]])


class LearnedOperator:
    """A fitted logistic model over [projected embedding (+ one operator's score)]: a CandidateOperator whose
    scores are the model's log-odds and whose seconds per row are its input operator's plus its own (reading
    the stored embeddings and applying the model, measured)."""

    def __init__(
        self,
        template: Template,
        embeddings: EmbeddingTable,
        projection: Projection,
        weights: np.ndarray,
        score_of: CandidateOperator | None = None,
        score_scale: ScoreScale | None = None,
    ) -> None:
        self.template, self.embeddings, self.projection, self.weights = template, embeddings, projection, weights
        self.score_of, self.score_scale = score_of, score_scale

    @property
    def identity(self) -> str:
        return learned_identity(self.embeddings.embedder, self.score_of.identity if self.score_of else None)

    def features(self, vectors: np.ndarray, scores: np.ndarray | None) -> np.ndarray:
        return features(self.projection, vectors, self.score_scale, scores)

    def score(self, rows: pd.DataFrame, *, progress: bool = True) -> ScoredRows:
        inner = self.score_of.score(rows, progress=progress) if self.score_of is not None else None
        began = time.perf_counter()
        x = self.features(self.embeddings.lookup(rows, self.template.columns), None if inner is None else inner.scores)
        log_odds = x @ self.weights[:-1] + self.weights[-1]
        own = (time.perf_counter() - began) / max(1, len(rows))
        n = len(rows)
        return ScoredRows(
            scores=log_odds.astype(np.float32),
            seconds=(inner.seconds if inner is not None else np.zeros(n)) + own,
            tokens=inner.tokens if inner is not None else np.zeros(n, np.int64),
            truncated=inner.truncated if inner is not None else 0,
        )


def fit_learned(
    template: Template,
    sample_rows: pd.DataFrame,
    labels: np.ndarray,
    tuning: np.ndarray,
    embeddings: EmbeddingTable,
    inputs: Mapping[str, tuple[CandidateOperator, np.ndarray]],
) -> list[LearnedOperator]:
    """One learned operator over the embedding alone and one per input operator (identity -> (operator, its
    scores on the sample rows)), each fitted on the sample's `tuning` tuples (positions into `sample_rows` and
    `labels`) only. The projection and score scales use every sample row's inputs, never a label. Empty when
    the tuning labels hold fewer than two positives or two negatives (nothing to fit)."""
    y = labels[tuning]
    if y.sum() < 2 or (~y).sum() < 2:
        return []
    vectors = embeddings.lookup(sample_rows, template.columns)
    projection = Projection.fit(vectors)
    out = []
    for operator, scores in [(None, None), *inputs.values()]:
        scale = ScoreScale.fit(scores) if scores is not None else None
        weights = fit_logistic(features(projection, vectors, scale, scores)[tuning], y)
        out.append(LearnedOperator(template, embeddings, projection, weights, operator, scale))
    return out


class WithLearned:
    """An operator source that also answers the learned operators fitted for this query (by template and
    identity), and asks `source` for everything else."""

    def __init__(self, source, learned: Sequence[LearnedOperator]) -> None:
        self.source = source
        self.learned = {(op.template.text, op.identity): op for op in learned}

    def operator(self, template: Template, identity: str) -> CandidateOperator:
        found = self.learned.get((template.text, identity))
        return found if found is not None else self.source.operator(template, identity)
