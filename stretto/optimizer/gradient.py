"""Stretto's global optimizer: gradient descent on the relaxed plan, many restarts in one batched program.

loss = lambda * relu(T_P - P_lower) + lambda * relu(T_R - R_lower) + cost / gold-only cost, for J jobs at
once with lambda log-spaced across jobs. Stage 1 tunes picks and thresholds while the temperatures
anneal; stage 2 freezes the picks (hard participation) and tunes thresholds and forcing fractions.
Every job is then checked with hard decisions and exact bounds; the cheapest feasible one wins.
If none is feasible the penalty grows and it retries; if still none, the plan is the gold operator alone.
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass, replace

import torch

from stretto.optimizer.guarantees import BOUNDS
from stretto.optimizer.physical_plan import Cascade, PhysicalPlan, Step
from stretto.optimizer.problem import PlanProblem
from stretto.optimizer.relaxation import DTYPE, Params, SampleTensors, cascade, evaluate, gold_only_cost
from stretto.optimizer.reorder import best_order
from stretto.optimizer.simulate import gold_only_plan

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class GradientSettings:
    jobs: int = 64
    steps: int = 150  # stage 1: picks and thresholds, temperatures annealed
    refine_steps: int = 75  # stage 2: thresholds and forcing only, picks frozen
    lr: float = 0.05
    lr_decay: float = 0.998  # per step
    tau_start: float = 0.11
    tau_end: float = 0.01
    lambda_min: float = 1.0
    lambda_max: float = 100.0
    retries: int = 2
    retry_factor: float = 10.0
    bound: str = "beta"
    certify_fraction: float = 0.5  # share of the sample kept out of tuning; the bounds are computed on it
    seed: int = 0

    def __post_init__(self) -> None:
        if self.jobs < 1 or self.steps < 0 or self.refine_steps < 0 or self.retries < 0:
            raise ValueError(f"jobs >= 1 and steps, refine_steps, retries >= 0 required: {self}")
        if self.bound not in BOUNDS:
            raise ValueError(f"unknown bound '{self.bound}'; choose one of {list(BOUNDS)}")


class GradientOptimizer:
    """Implements the optimizer interface: optimize(problem) -> PhysicalPlan."""

    name = "stretto"

    def __init__(self, settings: GradientSettings | None = None) -> None:
        self.settings = settings or GradientSettings()

    def _descend(self, t: SampleTensors, problem: PlanProblem, params: Params, lam: torch.Tensor, stage: int) -> None:
        s = self.settings
        steps = s.steps if stage == 1 else s.refine_steps
        tensors = params.tensors() if stage == 1 else params.tensors()[1:]
        for x in tensors:
            x.requires_grad_(True)
        opt = torch.optim.Adam(tensors, lr=s.lr)
        sched = torch.optim.lr_scheduler.ExponentialLR(opt, gamma=s.lr_decay)
        gold = gold_only_cost(t)
        for step in range(steps):
            frac = step / max(1, steps - 1)
            if stage == 1:
                tau = s.tau_start * (s.tau_end / s.tau_start) ** frac
                tau_pick = tau
            else:
                tau = s.tau_end * (0.1**frac)
                tau_pick = 1e-3
            out = evaluate(t, params, tau_pick, tau)
            precision, recall = out.bounds(problem, s.bound)
            loss = (
                lam * torch.relu(problem.targets.precision - precision)
                + lam * torch.relu(problem.targets.recall - recall)
                + out.cost / gold
            )
            opt.zero_grad()
            loss.sum().backward()
            opt.step()
            sched.step()
        for x in tensors:
            x.requires_grad_(False)

    def _attempt(self, t: SampleTensors, problem: PlanProblem, scale: float, seed: int) -> Params:
        s = self.settings
        generator = torch.Generator().manual_seed(seed)
        n_filters, slots = t.valid.shape
        params = Params.random(s.jobs, n_filters, slots, generator)
        lam = torch.logspace(math.log10(s.lambda_min), math.log10(s.lambda_max), s.jobs, dtype=DTYPE) * scale
        self._descend(t, problem, params, lam, stage=1)
        params.pick = torch.where(params.pick > 0, 1.0, -1.0).to(DTYPE)  # freeze the picks
        self._descend(t, problem, params, lam, stage=2)
        return params

    def optimize(self, problem: PlanProblem) -> PhysicalPlan:
        began = time.perf_counter()
        s = self.settings
        tune, certify = problem.split(s.certify_fraction, s.seed)
        t = SampleTensors.of(tune)
        c = SampleTensors.of(certify, like=t)
        whole = SampleTensors.of(problem, like=t)
        # The gold operator alone has the most hits and no misses, so it bounds every plan's bounds from above:
        # if even it cannot certify the targets, no cascade can, and descent is skipped.
        attempts = s.retries + 1 if self._gold_is_feasible(c, certify) else 0
        for attempt in range(attempts):
            params = self._attempt(t, tune, s.retry_factor**attempt, s.seed + attempt)
            with torch.no_grad():
                precision, recall = evaluate(c, params, hard=True).bounds(certify, s.bound)
                cost = evaluate(whole, params, hard=True).cost
            feasible = (precision >= problem.targets.precision) & (recall >= problem.targets.recall)
            if feasible.any():
                job = int(torch.argmin(torch.where(feasible, cost, torch.inf)))
                plan = to_plan(whole, problem, params, job, self.name, s.bound)
                plan = replace(plan, precision_lower=float(precision[job]), recall_lower=float(recall[job]))
                plan.notes.update(attempts=attempt + 1, feasible_jobs=int(feasible.sum()))
                plan.notes.update(certified_on=certify.n_tuples, optimize_seconds=time.perf_counter() - began)
                return plan
            log.info("attempt %d: no feasible plan among %d jobs; raising the penalty", attempt + 1, s.jobs)
        log.warning(
            "targets precision >= %s, recall >= %s at alpha %s cannot be certified by any cascade on the %d held-out "
            "tuples of a %d-tuple sample: falling back to the gold operator alone (a larger sample certifies more)",
            problem.targets.precision,
            problem.targets.recall,
            problem.targets.alpha,
            certify.n_tuples,
            problem.n_tuples,
        )
        plan = gold_only_plan(problem, self.name, fallback=True)
        plan.notes.update(attempts=attempts, feasible_jobs=0, optimize_seconds=time.perf_counter() - began)
        return plan

    def _gold_is_feasible(self, t: SampleTensors, problem: PlanProblem) -> bool:
        n_filters, slots = t.valid.shape
        off = torch.full((1, n_filters, slots), -1.0, dtype=DTYPE)  # no cheap operator picked
        never = torch.full((1, n_filters), -torch.inf, dtype=DTYPE)  # no forcing needed
        gold_only = Params(off, off.clone(), off.clone(), never, never.clone())
        precision, recall = evaluate(t, gold_only, hard=True).bounds(problem, self.settings.bound)
        return bool(precision[0] >= problem.targets.precision and recall[0] >= problem.targets.recall)


def to_plan(
    t: SampleTensors, problem: PlanProblem, params: Params, job: int, system: str, bound: str = "beta"
) -> PhysicalPlan:
    """One job's parameters as cascades in raw score units, ordered by the DP, with its hard-check numbers."""
    one = Params(*(x[job : job + 1].detach().clone() for x in params.tensors()))
    with torch.no_grad():
        keep, seconds, _ = cascade(t, one, 0.0, 0.0, hard=True)
        precision, recall = evaluate(t, one, hard=True).bounds(problem, bound)
    order, cost = best_order(keep[0].numpy(), seconds[0].numpy())
    upper = one.upper[0].numpy()
    cascades = []
    for i in order:
        f = problem.filters[i]
        steps = tuple(
            Step(
                f.candidates[m],
                -math.inf if f.is_extract else float(t.mean[i, m] + t.std[i, m] * one.lower[0, i, m]),
                float(t.mean[i, m] + t.std[i, m] * upper[i, m]),
            )
            for m in range(len(f.candidates))
            if one.pick[0, i, m] > 0
        )
        accept, discard = torch.sigmoid(one.force_accept[0, i]), torch.sigmoid(one.force_discard[0, i])
        cascades.append(Cascade(f.template, steps, f.gold, float(accept), float(discard)))
    return PhysicalPlan(
        tuple(cascades), float(precision), float(recall), cost, gold_only_cost(t), system=system, notes={"job": job}
    )
