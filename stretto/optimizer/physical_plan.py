"""The optimizer's answer: per logical filter an ordered cascade of operators with two thresholds each."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

KEEP, DISCARD, UNSURE = 1, 0, -1


def decide(scores: np.ndarray, lower: float, upper: float) -> np.ndarray:
    """KEEP above upper, DISCARD below lower, UNSURE in between (lower <= upper)."""
    out = np.full(len(scores), UNSURE, dtype=np.int8)
    out[scores > upper] = KEEP
    out[scores < lower] = DISCARD
    return out


@dataclass(frozen=True)
class Step:
    operator: str
    lower: float
    upper: float


@dataclass(frozen=True)
class Cascade:
    """Cheap steps in order, then the gold operator for every tuple still unsure (and the forced fractions)."""

    template: str
    steps: tuple[Step, ...]
    gold: str
    force_accept: float = 0.0  # fraction of would-be accepts sent to the gold operator instead
    force_discard: float = 0.0  # fraction of would-be discards sent to the gold operator instead

    @classmethod
    def gold_only(cls, template: str, gold: str) -> Cascade:
        return cls(template, (), gold)


@dataclass(frozen=True)
class PhysicalPlan:
    """Cascades in execution order, with what the optimizer predicted for them."""

    cascades: tuple[Cascade, ...]
    # lower bounds on the whole result (vs the gold operator): certified on held-out labels when `certified`,
    # else in-sample predictions on the labels the plan was tuned on (`bounds` says which)
    precision_lower: float
    recall_lower: float
    cost_per_tuple: float  # predicted seconds per input tuple
    gold_cost_per_tuple: float  # the same for gold alone
    system: str = "stretto"
    fallback: bool = False  # no feasible plan was found: gold alone
    notes: dict[str, Any] = field(default_factory=dict)
    certified: bool = False  # the bounds were certified on labels the plan was not chosen on (or hold exactly)
    bounds: str = "in-sample"  # how the bounds were made, in a few words

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def describe(self) -> str:
        lines = [
            f"{self.system} plan: predicted precision >= {self.precision_lower:.3f}, "
            f"recall >= {self.recall_lower:.3f}, "
            f"{self.cost_per_tuple * 1000:.1f} ms/tuple (gold alone {self.gold_cost_per_tuple * 1000:.1f})"
            + (" [fallback to gold]" if self.fallback else ""),
            f"  bounds {'certified' if self.certified else 'not certified'}: {self.bounds}",
        ]
        for c in self.cascades:
            lines.append(f'  "{c.template}"')
            for s in c.steps:
                lines.append(f"    {s.operator}: discard < {s.lower:.3f}, keep > {s.upper:.3f}")
            forced = f" (forced: {c.force_accept:.0%} of accepts, {c.force_discard:.0%} of discards)"
            lines.append(f"    {c.gold}: the rest{forced if c.force_accept or c.force_discard else ''}")
        return "\n".join(lines)
