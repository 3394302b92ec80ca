"""LOTUS over the whole table, as its authors run it (lotus-ai 1.2.4, `sem_filter` with `CascadeArgs`).

Per filter, on the rows every earlier filter kept (`lotus/sem_ops/sem_filter.py`, `cascade_utils.py`):
1. the helper model (the proxy: the small LLM on its full cache) scores every row; its P(yes) is calibrated to
   quantile ranks (`calibrate_llm_logprobs`, 50 quantiles);
2. an importance sample of int(10% of the rows) draws, with replacement, from the first 200 rows
   (`cascade_IS_max_sample_range`), with probability ~ 0.9 * sqrt(score) + 0.1 * uniform; each draw is weighted
   by its correction factor (1/n) / w (`importance_sampling`); the oracle (the gold operator) labels the rows
   drawn, each row charged once;
3. on that sample: the discard threshold tau_- that meets the recall target, again for a target corrected by a
   normal-style upper/lower bound at delta/2; the keep threshold tau_+ is the lowest score above which the
   precision's lower bound (delta / sample size) beats the target (`learn_cascade_thresholds`);
4. rows with calibrated score >= tau_+ are kept, <= tau_- discarded (keep checked first), the rest go to the
   oracle (rows it already labelled answer from their label).
Per filter at the split targets of `proxy.per_filter_targets`, delta = 1 - alpha^(1/n): a per-filter bound, not
an end-to-end one (see proxy.py). Two adaptations, both where LOTUS's own code would fail rather than choose:
positions index the sample (LOTUS indexes a filtered DataFrame's labels with positions, `self._obj.loc[...]`,
which breaks on a second filter), and calibration is on the raw log-odds (the same ranks as on probabilities).

Why a port and not the package: lotus-ai 1.2.4 requires numpy<2 and sentence-transformers<4 (hence
transformers<5), while kvpress needs transformers>=5.2: they cannot share an environment. The port keeps LOTUS's
arithmetic exactly (its quirks included: accepted positives count unweighted in the recall estimate; tau_+ = 1.0
still keeps the top quantile; the corrected recall target UB(z1) / (UB(z1) + LB(z2)) is formed from the per-row
means of the two sides, not their sums, so it falls below the target where positives spread evenly over the proxy's
scores: .71 -> .43 on rotowire's "won the game", README); `make lotus-test` calls the real package in its own
virtualenv on the same arrays and compares (tests/test_lotus_original.py), and tests/test_baselines.py pins worked
examples.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from stretto.baselines.proxy import Oracle, per_filter_targets, proxy_identity
from stretto.plan.targets import Targets


@dataclass(frozen=True)
class LotusSettings:
    """`CascadeArgs` of lotus-ai 1.2.4 (their defaults), the delta aside: it comes from the query's alpha."""

    proxy: str | None = None  # the helper model's operator (default: the small model on its full cache)
    sampling_percentage: float = 0.1  # sampling_percentage: oracle draws per row of the table
    max_sample_range: int = 200  # cascade_IS_max_sample_range: draws come from the first rows only
    is_weight: float = 0.9  # cascade_IS_weight
    calibration_quantiles: int = 50  # cascade_num_calibration_quantiles
    seed: int = 0  # cascade_IS_random_seed (filter i draws with seed + i)


def quantile_edges(scores: np.ndarray, quantiles: int) -> np.ndarray:
    return np.percentile(scores, np.linspace(0, 100, quantiles + 1))


def calibrate(scores: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """LOTUS's calibrate_llm_logprobs: the quantile bin of each score, as a fraction in [0, 1]."""
    quantiles = len(edges) - 1
    return np.clip((np.digitize(scores, edges) - 1) / quantiles, 0.0, 1.0)


def importance_sample(
    proxy_scores: np.ndarray, is_weight: float, sampling_percentage: float, max_sample_range: int, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """(drawn indices, correction factor of every index): LOTUS's importance_sampling, the same draws as its
    np.random.seed(seed) + np.random.choice."""
    w = np.sqrt(proxy_scores)
    n = len(proxy_scores)
    w = is_weight * w / np.sum(w) + (1 - is_weight) * np.ones(n) / n
    sample_range = min(max_sample_range, n)
    sample_w = w[:sample_range] / np.sum(w[:sample_range])
    indices = np.random.RandomState(seed).choice(np.arange(sample_range), int(sampling_percentage * n), p=sample_w)
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
    """(lower, upper) in raw score units that reproduce LOTUS's decisions on calibrated scores (the executor keeps
    scores > upper and discards scores < lower).

    calibrate(s) >= tau_+  <=>  s >= edges[ceil(tau_+ Q)] (every s when that index is 0);
    calibrate(s) <= tau_-  <=>  s < edges[floor(tau_- Q) + 1];
    LOTUS checks keep first, so the discard edge never passes the keep edge.
    """
    quantiles = len(edges) - 1
    k = min(max(math.ceil(tau_pos * quantiles - 1e-9), 0), quantiles)
    m = math.floor(tau_neg * quantiles + 1e-9) + 1
    keep_edge = float(edges[k]) if k > 0 else -math.inf  # tau_+ = 0 keeps every row
    discard_edge = float(edges[m]) if m <= quantiles else math.inf
    return min(discard_edge, keep_edge), float(np.nextafter(keep_edge, -math.inf))


class LotusOptimizer:
    """LOTUS's filter cascade over the whole table (see the module's docstring); the engine scores the proxy on
    every row, buys the oracle's labels and runs the cascade (engine/on_table.py)."""

    name = "lotus"

    def __init__(self, settings: LotusSettings | None = None) -> None:
        self.settings = settings or LotusSettings()

    def proxy(self, identities: Sequence[str], gold: str) -> str:
        return proxy_identity(identities, gold, self.settings.proxy)

    def table_thresholds(
        self, scores: np.ndarray, oracle: Oracle, targets: Targets, filters: int, index: int
    ) -> tuple[float, float, dict]:
        """(lower, upper) on the proxy's raw scores of this filter's rows, and what the plan notes."""
        s, split = self.settings, per_filter_targets(targets, filters)
        edges = quantile_edges(scores, s.calibration_quantiles)
        calibrated = calibrate(scores, edges)
        drawn, correction = importance_sample(
            calibrated, s.is_weight, s.sampling_percentage, s.max_sample_range, s.seed + index
        )
        if len(drawn) == 0:  # fewer than 1 / sampling_percentage rows: nothing to learn from, the oracle decides
            return -math.inf, math.inf, {"draws": 0, "labelled": 0}
        labels = oracle(drawn)
        tau_pos, tau_neg = learn_thresholds(
            calibrated[drawn], labels, correction[drawn], split.precision, split.recall, 1 - split.alpha
        )
        notes = {"tau_pos": tau_pos, "tau_neg": tau_neg, "draws": len(drawn), "labelled": len(np.unique(drawn))}
        return *raw_thresholds(edges, tau_pos, tau_neg), notes
