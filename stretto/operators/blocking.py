"""Blocking: which candidate pairs a semantic join looks at, since asking an LLM about all n x m is too costly.

A semantic join keeps, for each left row, only its k nearest right rows by embedding similarity
(or the rows sharing a relational key) and asks the LLM about those. Pairs outside the candidates
are never answered, so the blocking step caps the join's recall: `blocking_recall_bound` bounds that cap
from a labelled sample.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch

from stretto.errors import QueryError
from stretto.optimizer.guarantees import lower_bound


@dataclass(frozen=True)
class Candidates:
    """Candidate pairs as parallel arrays: positions into the left and right tables, similarity, neighbour rank."""

    left: np.ndarray
    right: np.ndarray
    similarity: np.ndarray
    rank: np.ndarray  # 0 = the left row's most similar right row

    def __post_init__(self) -> None:
        sizes = {len(self.left), len(self.right), len(self.similarity), len(self.rank)}
        if len(sizes) != 1:
            raise QueryError(
                f"candidate arrays differ in length: left {len(self.left)}, right {len(self.right)}, "
                f"similarity {len(self.similarity)}, rank {len(self.rank)}"
            )

    def __len__(self) -> int:
        return len(self.left)


def _matrix(vectors: np.ndarray, side: str) -> np.ndarray:
    matrix = np.asarray(vectors, dtype=np.float32)
    if matrix.ndim != 2:
        raise QueryError(f"{side} vectors must be a 2-D array (rows x dimensions), got shape {matrix.shape}")
    return matrix


def top_k_pairs(left_vectors: np.ndarray, right_vectors: np.ndarray, k: int) -> Candidates:
    """For each left row, its k most similar right rows by dot product (cosine for unit vectors).

    k larger than the right table keeps every right row. Ties go to the earlier right row (stable sort).
    """
    if isinstance(k, bool) or not isinstance(k, int | np.integer) or k < 1:
        raise QueryError(f"blocking needs k >= 1 neighbours per left row, got k={k!r}")
    left, right = _matrix(left_vectors, "left"), _matrix(right_vectors, "right")
    if left.shape[1] != right.shape[1]:
        raise QueryError(f"left and right vectors differ in dimension: {left.shape[1]} vs {right.shape[1]}")
    k = min(int(k), right.shape[0])
    similarity = left @ right.T  # (n_left, n_right)
    order = np.argsort(-similarity, axis=1, kind="stable")[:, :k]
    n_left = left.shape[0]
    return Candidates(
        left=np.repeat(np.arange(n_left), k),
        right=order.reshape(-1),
        similarity=np.take_along_axis(similarity, order, axis=1).reshape(-1),
        rank=np.tile(np.arange(k), n_left),
    )


def key_pairs(left: pd.DataFrame, right: pd.DataFrame, left_on: str, right_on: str) -> Candidates:
    """An equi-join on a relational key: every (left, right) position pair with equal keys; missing keys never match."""
    for frame, column, side in ((left, left_on, "left"), (right, right_on, "right")):
        if column not in frame.columns:
            raise QueryError(
                f"{side} table has no key column '{column}'; available columns: {', '.join(map(str, frame.columns))}"
            )
    left_keys = pd.DataFrame({"key": left[left_on].to_numpy(), "left": np.arange(len(left))}).dropna(subset="key")
    right_keys = pd.DataFrame({"key": right[right_on].to_numpy(), "right": np.arange(len(right))}).dropna(subset="key")
    try:
        joined = left_keys.merge(right_keys, on="key")
    except ValueError as err:  # e.g. integer keys on one side, strings on the other
        raise QueryError(
            f"cannot join '{left_on}' ({left[left_on].dtype}) with '{right_on}' ({right[right_on].dtype}): {err}"
        ) from err
    joined = joined.sort_values(["left", "right"], kind="stable")
    n = len(joined)
    return Candidates(
        left=joined["left"].to_numpy(dtype=np.int64),
        right=joined["right"].to_numpy(dtype=np.int64),
        similarity=np.ones(n, dtype=np.float32),
        rank=np.zeros(n, dtype=np.int64),
    )


def blocking_recall_bound(found: int, missed: int, alpha: float) -> float:
    """Lower credible bound (Beta(1, 1) prior, confidence alpha) on blocking recall from a labelled sample.

    `found` gold-positive pairs of the sample were inside the top-k, `missed` outside it.
    """
    for name, count in (("found", found), ("missed", missed)):
        if isinstance(count, bool) or not isinstance(count, int | np.integer) or count < 0:
            raise QueryError(f"{name} must be a non-negative count of pairs, got {count!r}")
    try:
        return float(lower_bound(torch.tensor(float(found)), torch.tensor(float(missed)), alpha))
    except ValueError as err:  # alpha outside (0, 1)
        raise QueryError(str(err)) from err


def clustered_recall_lower(
    found: np.ndarray, matches: np.ndarray, rows: int, confidence: float, window: int, *, seed: int = 0
) -> float:
    """Lower confidence bound on blocking recall R = sum(f) / sum(m) over all `rows` left rows, from a uniform
    sample of left rows drawn without replacement: row i of the sample holds `matches[i]` gold positives in its
    window, `found[i]` of them inside its top k. A row's pairs were drawn together (a cluster), so the row is the
    draw: unlike a count of pairs, this holds however the matches cluster.

    For a candidate bound b, x_i = (f_i - b m_i + b W) / W lies in [0, 1] (W = `window`, the most matches a row
    can hold) and the mean of x over all rows is >= b exactly when R >= b. "R < b" is rejected by betting against
    it (Waudby-Smith and Ramdas, "Estimating means of bounded random variables by betting", JRSS-B 86(1), 2024:
    the capital prod(1 + lambda_t (x_t - m_t)) with m_t the mean of the rows not yet drawn under mean b, their
    sampling without replacement, section 6; predictable plug-in bets as BARGAIN's fixed-size test, truncated at
    3/4 / m_t): under "R < b" it is a nonnegative supermartingale, so it reaches 1 / (1 - confidence) with
    probability at most 1 - confidence (Ville). The bound is the largest b of a grid of step 1/200 such that b and
    every grid point below it are rejected: it exceeds R with probability at most 1 - confidence.
    """
    found, matches = np.asarray(found, dtype=float), np.asarray(matches, dtype=float)
    if found.shape != matches.shape or (found < 0).any() or (found > matches).any() or (matches > window).any():
        raise QueryError("each audited row needs 0 <= found <= matches <= window")
    if not 0.0 < confidence < 1.0:
        raise QueryError(f"confidence alpha={confidence} is outside (0, 1)")
    if not matches.sum():
        return 0.0
    n = len(found)
    order = np.random.default_rng(seed).permutation(n)  # the draws in a uniformly random order
    f, m = found[order], matches[order]
    grid = np.arange(1, 201)[:, None] / 200.0  # candidate bounds b, one per row of the arrays below
    x = (f - grid * m + grid * window) / window  # (bounds, draws), each in [0, 1]
    t = np.arange(n)  # draws before this one
    drawn = np.cumsum(x, axis=1)  # sums up to and including each draw
    before, squares_before = drawn - x, np.cumsum(x * x, axis=1) - x * x  # sums of the earlier draws
    remaining_mean = (rows * grid - before) / (rows - t)  # the next draw's mean if the rows' mean were b
    centre = (0.5 + before) / (t + 1)  # the bet reads only the draws before it (predictable)
    variance = (0.25 + squares_before - 2 * centre * before + t * centre**2) / (t + 1)
    delta = 1.0 - confidence
    bet = np.sqrt(2.0 * np.log(2.0 / delta) / (n * variance))
    bet = np.minimum(bet, 0.75 / np.where(remaining_mean > 0, remaining_mean, np.inf))
    # x >= 0: rows drawn that already sum past N b (or, every row drawn, reach it) prove a mean >= b
    impossible = (drawn > rows * grid + 1e-9).any(axis=1) | ((n == rows) & (drawn[:, -1] >= rows * grid[:, 0] - 1e-9))
    log_capital = np.cumsum(np.log1p(np.clip(bet * (x - remaining_mean), -1.0 + 1e-12, None)), axis=1)
    rejected = impossible | (log_capital.max(axis=1) >= np.log(1.0 / delta))
    passed = np.cumprod(rejected)  # b and every grid point below it rejected
    return float(grid[passed.astype(bool), 0].max()) if passed.any() else 0.0


def text_of(df: pd.DataFrame, columns: Sequence[str]) -> list[str]:
    """One string per row, the named columns joined with ", " (what the embedder reads for a record).

    Missing values become "" so that no record reads "nan".
    """
    if isinstance(columns, str):
        columns = (columns,)
    if not columns:
        raise QueryError("text_of needs at least one column")
    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise QueryError(f"columns {missing} are not in the table; available columns: {list(map(str, df.columns))}")
    parts = df[list(columns)].astype(object)
    parts = parts.where(parts.notna(), "").astype(str)
    return [", ".join(row) for row in parts.itertuples(index=False, name=None)]
