"""BARGAIN over the whole table, as its authors run it: the real `bargain` package (0.1.3), BARGAIN_PR.

`BARGAIN_PR.process(records)` is given every row the filter sees (those every earlier filter kept). Its proxy
is the cheap operator's P(yes) on every row (the engine scores it first); its oracle is the gold operator, called
on the rows BARGAIN's adaptive sampling picks (each row charged once, as a label, at the gold operator's
measured seconds). It sorts the rows by proxy score and, with betting-based finite-sample bounds over the
table (without replacement), finds a rejection index t_R (recall, at delta/2: uniform sampling until ~100
positives) and an acceptance index t_P (precision, at delta/2: a sliding window then validation, or its
fallback search); rows in between go to the oracle. We read t_R and t_P off the fitted object and run that
cascade: proxy scores below the t_R-th are discarded, from the t_P-th up kept, the rest answered by gold.
Every row BARGAIN labelled is answered by its label (as every system's labelled rows are): that drops the
labelled negatives BARGAIN would keep above t_P and keeps the labelled positives it found below t_R (as it
does), so precision can only rise and recall is BARGAIN's.

Targets: Stretto's always bound both precision and recall, which is BARGAIN_PR's case (BARGAIN_P and BARGAIN_R
bound one of them); BARGAIN_PR takes one target for both: max(T_P, T_R) of the filter's split. Conjunctions are
handled as its authors would, one BARGAIN_PR per filter at the split targets, delta = 1 - alpha^(1/n): a
per-filter guarantee, not an end-to-end one (see proxy.py). delta is BARGAIN's failure probability, as its
documentation defines it ("guarantees the set has precision >= target AND recall >= target with probability
>= 1 - delta").
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from BARGAIN import BARGAIN_PR, Oracle, Proxy

from stretto.baselines.proxy import Oracle as GoldOracle
from stretto.baselines.proxy import per_filter_targets, probabilities, proxy_identity
from stretto.plan.targets import Targets


@dataclass(frozen=True)
class BargainSettings:
    proxy: str | None = None  # the cheap operator used as the proxy (default: the small model, full cache)
    window: int = 50  # W: sliding window of the precision search
    thresholds: int = 20  # M: thresholds of the fallback precision search
    sample_step: int = 10  # oracle labels per batch
    seed: int = 0  # filter i runs with seed + i


class _ScoredProxy(Proxy):
    """Records are positions; the proxy's answer is its decision and its confidence in it (BARGAIN's contract:
    it recovers P(yes) as pred * score + (1 - pred) * (1 - score))."""

    def __init__(self, p_yes: np.ndarray) -> None:
        super().__init__(verbose=False, max_workers=1)
        self.p_yes = p_yes

    def proxy_func(self, input: str) -> tuple[Any, float]:
        p = float(self.p_yes[int(input)])
        return (1, p) if p >= 0.5 else (0, 1.0 - p)


class _GoldOracle(Oracle):
    """The gold operator through the engine's oracle: BARGAIN's per-record cache kept, the uncached records of a
    batch asked in one call (the gold operator scores in batches)."""

    def __init__(self, oracle: GoldOracle) -> None:
        super().__init__(verbose=False, max_workers=1)
        self.oracle = oracle

    def get_pred(self, data_records: list, indxs: list | None = None) -> np.ndarray:
        positions = [int(r) for r in data_records]
        new = [p for p in positions if p not in self.preds_dict]
        if new:
            self.preds_dict.update(zip(new, self.oracle(np.array(new)).astype(int).tolist(), strict=True))
        return np.array([self.preds_dict[p] for p in positions])

    def oracle_func(self, input: str, proxy_output: Any) -> tuple[bool, Any]:
        label = int(self.get_pred([input])[0])
        return label == proxy_output, label


def bargain_pr(
    scores: np.ndarray, oracle: GoldOracle, target: float, delta: float, s: BargainSettings, seed: int
) -> tuple[BARGAIN_PR, list[int]]:
    """The fitted BARGAIN_PR over these rows (their proxy log-odds) and the positions it returns as positive."""
    run = BARGAIN_PR(
        _ScoredProxy(probabilities(scores)),
        _GoldOracle(oracle),
        delta=delta,
        target=target,
        W=s.window,
        M=s.thresholds,
        sample_step=s.sample_step,
        verbose=False,
        seed=seed,
    )
    positive = run.process([str(i) for i in range(len(scores))])
    return run, positive


def thresholds(scores: np.ndarray, t_r: int, t_p: int) -> tuple[float, float]:
    """(lower, upper) on the raw scores: discard below the t_R-th smallest score, keep from the t_P-th on (the
    executor discards scores < lower and keeps scores > upper); rows tied with a boundary score go to gold."""
    ordered = np.sort(scores, kind="stable")
    lower = float(ordered[t_r]) if t_r < len(ordered) else math.inf
    upper = float(np.nextafter(ordered[t_p], -math.inf)) if t_p < len(ordered) else math.inf
    return min(lower, upper), upper


class BargainOptimizer:
    """BARGAIN_PR per filter over the whole table (see the module's docstring); the engine scores the proxy on
    every row, buys the oracle's labels and runs the cascade (engine/on_table.py)."""

    name = "bargain"

    def __init__(self, settings: BargainSettings | None = None) -> None:
        self.settings = settings or BargainSettings()

    def proxy(self, identities: Sequence[str], gold: str) -> str:
        return proxy_identity(identities, gold, self.settings.proxy)

    def table_thresholds(
        self, scores: np.ndarray, oracle: GoldOracle, targets: Targets, filters: int, index: int
    ) -> tuple[float, float, dict]:
        split = per_filter_targets(targets, filters)
        target = max(split.precision, split.recall)
        run, _ = bargain_pr(scores, oracle, target, 1 - split.alpha, self.settings, self.settings.seed + index)
        lower, upper = thresholds(scores, run.t_R_, run.t_P_)
        return lower, upper, {"t_R": int(run.t_R_), "t_P": int(run.t_P_), "target": target, "rows": len(scores)}
