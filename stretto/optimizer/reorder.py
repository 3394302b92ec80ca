"""Order tuned cascades so the whole conjunction costs least (Selinger-style DP over subsets).

A cascade placed after the set S only sees the tuples every cascade in S kept, so its cost there is
mean_n [pass_S(n) * seconds(n)], measured on the sample with the cascades' hard decisions; pass_S
is the joint pass rate, so correlated predicates are costed as they are, not as if independent.
"""

from __future__ import annotations

import numpy as np


def best_order(keep: np.ndarray, seconds: np.ndarray) -> tuple[list[int], float]:
    """keep, seconds: (filters, tuples). The cheapest order and its expected seconds per tuple."""
    n_filters = keep.shape[0]
    full = (1 << n_filters) - 1
    best: dict[int, tuple[float, list[int]]] = {0: (0.0, [])}
    passing: dict[int, np.ndarray] = {0: np.ones(keep.shape[1])}
    for subset in range(full + 1):  # increasing integers visit every subset after its subsets
        if subset not in best:
            continue
        cost, order = best[subset]
        for f in range(n_filters):
            if subset >> f & 1:
                continue
            grown = subset | 1 << f
            added = cost + float((passing[subset] * seconds[f]).mean())
            if grown not in best or added < best[grown][0] - 1e-15:
                best[grown] = (added, [*order, f])
                passing[grown] = passing[subset] * keep[f]
    cost, order = best[full]
    return order, cost
