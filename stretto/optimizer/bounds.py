"""Lower confidence bounds on precision and recall from (soft) counts.

Bayesian: with a Beta(1, 1) prior, precision after TP hits and FP misses is Beta(TP + 1, FP + 1); its
lower credible bound at confidence alpha is the (1 - alpha) quantile. The optimizer needs gradients
through soft counts, so `beta_lower_bound` returns the exact quantile as its value and takes its
gradient from the normal approximation mean - z * std (straight-through): exact where it matters
(feasibility), smooth where it helps (descent). Clopper-Pearson is the frequentist option.
"""

from __future__ import annotations

import torch
from scipy import stats


def _normal_approx(successes: torch.Tensor, failures: torch.Tensor, alpha: float) -> torch.Tensor:
    a, b = successes + 1.0, failures + 1.0
    mean = a / (a + b)
    var = a * b / ((a + b) ** 2 * (a + b + 1.0))
    return mean - float(stats.norm.ppf(alpha)) * var.sqrt()


def beta_lower_bound(successes: torch.Tensor, failures: torch.Tensor, alpha: float) -> torch.Tensor:
    """(1 - alpha) quantile of Beta(successes + 1, failures + 1); gradient of its normal approximation."""
    if not 0.0 < alpha < 1.0:
        raise ValueError(f"confidence alpha={alpha} is outside (0, 1)")
    successes, failures = (
        torch.as_tensor(successes, dtype=torch.float64),
        torch.as_tensor(failures, dtype=torch.float64),
    )
    exact = stats.beta.ppf(1.0 - alpha, successes.detach().cpu().numpy() + 1.0, failures.detach().cpu().numpy() + 1.0)
    approx = _normal_approx(successes, failures, alpha)
    return approx + (torch.as_tensor(exact, dtype=approx.dtype, device=approx.device) - approx).detach()


def clopper_pearson_lower(successes: int, trials: int, alpha: float) -> float:
    """Exact one-sided binomial lower bound: holds with probability >= alpha for every true rate."""
    if not 0.0 < alpha < 1.0:
        raise ValueError(f"confidence alpha={alpha} is outside (0, 1)")
    if successes == 0:
        return 0.0
    return float(stats.beta.ppf(1.0 - alpha, successes, trials - successes + 1))


def blended_recall(recall_sample: torch.Tensor, recall_lower: torch.Tensor, sample_fraction: float) -> torch.Tensor:
    """Recall over the whole table: known exactly on the profiled sample, bounded on the remainder."""
    if not 0.0 <= sample_fraction <= 1.0:
        raise ValueError(f"sample fraction {sample_fraction} is outside [0, 1]")
    return sample_fraction * recall_sample + (1.0 - sample_fraction) * recall_lower
