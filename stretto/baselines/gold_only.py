"""Gold-only: the gold operator answers every filter on every row, with no sample (the quality reference and the
cost to beat); `optimize` gives the same plan for a problem built elsewhere."""

from __future__ import annotations

from dataclasses import dataclass

from stretto.optimizer.physical_plan import PhysicalPlan
from stretto.optimizer.problem import PlanProblem
from stretto.optimizer.simulate import gold_only_plan


@dataclass(frozen=True)
class GoldOnlySettings:
    pass


class GoldOnlyOptimizer:
    name = "gold_only"

    def __init__(self, settings: GoldOnlySettings | None = None) -> None:
        self.settings = settings or GoldOnlySettings()

    def candidates(self, identities: list[str], gold: str) -> None:
        """No sample at all: the gold operator answers every row and nothing is profiled."""
        return None

    def optimize(self, problem: PlanProblem) -> PhysicalPlan:
        return gold_only_plan(problem, self.name)
