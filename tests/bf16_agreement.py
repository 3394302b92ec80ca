"""What users rely on from a bf16 score, asserted the same way on every machine.

bf16 kernels differ between CPUs (DESIGN.md section 6: Intel and AMD EPYC scores differ by up to ~0.1 in
log-odds), so no test compares two bf16 noises. A bf16 result must instead (1) take the same keep/discard
decisions as the reference at the operating thresholds, for every row not within bf16 reach of the threshold,
and (2) rank the rows as the reference does. Exactness is asserted in fp32, in the tests beside these.
"""

from __future__ import annotations

import numpy as np
from scipy import stats

# Beyond this distance from a threshold a row's decision must not depend on the machine: twice the largest
# cross-machine bf16 difference measured (DESIGN.md section 6). A wrong cache or a pad token that leaks into
# attention moves scores by more than 1 (tests/test_scoring_real.py), far outside it.
DECISION_MARGIN = 0.2
MIN_SPEARMAN = 0.9


def operating_thresholds(reference: np.ndarray) -> list[float]:
    """The default operator threshold (0) and the quartiles of the reference scores: thresholds a cascade uses."""
    return [0.0, *np.quantile(reference, [0.25, 0.5, 0.75]).tolist()]


def assert_same_decisions_and_ranks(reference: np.ndarray, other: np.ndarray) -> None:
    reference, other = np.asarray(reference, np.float64), np.asarray(other, np.float64)
    assert np.isfinite(other).all()
    checked = 0
    for threshold in operating_thresholds(reference):
        clear = np.abs(reference - threshold) > DECISION_MARGIN
        np.testing.assert_array_equal(
            reference[clear] > threshold, other[clear] > threshold, err_msg=f"decisions at threshold {threshold:.3f}"
        )
        checked += int(clear.sum())
    # the check must bite: on average at least one decision per row lies outside the margin
    assert checked >= len(reference), (checked, reference)
    rho = stats.spearmanr(reference, other).statistic
    assert rho >= MIN_SPEARMAN, (rho, reference, other)
