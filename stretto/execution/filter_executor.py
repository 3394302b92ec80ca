"""Runs a conjunction of semantic filters: each filter only sees the rows every earlier filter kept."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from stretto.data.table import Table
from stretto.operators.llm_filter import LLMFilter
from stretto.plan.query import Query


@dataclass(frozen=True)
class OperatorStats:
    identity: str
    template: str
    threshold: float
    rows_seen: int
    rows_kept: int
    seconds: float
    tokens: int


@dataclass(frozen=True)
class ExecutionResult:
    result: pd.DataFrame  # the rows that passed every filter
    scores: pd.DataFrame  # one column per filter, NaN for rows the filter never saw
    stats: tuple[OperatorStats, ...]
    seconds: float
    rows_in: int

    @property
    def rows_out(self) -> int:
        return len(self.result)


def score_column(i: int) -> str:
    return f"score_{i}"


def execute_filters(
    table: Table, query: Query, operators: Sequence[LLMFilter], *, progress: bool = True
) -> ExecutionResult:
    """Evaluate the filters in order, short-circuiting rows as soon as one filter rejects them."""
    query.check(table)
    if len(operators) != len(query.filters):
        raise ValueError(f"{len(query.filters)} filters but {len(operators)} operators")
    began = time.perf_counter()
    alive = np.ones(len(table), dtype=bool)
    scores = pd.DataFrame(index=table.df.index)
    stats = []
    for i, op in enumerate(operators):
        rows = table.df[alive]
        column = np.full(len(table), np.nan, dtype=np.float32)
        kept = 0
        scored = None
        if len(rows):
            scored = op.score(rows, progress=progress)
            column[alive] = scored.scores
            keep = scored.scores > op.threshold
            kept = int(keep.sum())
            alive[np.flatnonzero(alive)[~keep]] = False
        scores[score_column(i)] = column
        stats.append(
            OperatorStats(
                identity=op.identity,
                template=op.template.text,
                threshold=op.threshold,
                rows_seen=len(rows),
                rows_kept=kept,
                seconds=float(scored.seconds.sum()) if scored else 0.0,
                tokens=int(scored.tokens.sum()) if scored else 0,
            )
        )
    return ExecutionResult(
        result=table.df[alive],
        scores=scores,
        stats=tuple(stats),
        seconds=time.perf_counter() - began,
        rows_in=len(table),
    )
