"""The paper's ablations of the global optimizer, behind the same interface.

LOCAL splits the targets evenly: each of n cascades is tuned alone for T^(1/n) at confidence
alpha^(1/n), each bounded against its own filter's gold answers. That is NOT an end-to-end guarantee:
a conjunction's precision and recall are not products of per-filter rates. Filter A's 50 false
positives can all fall inside B's kept true rows: A at precision .95, B at 1.0, the conjunction at .5.
Only the global optimizer bounds the conjunction's result (its certification counts it directly).
SHIFT_BUDGET splits them unevenly: it searches the shares w_i (sum 1, in steps of 1/(2n)) of the
budget, T_i = T^(w_i), and keeps the cheapest split; the even split is one of them, so it never costs
more than LOCAL. (The no-compression ablation is a smaller operator family, not an optimizer.)
"""

from __future__ import annotations

import itertools
from functools import cache

from stretto.optimizer.gradient import GradientOptimizer, GradientSettings
from stretto.optimizer.physical_plan import PhysicalPlan
from stretto.optimizer.problem import PlanProblem
from stretto.optimizer.simulate import plan_on_sample
from stretto.plan.targets import Targets


def share_targets(targets: Targets, share: float, n: int) -> Targets:
    recall_alpha = None if targets.recall_alpha is None else targets.recall_alpha ** (1.0 / n)
    return Targets(targets.precision**share, targets.recall**share, targets.alpha ** (1.0 / n), recall_alpha)


def combine(problem: PlanProblem, parts: list[PhysicalPlan], system: str) -> PhysicalPlan:
    """Per-cascade plans as one plan: ordered by the DP, costed and bounded on the sample."""
    return plan_on_sample(
        problem,
        [c for p in parts for c in p.cascades],
        system,
        fallback=all(p.fallback for p in parts),
        notes={"shares": [p.notes.get("share") for p in parts]},
    )


class LocalOptimizer:
    name = "local"

    def __init__(self, settings: GradientSettings | None = None) -> None:
        self.inner = GradientOptimizer(settings)

    def tune(self, problem: PlanProblem, i: int, share: float) -> PhysicalPlan:
        n = len(problem.operators)
        upstream = problem.upstream_recall if i == 0 else 1.0  # blocking's recall is charged once, to one cascade
        targets = share_targets(problem.targets, share, n)
        sub = PlanProblem((problem.operators[i],), targets, problem.sample_fraction, upstream)
        plan = self.inner.optimize(sub)
        plan.notes["share"] = share
        return plan

    def optimize(self, problem: PlanProblem) -> PhysicalPlan:
        n = len(problem.operators)
        return combine(problem, [self.tune(problem, i, 1.0 / n) for i in range(n)], self.name)


class ShiftBudgetOptimizer(LocalOptimizer):
    name = "shift_budget"

    def optimize(self, problem: PlanProblem) -> PhysicalPlan:
        n = len(problem.operators)
        if n == 1:
            return combine(problem, [self.tune(problem, 0, 1.0)], self.name)
        units = 2 * n
        tuned = cache(lambda i, k: self.tune(problem, i, k / units))
        best = None
        for split in itertools.product(range(1, units), repeat=n):
            if sum(split) != units:
                continue
            plan = combine(problem, [tuned(i, k) for i, k in enumerate(split)], self.name)
            if best is None or plan.cost_per_tuple < best.cost_per_tuple:
                best = plan
        assert best is not None
        return best
