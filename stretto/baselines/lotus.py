"""LOTUS: a proxy + gold cascade per filter, thresholds by LOTUS's importance-sampling method.

The published method (LOTUS, `lotus/sem_ops/cascade_utils.py`, lotus-ai 1.2.4), step by step:
1. calibrate the proxy's scores to quantile ranks (`calibrate`);
2. draw a sample with probability ~ 0.9 * sqrt(score) + 0.1 * uniform and weight each draw by its
   correction factor (1/n) / w (`importance_sample`);
3. on that sample: the discard threshold tau_- that meets the recall target, again for a target corrected by a
   normal-style upper/lower bound at delta/2; the keep threshold tau_+ is the lowest score above which the
   precision's lower bound (delta / sample size) beats the target (`learn_thresholds`).
Rows with calibrated score >= tau_+ are kept, <= tau_- discarded, the rest go to the gold operator.

Why a port and not the package: lotus-ai 1.2.4 requires numpy<2 and sentence-transformers<4 (hence
transformers<5), while kvpress needs transformers>=5.2 — they cannot share an environment. The port keeps
LOTUS's arithmetic exactly (its quirks included: accepted positives count unweighted in the recall estimate;
tau_+ = 1.0 still keeps the top quantile); `tests/test_baselines.py` pins it to numbers computed by lotus-ai
itself. Adaptations, so that LOTUS runs on the same profiles as every other system: the importance sample is
drawn from the profiled sample (LOTUS draws it from the table's first 200 rows), calibration is on the raw
log-odds (the same ranks as on probabilities), and the targets are split per filter like LOCAL's.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from stretto.baselines.proxy import proxy_candidates, proxy_cascade_plan
from stretto.optimizer.physical_plan import PhysicalPlan
from stretto.optimizer.problem import OperatorSample, PlanProblem
from stretto.plan.targets import Targets


@dataclass(frozen=True)
class LotusSettings:
    proxy: str | None = None  # candidate operator used as LOTUS's helper model (default: small model, full cache)
    is_weight: float = 0.9  # cascade_IS_weight
    calibration_quantiles: int = 50  # cascade_num_calibration_quantiles
    seed: int = 0  # cascade_IS_random_seed


def quantile_edges(scores: np.ndarray, quantiles: int) -> np.ndarray:
    return np.percentile(scores, np.linspace(0, 100, quantiles + 1))


def calibrate(scores: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """LOTUS's calibrate_llm_logprobs: the quantile bin of each score, as a fraction in [0, 1]."""
    quantiles = len(edges) - 1
    return np.clip((np.digitize(scores, edges) - 1) / quantiles, 0.0, 1.0)


def importance_sample(
    proxy_scores: np.ndarray, is_weight: float, size: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """(drawn indices, correction factor of every index): LOTUS's importance_sampling."""
    w = np.sqrt(proxy_scores)
    n = len(proxy_scores)
    w = is_weight * w / np.sum(w) + (1 - is_weight) * np.ones(n) / n
    indices = rng.choice(np.arange(n), size, p=w / w.sum())
    return indices, (1 / n) / w


def _bound(values: list[float], size: int, delta: float, sign: float) -> float:
    """LOTUS's UB (sign +1) / LB (sign -1): mean +- std / sqrt(size) * sqrt(2 ln(1/delta))."""
    mean = float(np.mean(values)) if values else 0.0
    std = float(np.std(values)) if values else 0.0
    return mean + sign * (std / size**0.5) * (2 * math.log(1 / delta)) ** 0.5


def learn_thresholds(
    proxy_scores: np.ndarray,
    labels: np.ndarray,
    correction: np.ndarray,
    precision_target: float,
    recall_target: float,
    failure_probability: float,
) -> tuple[float, float]:
    """(tau_+, tau_-): LOTUS's learn_cascade_thresholds on one importance sample."""
    pairs = sorted(zip(proxy_scores.tolist(), labels.astype(bool).tolist(), correction.tolist(), strict=True),
                   key=lambda x: x[0], reverse=True)  # fmt: skip
    n = len(pairs)

    def recall(pos: float, neg: float) -> float:
        total = sum(label * w for _, label, w in pairs)
        if total <= 0:
            return 0.0
        accepted = sum(1 for s, label, _ in pairs if s >= pos and label)
        to_oracle = sum(label * w for s, label, w in pairs if neg < s < pos)
        return (accepted + to_oracle) / total

    def tau_neg(pos: float, target: float) -> float:
        return max((s for s, _, _ in reversed(pairs) if recall(pos, s) >= target), default=0)

    tau_pos = 1.0
    neg = tau_neg(tau_pos, recall_target)
    z1 = [int(label) * w for s, label, w in pairs if s >= neg]
    z2 = [int(label) * w for s, label, w in pairs if s < neg]
    ub1 = _bound(z1, n, failure_probability / 2, +1)
    lb2 = _bound(z2, n, failure_probability / 2, -1)
    corrected = 1.0 if ub1 + lb2 == 0 else min(1.0, ub1 / (ub1 + lb2))
    neg = tau_neg(tau_pos, corrected)

    candidates = [1.0]
    for threshold, _, _ in pairs:
        above = [int(label) for s, label, _ in pairs if s >= threshold]
        if _bound(above, len(above), failure_probability / n, -1) > precision_target:
            candidates.append(threshold)
    return max(neg, min(candidates)), neg


def raw_thresholds(edges: np.ndarray, tau_pos: float, tau_neg: float) -> tuple[float, float]:
    """(lower, upper) in raw score units that reproduce LOTUS's decisions on calibrated scores.

    calibrate(s) >= tau_+  <=>  s >= edges[ceil(tau_+ Q)];  calibrate(s) <= tau_-  <=>  s < edges[floor(tau_- Q) + 1];
    LOTUS checks keep first, so the discard edge never passes the keep edge.
    """
    quantiles = len(edges) - 1
    k = min(max(math.ceil(tau_pos * quantiles - 1e-9), 1), quantiles)
    m = math.floor(tau_neg * quantiles + 1e-9) + 1
    keep_edge = float(edges[k])
    discard_edge = float(edges[m]) if m <= quantiles else math.inf
    return min(discard_edge, keep_edge), float(np.nextafter(keep_edge, -math.inf))


class LotusOptimizer:
    name = "lotus"

    def __init__(self, settings: LotusSettings | None = None) -> None:
        self.settings = settings or LotusSettings()

    def candidates(self, identities: list[str], gold: str) -> list[str]:
        """Only the proxy and gold are profiled (see proxy_candidates)."""
        return proxy_candidates(identities, gold, self.settings.proxy)

    def optimize(self, problem: PlanProblem) -> PhysicalPlan:
        s = self.settings
        rng = np.random.default_rng(s.seed)  # one stream over the filters, in their order

        def lotus_thresholds(f: OperatorSample, scores: np.ndarray, split: Targets) -> tuple[float, float, dict]:
            edges = quantile_edges(scores, s.calibration_quantiles)
            calibrated = calibrate(scores, edges)
            drawn, correction = importance_sample(calibrated, s.is_weight, len(calibrated), rng)
            tau_pos, tau_neg = learn_thresholds(
                calibrated[drawn], f.labels[drawn], correction[drawn], split.precision, split.recall, 1 - split.alpha
            )
            return *raw_thresholds(edges, tau_pos, tau_neg), {"tau_pos": tau_pos, "tau_neg": tau_neg}

        return proxy_cascade_plan(problem, self.name, s.proxy, lotus_thresholds)
