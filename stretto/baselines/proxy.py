"""What LOTUS and BARGAIN share: a proxy operator scored on every row, the gold operator as the oracle they call
on the rows they choose, and per-filter targets.

Both are per-operator methods: each filter's cascade (proxy, then the oracle on the rows in between) gets its own
targets, here the even split T^(1/n) at confidence alpha^(1/n) over n filters. That bounds each filter's result
against the filter's own gold answers, NOT the conjunction's: precision and recall of a conjunction are not
products of per-filter rates. Filter A can keep 50 false positives at precision .95 that all fall inside B's kept
true rows (B at precision 1.0): the conjunction's precision is then .5, whatever each filter's bound said. Only
Stretto bounds the query's result end to end.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from stretto.errors import OptimizerError
from stretto.optimizer.ablations import share_targets
from stretto.plan.targets import Targets
from stretto.profiling.operator import OperatorId

# positions into the proxy's scores -> the gold operator's decisions there (each row's label bought once, charged
# as a label at the gold operator's measured seconds)
Oracle = Callable[[np.ndarray], np.ndarray]


def proxy_identity(identities: Sequence[str], gold: str, proxy: str | None) -> str:
    """The operator a proxy-cascade baseline uses: the one named (identity or a unique part of it), else the small
    model on its full cache (LOTUS's helper model; the first in the family's order when there are several)."""
    cheap = [c for c in identities if c != gold]
    if proxy:
        hits = [c for c in cheap if proxy in c]
        if len(hits) != 1:
            raise OptimizerError(f"proxy '{proxy}' matches {len(hits)} of the cheap operators {cheap}; name one")
        return hits[0]
    full = [c for c in cheap if _on_full_cache(c)] or cheap
    if not full:
        raise OptimizerError("the family has no cheap operator to use as a proxy (only the gold one)")
    return full[0]


def _on_full_cache(identity: str) -> bool:
    """A transformers operator on the uncompressed cache (not a vLLM-served one, nor gold at a moved threshold)."""
    op = OperatorId.maybe(identity)
    return op is not None and op.full_cache and not op.served and op.threshold is None


def per_filter_targets(targets: Targets, n_filters: int) -> Targets:
    """The even split per-operator systems use: T^(1/n) each, confidence alpha^(1/n) (a union over n cascades)."""
    n_filters = max(1, n_filters)  # a plan of extracts only splits nothing
    return share_targets(targets, 1.0 / n_filters, n_filters)


def probabilities(log_odds: np.ndarray) -> np.ndarray:
    """The proxy's P(yes) from its log-odds of yes over no."""
    return 1.0 / (1.0 + np.exp(-np.asarray(log_odds, dtype=np.float64)))
