"""What one query run did and spent: the record every system returns, whichever way it ran."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from stretto.execution.cascade_executor import PlanExecution
from stretto.optimizer.physical_plan import PhysicalPlan
from stretto.optimizer.problem import PlanProblem
from stretto.profiling.profile import Profile


@dataclass(frozen=True)
class Costs:
    """Operator seconds a query spent, by phase (offline KV-cache and embedding builds are not in them)."""

    profile_seconds: float  # the gold labels and every candidate operator profiled on the sample
    optimize_seconds: float  # the optimizer's wall time
    execution_seconds: float  # the plan on the rows outside the sample

    @property
    def total_seconds(self) -> float:
        return self.profile_seconds + self.optimize_seconds + self.execution_seconds


@dataclass(frozen=True)
class QueryRun:
    plan: PhysicalPlan
    execution: PlanExecution
    sample: np.ndarray  # row positions of the profiling sample (a whole-table system: the rows it labelled)
    profile: Profile
    # what the optimizer saw (None: the system took no sample, gold answered all, or it labelled the table as it
    # went, engine/on_table.py)
    problem: PlanProblem | None
    profile_seconds: float  # operator seconds spent on the sample (gold and the candidates this system profiled)
    optimize_seconds: float  # wall time of the optimizer

    @property
    def costs(self) -> Costs:
        return Costs(self.profile_seconds, self.optimize_seconds, self.execution.seconds)

    @property
    def total_seconds(self) -> float:
        return self.costs.total_seconds
