"""End-to-end guarantees: lower confidence bounds on a plan's precision and recall from (soft) counts.

Bayesian (the default): with a Beta(1, 1) prior, precision after TP hits and FP misses is
Beta(TP + 1, FP + 1); its lower credible bound at confidence alpha is the (1 - alpha) quantile.
Clopper-Pearson is the frequentist option: Beta(TP, FP + 1). The optimizer needs gradients
through soft counts, so a bound's value is the exact quantile and its gradient is that of the
normal approximation mean - z * std (straight-through): exact where it matters (feasibility),
smooth where it helps (descent).

The profiled sample's tuples are answered by the gold operator in the final result, so recall is
known exactly there and only the remainder is bounded (`blended_recall`). Forcing a random
fraction of a cascade's would-be accepts or discards to the gold operator turns those errors
into correct answers at the gold operator's price (`forced_keep`).
"""

from __future__ import annotations

import torch
from scipy import stats

from stretto.optimizer.physical_plan import gold_share

BOUNDS = ("beta", "clopper_pearson")


def check_alpha(alpha: float) -> None:
    if not 0.0 < alpha < 1.0:
        raise ValueError(f"confidence alpha={alpha} is outside (0, 1)")


def _normal_approx(successes: torch.Tensor, failures: torch.Tensor, alpha: float) -> torch.Tensor:
    a, b = successes + 1.0, failures + 1.0
    mean = a / (a + b)
    var = a * b / ((a + b) ** 2 * (a + b + 1.0))
    return mean - float(stats.norm.ppf(alpha)) * var.sqrt()


def lower_bound(successes: torch.Tensor, failures: torch.Tensor, alpha: float, kind: str = "beta") -> torch.Tensor:
    """Exact lower bound of a rate as the value, the normal approximation's gradient as the gradient."""
    check_alpha(alpha)
    if kind not in BOUNDS:
        raise ValueError(f"unknown bound '{kind}'; choose one of {list(BOUNDS)}")
    successes = torch.as_tensor(successes, dtype=torch.float64)
    failures = torch.as_tensor(failures, dtype=torch.float64)
    s, f = successes.detach().cpu().numpy(), failures.detach().cpu().numpy()
    if kind == "beta":
        exact = stats.beta.ppf(1.0 - alpha, s + 1.0, f + 1.0)
    else:  # Clopper-Pearson: 0 when there is no success at all
        exact = stats.beta.ppf(1.0 - alpha, s.clip(min=1e-12), f + 1.0) * (s > 0)
    approx = _normal_approx(successes, failures, alpha)
    return approx + (torch.as_tensor(exact, dtype=approx.dtype, device=approx.device) - approx).detach()


def blended_recall(recall_sample: torch.Tensor, recall_lower: torch.Tensor, sample_fraction: float) -> torch.Tensor:
    """Recall over the whole table: known exactly on the profiled sample, bounded on the remainder."""
    if not 0.0 <= sample_fraction <= 1.0:
        raise ValueError(f"sample fraction {sample_fraction} is outside [0, 1]")
    return sample_fraction * recall_sample + (1.0 - sample_fraction) * recall_lower


def forced_keep(
    accepted: torch.Tensor,
    discarded: torch.Tensor,
    unsure: torch.Tensor,
    label: torch.Tensor,
    force_accept: torch.Tensor,
    force_discard: torch.Tensor,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Keep probability and gold-operator share of a tuple when fractions of accepts/discards go to gold.

    accepted / discarded / unsure: how the cheap operators left the tuple; the gold operator decides the
    unsure ones and the forced fractions, and its decision is the label.
    """
    keep, to_gold, _ = gold_share(accepted, discarded, unsure, label, force_accept, force_discard)
    return keep, to_gold
