"""End-to-end quality targets of a query result."""

from __future__ import annotations

from dataclasses import dataclass

from stretto.errors import QueryError


@dataclass(frozen=True)
class Targets:
    """Precision >= precision and recall >= recall, each holding with probability >= alpha."""

    precision: float = 0.9
    recall: float = 0.9
    alpha: float = 0.95

    def __post_init__(self) -> None:
        for name in ("precision", "recall", "alpha"):
            value = getattr(self, name)
            if not isinstance(value, int | float) or not 0.0 < float(value) < 1.0:
                raise QueryError(f"target {name}={value!r} is outside the open interval (0, 1)")

    def met(self, precision: float, recall: float) -> bool:
        return precision >= self.precision and recall >= self.recall
