"""End-to-end quality targets of a query result."""

from __future__ import annotations

from dataclasses import dataclass

from stretto.errors import QueryError


@dataclass(frozen=True)
class Targets:
    """Precision >= precision and recall >= recall, each holding with probability >= alpha.

    recall_alpha: the confidence the optimizer must give recall when it differs from alpha: a blocking step
    upstream whose own recall bound spends part of recall's error leaves the plan 1 - (1 - alpha) / 2; precision,
    which blocking cannot lower, keeps alpha (DESIGN.md section 2, joins)."""

    precision: float = 0.9
    recall: float = 0.9
    alpha: float = 0.95
    recall_alpha: float | None = None

    def __post_init__(self) -> None:
        for name in ("precision", "recall", "alpha", "recall_confidence"):
            value = getattr(self, name)
            if not isinstance(value, int | float) or not 0.0 < float(value) < 1.0:
                raise QueryError(f"target {name}={value!r} is outside the open interval (0, 1)")

    @property
    def recall_confidence(self) -> float:
        """The confidence recall must hold with: recall_alpha if set, else alpha."""
        return self.alpha if self.recall_alpha is None else self.recall_alpha

    @property
    def recall_share(self) -> float:
        """Recall's share of a test's level: 1, or (1 - recall_alpha) / (1 - alpha) <= 1 when recall must hold at a
        higher confidence. A plan tested at delta tests recall at delta * recall_share."""
        return (1.0 - self.recall_confidence) / (1.0 - self.alpha)

    def split(self, ways: int) -> Targets:
        """The targets each of `ways` tests must meet for all of them to hold at once (Bonferroni: each target's
        error 1 - confidence divided by `ways`)."""
        recall_alpha = None if self.recall_alpha is None else 1.0 - (1.0 - self.recall_alpha) / ways
        return Targets(self.precision, self.recall, 1.0 - (1.0 - self.alpha) / ways, recall_alpha)

    def met(self, precision: float, recall: float) -> bool:
        return precision >= self.precision and recall >= self.recall
