"""What the per-operator baselines share: one proxy operator per filter and the per-filter split of the targets."""

from __future__ import annotations

from stretto.errors import OptimizerError
from stretto.optimizer.ablations import share_targets
from stretto.optimizer.problem import FilterSample
from stretto.plan.targets import Targets

UNCOMPRESSED = "/none@0.00"


def proxy_index(f: FilterSample, proxy: str | None) -> int:
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
    full = [i for i, c in enumerate(f.candidates) if c.endswith(UNCOMPRESSED)]
    return full[0] if full else 0


def per_filter_targets(targets: Targets, n_filters: int) -> Targets:
    """The even split per-operator systems use: T^(1/n) each, confidence alpha^(1/n) (a union over n cascades)."""
    n_filters = max(1, n_filters)  # a plan of extracts only splits nothing
    return share_targets(targets, 1.0 / n_filters, n_filters)
