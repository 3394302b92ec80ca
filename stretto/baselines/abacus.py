"""Abacus-style: Pareto-cascades from sample point estimates, no statistical bound (Palimpzest's optimizer).

Per filter, every cheap operator with every pair of thresholds from a grid of its score quantiles (plus gold
alone) is a candidate cascade (per extract: every cheap extractor with every acceptance threshold), estimated
on the sample: cost per tuple, precision and recall against the gold labels. The Pareto frontier of (cost,
precision, recall) is kept, cut to the `frontier` best by F1. Then the cheapest combination of per-filter
choices whose end-to-end point estimates on the sample meet the targets wins; gold alone if none does. What it
lacks by design is a bound: a plan that just meets the targets on the sample misses them on the table about
half the time.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np

from stretto.evaluation.metrics import Quality, quality
from stretto.optimizer.physical_plan import Cascade, PhysicalPlan, Step
from stretto.optimizer.problem import OperatorSample, PlanProblem
from stretto.optimizer.reorder import best_order
from stretto.optimizer.simulate import gold_only_plan, plan_on_sample, run_cascade


@dataclass(frozen=True)
class AbacusSettings:
    grid: int = 10  # thresholds at the 0, 1/grid, ..., 1 quantiles of each operator's sample scores
    frontier: int = 8  # per-filter candidates kept for the joint search


@dataclass(frozen=True)
class Choice:
    cascade: Cascade
    keep: np.ndarray  # (tuples,) hard decisions on the sample
    seconds: np.ndarray  # (tuples,)
    right: np.ndarray  # (tuples,) the extracted value equals gold's (1 for filters)
    quality: Quality  # against the gold labels (and values) on the sample

    @property
    def cost(self) -> float:
        return float(self.seconds.mean())


def choices(f: OperatorSample, grid: int) -> list[Choice]:
    cascades = [Cascade.gold_only(f.template, f.gold)]
    for i, op in enumerate(f.candidates):
        edges = np.unique(np.quantile(f.scores[i], np.linspace(0, 1, grid + 1)))
        bounds = [-np.inf, *edges, np.inf]
        pairs = [(-np.inf, u) for u in bounds] if f.is_extract else itertools.combinations_with_replacement(bounds, 2)
        for lower, upper in pairs:
            cascades.append(Cascade(f.template, (Step(op, float(lower), float(upper)),), f.gold))
    out = []
    for cascade in cascades:
        keep, seconds, right = run_cascade(f, cascade)
        out.append(Choice(cascade, keep, seconds, right, quality(keep, f.labels, right)))
    return out


def pareto(options: list[Choice], size: int) -> list[Choice]:
    """Options no other option beats on cost, precision and recall at once; the `size` best by F1."""

    def dominated(a: Choice) -> bool:
        qa = a.quality
        return any(
            b.cost <= a.cost and b.quality.precision >= qa.precision and b.quality.recall >= qa.recall
            and (b.cost, b.quality.precision, b.quality.recall) != (a.cost, qa.precision, qa.recall)
            for b in options
        )  # fmt: skip

    front = [a for a in options if not dominated(a)]
    return sorted(front, key=lambda c: (-c.quality.f1, c.cost))[:size]


class AbacusOptimizer:
    name = "abacus"

    def __init__(self, settings: AbacusSettings | None = None) -> None:
        self.settings = settings or AbacusSettings()

    def optimize(self, problem: PlanProblem) -> PhysicalPlan:
        fronts = [pareto(choices(f, self.settings.grid), self.settings.frontier) for f in problem.operators]
        labels = problem.labels
        best, best_cost = None, np.inf
        for combo in itertools.product(*fronts):
            keep = np.array([c.keep for c in combo])
            q = quality(keep.prod(axis=0), labels, np.prod([c.right for c in combo], axis=0))
            if not problem.targets.met(q.precision, q.recall):
                continue
            cost = best_order(keep, np.array([c.seconds for c in combo]))[1]
            if cost < best_cost:
                best, best_cost = combo, cost
        if best is None:
            return gold_only_plan(problem, self.name, fallback=True)
        return plan_on_sample(problem, [c.cascade for c in best], self.name)
