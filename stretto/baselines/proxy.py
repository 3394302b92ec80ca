"""The proxy-cascade skeleton LOTUS and BARGAIN share: per filter, one proxy operator then the gold operator,
the targets split evenly over the filters; only how the proxy's two thresholds are learned differs."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from stretto.errors import OptimizerError
from stretto.optimizer.ablations import share_targets
from stretto.optimizer.physical_plan import Cascade, PhysicalPlan, Step
from stretto.optimizer.problem import OperatorSample, PlanProblem
from stretto.optimizer.simulate import plan_on_sample
from stretto.plan.targets import Targets
from stretto.profiling.operator import OperatorId

# (filter, the proxy's sample scores, the filter's share of the targets) -> (lower, upper, notes for the plan)
Thresholds = Callable[[OperatorSample, np.ndarray, Targets], tuple[float, float, dict[str, Any]]]


def proxy_index(f: OperatorSample, proxy: str | None) -> int:
    """The candidate a proxy-cascade baseline uses: the one named (identity or a unique part of it), else the
    small model on its full cache (LOTUS's helper model), else the cheapest."""
    if proxy:
        hits = [i for i, c in enumerate(f.candidates) if proxy in c]
        if len(hits) != 1:
            raise OptimizerError(
                f"proxy '{proxy}' matches {len(hits)} of the candidate operators {list(f.candidates)}; name one"
            )
        return hits[0]
    if not f.candidates:
        raise OptimizerError(f"filter '{f.template}' has no cheap operator to use as a proxy")
    full = [i for i, c in enumerate(f.candidates) if _on_full_cache(c)]
    return full[0] if full else 0


def proxy_candidates(identities: Sequence[str], gold: str, proxy: str | None) -> list[str]:
    """The operators a proxy-cascade baseline needs profiled: its proxy and gold, when the proxy can be told from
    the identities alone (the one named, else the one small model on its full cache, else the only cheap one);
    every operator when choosing it needs the measured costs (several full-cache candidates: the cheapest wins)
    or the name is ambiguous (proxy_index then says so)."""
    cheap = [c for c in identities if c != gold]
    full = [c for c in cheap if _on_full_cache(c)] or cheap
    hits = [c for c in cheap if proxy in c] if proxy else full
    return [hits[0], gold] if len(hits) == 1 else list(identities)


def _on_full_cache(identity: str) -> bool:
    """A transformers operator on the uncompressed cache (not a vLLM-served one, nor gold at a moved threshold)."""
    op = OperatorId.maybe(identity)
    return op is not None and op.full_cache and not op.served and op.threshold is None


def per_filter_targets(targets: Targets, n_filters: int) -> Targets:
    """The even split per-operator systems use: T^(1/n) each, confidence alpha^(1/n) (a union over n cascades)."""
    n_filters = max(1, n_filters)  # a plan of extracts only splits nothing
    return share_targets(targets, 1.0 / n_filters, n_filters)


def proxy_cascade_plan(problem: PlanProblem, system: str, proxy: str | None, thresholds: Thresholds) -> PhysicalPlan:
    """One proxy + gold cascade per filter, in filter order, its thresholds from `thresholds`; the targets split
    per filter; extracts run on the gold extractor (these systems have no cascade for them)."""
    split = per_filter_targets(problem.targets, sum(not f.is_extract for f in problem.operators))
    cascades = [Cascade.gold_only(f.template, f.gold) for f in problem.operators if f.is_extract]
    notes = {}
    for f in (f for f in problem.operators if not f.is_extract):
        i = proxy_index(f, proxy)
        lower, upper, notes[f.template] = thresholds(f, f.scores[i], split)
        cascades.append(Cascade(f.template, (Step(f.candidates[i], lower, upper),), f.gold))
    return plan_on_sample(problem, cascades, system, notes=notes)
