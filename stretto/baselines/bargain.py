"""BARGAIN: the real `bargain` package's precision-and-recall procedure (BARGAIN_PR), per filter.

BARGAIN_PR orders records by proxy score and, with betting-based finite-sample bounds, finds a rejection
index t_R (recall) and an acceptance index t_P (precision); records in between go to the oracle. We feed it
the profiled sample (proxy: the chosen candidate's scores; oracle: the gold operator's recorded decisions),
read its two indices off the fitted object and turn them into score thresholds for the whole table.
BARGAIN_PR has one target for both: max(T_P, T_R), split per filter like LOCAL's; delta = 1 - alpha^(1/n).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
from BARGAIN import BARGAIN_PR, Oracle, Proxy

from stretto.baselines.proxy import proxy_candidates, proxy_cascade_plan
from stretto.optimizer.physical_plan import PhysicalPlan
from stretto.optimizer.problem import OperatorSample, PlanProblem
from stretto.plan.targets import Targets


@dataclass(frozen=True)
class BargainSettings:
    proxy: str | None = None  # candidate operator used as the proxy (default: small model, full cache)
    window: int = 50  # W: sliding window of the precision search
    thresholds: int = 20  # M: thresholds of the fallback precision search
    sample_step: int = 10  # oracle labels per batch
    seed: int = 0


class _RecordedProxy(Proxy):
    """Records are sample positions; the score is the rank of the recorded log-odds (only the order matters)."""

    def __init__(self, scores: np.ndarray) -> None:
        super().__init__(verbose=False, max_workers=1)
        self.rank = np.argsort(np.argsort(scores, kind="stable"), kind="stable")
        self.n = len(scores)

    def proxy_func(self, input: str) -> tuple[Any, float]:
        return 1, (self.rank[int(input)] + 0.5) / self.n


class _RecordedOracle(Oracle):
    def __init__(self, labels: np.ndarray) -> None:
        super().__init__(verbose=False, max_workers=1)
        self.labels = labels

    def oracle_func(self, input: str, proxy_output: Any) -> tuple[bool, Any]:
        label = int(self.labels[int(input)])
        return label == proxy_output, label


def thresholds(
    scores: np.ndarray, labels: np.ndarray, target: float, delta: float, s: BargainSettings
) -> tuple[float, float, int, int]:
    """(lower, upper, t_R, t_P): discard below the t_R-th smallest score, keep from the t_P-th on."""
    run = BARGAIN_PR(
        _RecordedProxy(scores),
        _RecordedOracle(labels),
        delta=delta,
        target=target,
        W=s.window,
        M=s.thresholds,
        sample_step=s.sample_step,
        verbose=False,
        seed=s.seed,
    )
    run.process([str(i) for i in range(len(scores))])
    ordered = np.sort(scores, kind="stable")
    lower = float(ordered[run.t_R_]) if run.t_R_ < len(ordered) else math.inf
    upper = float(np.nextafter(ordered[run.t_P_], -math.inf)) if run.t_P_ < len(ordered) else math.inf
    return min(lower, upper), upper, int(run.t_R_), int(run.t_P_)


class BargainOptimizer:
    name = "bargain"

    def __init__(self, settings: BargainSettings | None = None) -> None:
        self.settings = settings or BargainSettings()

    def candidates(self, identities: list[str], gold: str) -> list[str]:
        """Only the proxy and gold are profiled (see proxy_candidates)."""
        return proxy_candidates(identities, gold, self.settings.proxy)

    def optimize(self, problem: PlanProblem) -> PhysicalPlan:
        def bargain_thresholds(f: OperatorSample, scores: np.ndarray, split: Targets) -> tuple[float, float, dict]:
            target = max(split.precision, split.recall)
            lower, upper, t_r, t_p = thresholds(scores, f.labels, target, 1 - split.alpha, self.settings)
            return lower, upper, {"t_R": t_r, "t_P": t_p, "sample": len(f.labels)}

        return proxy_cascade_plan(problem, self.name, self.settings.proxy, bargain_thresholds)
