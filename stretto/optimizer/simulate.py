"""A physical plan run on the profiled sample with hard decisions: what it would keep and cost.

Used to cost and check plans that did not come from the relaxation (ablations, baselines), and by
tests to pin the relaxation's tau -> 0 limit. Forcing fractions count as their expectation.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import torch

from stretto.optimizer.guarantees import blended_recall, lower_bound
from stretto.optimizer.physical_plan import Cascade, CheapSteps, PhysicalPlan, gold_share, run_steps
from stretto.optimizer.problem import OperatorSample, PlanProblem
from stretto.optimizer.reorder import best_order


def run_cascade(f: OperatorSample, cascade: Cascade) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(keep probability, seconds, value-correct probability) per sample tuple of one cascade."""
    flow = steps_on_sample(f, cascade)
    seconds = np.zeros(len(f.labels))
    slot = {c: i for i, c in enumerate(f.candidates)}
    for step, reached in zip(cascade.steps, flow.reached, strict=False):
        seconds += reached * f.costs[slot[step.operator]]
    accepted, discarded, unsure = (x.astype(float) for x in (flow.accepted, flow.discarded, flow.unsure))
    forced, right = (cascade.force_accept, cascade.force_discard), flow.right.astype(float)
    keep, to_gold, value_ok = gold_share(accepted, discarded, unsure, f.gold_decisions, *forced, right, f.gold_right)
    return keep, seconds + to_gold * f.gold_cost, value_ok if f.is_extract else np.ones(len(f.labels))


def steps_on_sample(f: OperatorSample, cascade: Cascade) -> CheapSteps:
    """Where one cascade's cheap steps leave each sample tuple (hard decisions on the profiled scores)."""
    slot = [{c: i for i, c in enumerate(f.candidates)}[step.operator] for step in cascade.steps]
    return run_steps(
        cascade.steps,
        lambda k, rows: f.scores[slot[k]][rows],
        np.ones(len(f.labels), bool),
        f.is_extract,
        [f.correct[i] for i in slot] if f.is_extract else None,
    )


@dataclass(frozen=True)
class SampleRun:
    keep: np.ndarray  # (filters, tuples) in problem order
    seconds: np.ndarray  # (filters, tuples)
    tp: float
    fp: float
    fn: float


def simulate(problem: PlanProblem, plan: PhysicalPlan) -> SampleRun:
    by_template = {c.template: c for c in plan.cascades}
    runs = [run_cascade(f, by_template[f.template]) for f in problem.operators]
    keep, seconds = np.array([r[0] for r in runs]), np.array([r[1] for r in runs])
    in_result, belongs = keep.prod(axis=0), problem.labels.astype(float)
    right = np.prod([r[2] for r in runs], axis=0)  # every extracted value equals gold's
    return SampleRun(
        keep,
        seconds,
        float((in_result * belongs * right).sum()),
        float((in_result * (1 - belongs * right)).sum()),
        float((belongs * (1 - in_result * right)).sum()),
    )


def plan_on_sample(
    problem: PlanProblem,
    cascades: list[Cascade],
    system: str,
    *,
    fallback: bool = False,
    notes: dict[str, Any] | None = None,
) -> PhysicalPlan:
    """Cascades tuned by any method as one plan: ordered by the DP, costed and bounded on the whole sample.

    The bounds recorded here are Stretto's (Beta, alpha of the targets) on the sample the plan was tuned on:
    a common yardstick for the plan files, not the guarantee the system itself claims.
    """
    by_template = {c.template: c for c in cascades}
    ordered = tuple(by_template[f.template] for f in problem.operators)
    run = simulate(problem, PhysicalPlan(ordered, 0.0, 0.0, 0.0, 0.0, system=system))
    order, cost = best_order(run.keep, run.seconds)
    gold = simulate(problem, PhysicalPlan(tuple(Cascade.gold_only(c.template, c.gold) for c in ordered), 0, 0, 0, 0))
    alpha, f = problem.targets.alpha, problem.sample_fraction
    precision = float(lower_bound(torch.tensor(run.tp), torch.tensor(run.fp), alpha))
    recall_rest = float(lower_bound(torch.tensor(run.tp), torch.tensor(run.fn), problem.targets.recall_confidence))
    return PhysicalPlan(
        tuple(ordered[i] for i in order),
        precision,
        blended_recall(1.0, recall_rest, f) * problem.upstream_recall,
        cost,
        best_order(gold.keep, gold.seconds)[1],
        system=system,
        fallback=fallback,
        notes=notes or {},
        certified=False,
        bounds=f"in-sample: Beta lower bounds on the {problem.n_tuples} sample tuples the plan was tuned on",
    )


def gold_only_plan(problem: PlanProblem, system: str, *, fallback: bool = False) -> PhysicalPlan:
    """The gold operator on every filter, in the DP's order: gold-only, and every system's fallback."""
    return plan_on_sample(problem, [Cascade.gold_only(f.template, f.gold) for f in problem.operators], system,
                          fallback=fallback)  # fmt: skip


def exact_gold_fallback(problem: PlanProblem, system: str) -> PhysicalPlan:
    """Gold alone when nothing else certifies: its bounds are exact, since the guarantees are relative to gold,
    unless an upstream step (a semantic join's blocking) bounds recall below the target: then gold alone on what
    reaches it cannot be shown to meet the target either, and the plan says plainly that it is not certified."""
    upstream, target = problem.upstream_recall, problem.targets.recall
    capped = upstream < target
    bounds = (
        f"NOT certified: blocking's recall is bounded only by {upstream:.3f} < the recall target {target}, so not "
        "even the gold operator on every candidate pair can be shown to reach it (raise the join's k or window)"
        if capped
        else "exact: the gold operator alone (the guarantees are relative to it)"
    )
    return replace(
        gold_only_plan(problem, system, fallback=True),
        precision_lower=1.0,
        recall_lower=upstream,
        certified=not capped,
        bounds=bounds,
    )
