"""Quality of a query's result against the gold operator's output and against human labels.

Gold: the gold operator's decision for every filter on every row (what the guarantee promises to
match), and its value for every extract. Human: a filter's human label where the dataset has one, else
its gold decision (an extract's labelled column, else its gold value); a query has a human truth
only if at least one of its operators has a human label, and a row whose filter label is missing is left
out of it (`human_known`). A kept row with a wrong value counts as a false positive and a false negative.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from stretto.data.table import Table
from stretto.evaluation.metrics import Quality, auc, quality
from stretto.optimizer.problem import PlanProblem
from stretto.plan.answers import same_answer
from stretto.plan.query import Query
from stretto.plan.targets import Targets


def human_values(table: Table, query: Query, gold: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Per extract output: its labelled column (lowercased for categorical outputs), else the gold value."""
    out = {}
    for e in query.extracts:
        if e.label is None:
            out[e.template.output] = gold[e.template.output]
            continue
        column = table.df[e.label].astype(object)
        out[e.template.output] = (column.str.lower() if e.template.choices else column).to_numpy(object)
    return out


def values_right(result: pd.DataFrame, kept: np.ndarray, truth: dict[str, np.ndarray]) -> np.ndarray | None:
    """(rows,) whether every extracted value of a kept row equals the truth (None without extracts)."""
    if not truth:
        return None
    right = np.ones(len(kept), dtype=bool)
    for output, values in truth.items():
        right[kept] &= [same_answer(a, b) for a, b in zip(result[output], values[kept], strict=True)]
    return right


def human_decisions(table: Table, query: Query, gold: np.ndarray) -> np.ndarray | None:
    if all(f.label is None for f in query.operators):
        return None
    decisions = [f.label.truth(table.df).to_numpy() if f.label else gold[i] for i, f in enumerate(query.filters)]
    return np.array(decisions).reshape(len(query.filters), len(table))


def human_known(table: Table, query: Query) -> np.ndarray:
    """(rows,) whether the row's human truth is known: every labelled filter's is (`LabelSpec.known`); an
    extract's empty cell is known (no value is right there)."""
    known = np.ones(len(table), dtype=bool)
    for f in query.filters:
        if f.label is not None:
            known &= f.label.known(table.df).to_numpy()
    return known


@dataclass(frozen=True)
class TargetCheck:
    gold: Quality
    human: Quality | None
    met_gold: bool
    met_human: bool | None

    def as_dict(self) -> dict[str, float]:
        out = {f"gold.{k}": v for k, v in self.gold.as_dict().items()} | {"met_gold": float(self.met_gold)}
        if self.human is not None:
            out |= {f"human.{k}": v for k, v in self.human.as_dict().items()} | {"met_human": float(self.met_human)}
        return out


def check_targets(
    kept: np.ndarray,
    gold: np.ndarray,
    human: np.ndarray | None,
    targets: Targets,
    right: np.ndarray | None = None,
    right_human: np.ndarray | None = None,
    known: np.ndarray | None = None,
) -> TargetCheck:
    """Result quality against each truth (with extracts: `right` = the row's values are the true ones), and
    whether both targets were met; against the human truth only on the rows where it is `known` (all: None)."""
    vs_gold = quality(kept, gold.all(axis=0), right)
    vs_human = None
    if human is not None:
        k = np.ones(len(kept), dtype=bool) if known is None else known
        vs_human = quality(kept[k], human.all(axis=0)[k], None if right_human is None else right_human[k])
    return TargetCheck(
        vs_gold,
        vs_human,
        targets.met(vs_gold.precision, vs_gold.recall),
        targets.met(vs_human.precision, vs_human.recall) if vs_human is not None else None,
    )


def operator_frontier(problem: PlanProblem) -> dict[str, tuple[float, float]]:
    """Per cheap operator: (seconds per tuple, AUC against the gold operator) on the sample, averaged over
    the query's operators (AUC over those where both answers occur; for an extract, how well its confidence
    ranks right values above wrong ones): the points of the KV-variant frontier."""
    points: dict[str, tuple[list[float], list[float]]] = {}
    for f in problem.operators:
        for i, (op, scores, cost) in enumerate(zip(f.candidates, f.scores, f.costs, strict=True)):
            seconds, aucs = points.setdefault(op, ([], []))
            seconds.append(float(cost))
            aucs.append(auc(scores, f.correct[i] if f.is_extract else f.labels))
    return {op: (float(np.mean(s)), float(np.nanmean(a)) if not np.isnan(a).all() else float("nan"))
            for op, (s, a) in points.items()}  # fmt: skip
