"""One query end to end: sample -> profile -> optimize -> execute. A plain library call (no Hydra, no MLflow)."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from stretto.data.table import Table
from stretto.execution.cascade_executor import OperatorSource, PlanExecution, execute_plan
from stretto.operators.family import FamilySpec
from stretto.optimizer.physical_plan import Cascade, PhysicalPlan
from stretto.optimizer.problem import PlanProblem, filter_sample
from stretto.plan.query import Query
from stretto.plan.targets import Targets
from stretto.profiling.profile import Profile, ProfileStore, row_keys
from stretto.profiling.sample import profile_rows, profiling_sample, sample_seconds


class Optimizer(Protocol):
    """Every system (Stretto, its ablations, the baselines) turns the same problem into a physical plan."""

    name: str

    def optimize(self, problem: PlanProblem) -> PhysicalPlan: ...


@dataclass(frozen=True)
class QueryRun:
    plan: PhysicalPlan
    execution: PlanExecution
    sample: np.ndarray  # row positions of the profiling sample
    profile: Profile
    problem: PlanProblem  # what the optimizer saw
    profile_seconds: float  # operator seconds spent on the sample (all candidates and gold)
    optimize_seconds: float  # wall time of the optimizer

    @property
    def total_seconds(self) -> float:
        return self.profile_seconds + self.optimize_seconds + self.execution.seconds


def profile_query(
    table: Table,
    query: Query,
    source: OperatorSource,
    family: FamilySpec,
    *,
    sample: np.ndarray,
    store: ProfileStore | None = None,
    progress: bool = True,
) -> Profile:
    rows = table.df.iloc[sample]
    operators = [source.operator(f.template, identity) for f in query.operators for identity in family.identities]
    return profile_rows(rows, operators, store=store, progress=progress)


def plan_problem(
    table: Table,
    query: Query,
    family: FamilySpec,
    profile: Profile,
    sample: np.ndarray,
    targets: Targets,
    upstream_recall: float = 1.0,
) -> PlanProblem:
    rows = table.df.iloc[sample]
    filters = tuple(
        filter_sample(profile, f.template, row_keys(rows, f.template), family.identities, family.gold_identity)
        for f in query.operators
    )
    return PlanProblem(filters, targets, len(sample) / len(table), upstream_recall)


def run_query(
    table: Table,
    query: Query,
    source: OperatorSource,
    family: FamilySpec,
    targets: Targets,
    optimizer: Optimizer,
    *,
    sample_fraction: float = 0.15,
    seed: int = 0,
    store: ProfileStore | None = None,
    progress: bool = True,
    upstream_recall: float = 1.0,
) -> QueryRun:
    """Answer the query at the targets: profile a seeded sample, optimize on it, execute the plan on the table."""
    query.check(table)
    sample = profiling_sample(len(table), sample_fraction, seed)
    profile = profile_query(table, query, source, family, sample=sample, store=store, progress=progress)
    problem = plan_problem(table, query, family, profile, sample, targets, upstream_recall)
    began = time.perf_counter()
    plan = optimizer.optimize(problem)
    optimize_seconds = time.perf_counter() - began
    execution = execute_plan(table, plan, source, sample=sample, profile=profile, seed=seed, progress=progress)
    templates = [f.template for f in query.operators]
    spent = sample_seconds(profile, table.df.iloc[sample], templates, family.identities)
    return QueryRun(plan, execution, sample, profile, problem, spent, optimize_seconds)


def one_operator_plan(query: Query, family: FamilySpec) -> PhysicalPlan:
    """No optimizer: the family's gold operator answers every filter and extract on every row, at its threshold
    (family.gold.threshold). A one-member family is one operator at a threshold, and this is its plan, executed
    like every optimized plan; its bounds are 1 by definition (the guarantees are relative to the gold operator)."""
    cascades = tuple(Cascade.gold_only(op.template.text, family.gold_identity) for op in query.operators)
    nan = float("nan")
    exact = "exact: the gold operator alone (the guarantees are relative to it)"
    return PhysicalPlan(cascades, 1.0, 1.0, nan, nan, system="none", certified=True, bounds=exact)
