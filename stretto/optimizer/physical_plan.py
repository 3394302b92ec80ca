"""The optimizer's answer: per logical filter an ordered cascade of operators with two thresholds each.

Also the one home of the cascade semantics: `decide` (a step's KEEP / DISCARD / UNSURE), `run_steps` (only the
unsure reach the next step), `forcing_shares` (a share of accepts / discards sent to gold, drawn or expected) and
`gold_share` / `value_right` (what the gold operator takes and what is kept). The simulator, certification and
the executor call them; the relaxation's tensor form uses gold_share and is tested equal to them at tau -> 0.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
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
class CheapSteps:
    """Where a cascade's cheap steps leave each tuple (hard decisions); the gold operator takes the unsure."""

    accepted: np.ndarray  # bool (tuples,): kept by a cheap step (before forcing)
    discarded: np.ndarray  # bool: discarded by a cheap step (before forcing)
    unsure: np.ndarray  # bool: still unsure after the last step (or never started)
    right: np.ndarray  # bool: accepted by a step whose value is right (`correct` given; else all False)
    decided_by: np.ndarray  # int: index of the step that kept or discarded the tuple, -1 for none
    reached: tuple[np.ndarray, ...]  # per step run, the tuples it scored (bool); steps after nobody is left don't run


def run_steps(
    steps: Sequence[Step],
    scores_of: Callable[[int, np.ndarray], np.ndarray],
    start: np.ndarray,
    is_extract: bool = False,
    correct: Sequence[np.ndarray] | None = None,
) -> CheapSteps:
    """One cascade's UNSURE flow: step k scores the tuples still unsure (`scores_of(k, rows)`, rows in order) and
    keeps / discards them by `decide`; only the unsure reach step k + 1. An extract never discards (lower = -inf).
    `start` (bool): the tuples the cascade starts with. `correct[k]` (bool, all tuples): step k's value is right."""
    unsure = np.asarray(start, dtype=bool).copy()
    n = len(unsure)
    accepted, discarded, right = np.zeros(n, bool), np.zeros(n, bool), np.zeros(n, bool)
    decided_by = np.full(n, -1, dtype=np.int64)
    reached: list[np.ndarray] = []
    for k, step in enumerate(steps):
        if not unsure.any():
            break
        reached.append(unsure.copy())
        rows = np.flatnonzero(unsure)
        d = decide(scores_of(k, rows), -np.inf if is_extract else step.lower, step.upper)
        took, dropped = rows[d == KEEP], rows[d == DISCARD]
        accepted[took] = True
        discarded[dropped] = True
        decided_by[took] = decided_by[dropped] = k
        if correct is not None:
            right[took] = correct[k][took]
        unsure[rows[d != UNSURE]] = False
    return CheapSteps(accepted, discarded, unsure, right, decided_by, tuple(reached))


def forcing_shares(force_accept: float, force_discard: float, draws: np.ndarray | None = None):
    """The share of each tuple's accept / discard that is forced to the gold operator: the fractions themselves
    (the expected-value form), or realised by `draws` ((2, tuples) uniforms): 1.0 where the draw is below the
    fraction, else 0.0 (as the executor draws them)."""
    if draws is None:
        return force_accept, force_discard
    return (draws[0] < force_accept).astype(float), (draws[1] < force_discard).astype(float)


def gold_share(accepted, discarded, unsure, label, force_accept, force_discard, right=None, gold_right=1.0):
    """(keep, to_gold, value_ok) per tuple of a cascade once the gold operator has decided its share.

    accepted / discarded / unsure: how the cheap steps left the tuple (0/1, or probabilities in the relaxation);
    force_accept / force_discard: the share of accepts / discards sent to the gold operator (fractions in the
    expected-value form, 0/1 when realised: `forcing_shares`); label: the gold operator's decision (0 for "not
    yet known": keep is then what the cheap steps keep). value_ok (extracts, `right` given): the value is right;
    the gold operator's is right where `gold_right` says (always, unless the labels are the truth from another
    source). Plain arithmetic, for numpy arrays and torch tensors alike.
    """
    to_gold = unsure + accepted * force_accept + discarded * force_discard
    keep = accepted * (1.0 - force_accept) + to_gold * label
    return keep, to_gold, None if right is None else value_right(right, to_gold, force_accept, gold_right)


def value_right(right, to_gold, force_accept, gold_right=1.0):
    """An extract's value is right: a cheap step's right value that is not forced to gold, or gold's own where
    it is right (`gold_right`: 1 against the gold operator's own answers)."""
    return right * (1.0 - force_accept) + to_gold * gold_right


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
