"""Quality of a query's result against the gold operator's output (silver) and against human labels.

Silver: the gold operator's decision for every filter on every row (what the guarantee promises to
match). Human: a filter's human label where the dataset has one, else its silver decision; a query
has a human truth only if at least one of its filters has a human label.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from stretto.data.table import Table
from stretto.evaluation.metrics import Quality, auc, quality
from stretto.execution.cascade_executor import OperatorSource
from stretto.operators.family import FamilySpec
from stretto.optimizer.problem import PlanProblem
from stretto.optimizer.reorder import best_order
from stretto.plan.query import Query
from stretto.plan.targets import Targets


def silver_decisions(table: Table, query: Query, source: OperatorSource, family: FamilySpec) -> np.ndarray:
    """(filters, rows) gold-operator decisions on the whole table (cheap on replay, a full gold run live)."""
    gold = family.gold_identity
    return np.array(
        [source.operator(f.template, gold).score(table.df, progress=False).scores > 0.0 for f in query.filters]
    )


def gold_only_seconds(
    table: Table, query: Query, source: OperatorSource, family: FamilySpec, silver: np.ndarray
) -> float:
    """Execution seconds of the gold operator alone on every row, filters in their cheapest order."""
    gold = family.gold_identity
    seconds = np.array(
        [source.operator(f.template, gold).score(table.df, progress=False).seconds for f in query.filters]
    )
    _, per_tuple = best_order(silver.astype(float), seconds)
    return per_tuple * len(table)


def human_decisions(table: Table, query: Query, silver: np.ndarray) -> np.ndarray | None:
    if all(f.label is None for f in query.filters):
        return None
    return np.array(
        [f.label.truth(table.df).to_numpy() if f.label is not None else silver[i] for i, f in enumerate(query.filters)]
    )


@dataclass(frozen=True)
class TargetCheck:
    silver: Quality
    human: Quality | None
    met_silver: bool
    met_human: bool | None

    def as_dict(self) -> dict[str, float]:
        out = {f"silver.{k}": v for k, v in self.silver.as_dict().items()} | {"met_silver": float(self.met_silver)}
        if self.human is not None:
            out |= {f"human.{k}": v for k, v in self.human.as_dict().items()} | {"met_human": float(self.met_human)}
        return out


def check_targets(kept: np.ndarray, silver: np.ndarray, human: np.ndarray | None, targets: Targets) -> TargetCheck:
    """Result quality against each truth, and whether both targets were met."""
    vs_silver = quality(kept, silver.all(axis=0))
    vs_human = quality(kept, human.all(axis=0)) if human is not None else None
    return TargetCheck(
        vs_silver,
        vs_human,
        targets.met(vs_silver.precision, vs_silver.recall),
        targets.met(vs_human.precision, vs_human.recall) if vs_human is not None else None,
    )


def operator_frontier(problem: PlanProblem) -> dict[str, tuple[float, float]]:
    """Per cheap operator: (seconds per tuple, AUC against the gold operator) on the sample, averaged over
    the query's filters (AUC over those where both answers occur): the points of the KV-variant frontier."""
    points: dict[str, tuple[list[float], list[float]]] = {}
    for f in problem.filters:
        for op, scores, cost in zip(f.candidates, f.scores, f.costs, strict=True):
            seconds, aucs = points.setdefault(op, ([], []))
            seconds.append(float(cost))
            aucs.append(auc(scores, f.labels))
    return {op: (float(np.mean(s)), float(np.nanmean(a)) if not np.isnan(a).all() else float("nan"))
            for op, (s, a) in points.items()}  # fmt: skip
