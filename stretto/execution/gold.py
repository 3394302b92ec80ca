"""The gold operator on every row: its answers (what the guarantee is measured against) and what
running it alone costs. These call the operators (free on recordings, a full gold pass on real models)."""

from __future__ import annotations

import numpy as np

from stretto.data.table import Table
from stretto.execution.cascade_executor import OperatorSource
from stretto.operators.family import FamilySpec
from stretto.optimizer.reorder import best_order
from stretto.plan.query import Query


def gold_decisions(table: Table, query: Query, source: OperatorSource, family: FamilySpec) -> np.ndarray:
    """(filters, rows) gold-operator decisions on the whole table (cheap on replay, a full gold run live)."""
    gold = family.gold_identity
    decisions = [source.operator(f.template, gold).score(table.df, progress=False).scores > 0.0 for f in query.filters]
    return np.array(decisions).reshape(len(query.filters), len(table))


def gold_values(table: Table, query: Query, source: OperatorSource, family: FamilySpec) -> dict[str, np.ndarray]:
    """Per extract output: the gold extractor's value on every row."""
    gold = family.gold_identity
    return {
        e.template.output: np.array(source.operator(e.template, gold).score(table.df, progress=False).values, object)
        for e in query.extracts
    }


def gold_only_seconds(
    table: Table, query: Query, source: OperatorSource, family: FamilySpec, decisions: np.ndarray
) -> float:
    """Execution seconds of the gold operator alone on every row, filters in their cheapest order, then extracts
    (`decisions`: gold_decisions, which say which rows reach the next filter)."""
    gold = family.gold_identity
    seconds = np.array(
        [source.operator(f.template, gold).score(table.df, progress=False).seconds for f in query.operators]
    )
    keeps = np.vstack([decisions, np.ones((len(query.extracts), len(table)))]).astype(float)
    _, per_tuple = best_order(keeps, seconds)
    return per_tuple * len(table)
