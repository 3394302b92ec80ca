"""The systems that can plan a query, by name: Stretto, its ablations and the baselines.

A system is an optimizer (numbers in, plan out) and, for the no-compression ablation, a restriction of the
operator family. Settings are plain keyword values; the harness passes its `optimizer` config group here.
Names are checked without importing any optimizer (a comparison validates its systems in milliseconds).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import fields
from typing import TYPE_CHECKING, Any

from stretto.errors import QueryError

if TYPE_CHECKING:
    from stretto.engine import Optimizer

OPTIMIZERS: tuple[str, ...] = ("stretto", "local", "shift_budget", "lotus", "bargain", "abacus", "gold_only")
# A system that is an optimizer on a restricted family: name -> (optimizer, family restriction).
ABLATIONS: dict[str, tuple[str, str]] = {"no_compression": ("stretto", "no_compression")}
SYSTEMS: tuple[str, ...] = (*OPTIMIZERS, *ABLATIONS)


def check_system(name: str) -> None:
    if name not in SYSTEMS:
        raise QueryError(f"unknown system '{name}'; choose one of {list(SYSTEMS)}")


def optimizer_types(name: str) -> tuple[type, type]:
    """(optimizer class, settings dataclass) of an optimizer of OPTIMIZERS."""
    from stretto.baselines.abacus import AbacusOptimizer, AbacusSettings
    from stretto.baselines.bargain import BargainOptimizer, BargainSettings
    from stretto.baselines.gold_only import GoldOnlyOptimizer, GoldOnlySettings
    from stretto.baselines.lotus import LotusOptimizer, LotusSettings
    from stretto.optimizer.ablations import LocalOptimizer, ShiftBudgetOptimizer
    from stretto.optimizer.gradient import GradientOptimizer, GradientSettings

    return {
        "stretto": (GradientOptimizer, GradientSettings),
        "local": (LocalOptimizer, GradientSettings),
        "shift_budget": (ShiftBudgetOptimizer, GradientSettings),
        "lotus": (LotusOptimizer, LotusSettings),
        "bargain": (BargainOptimizer, BargainSettings),
        "abacus": (AbacusOptimizer, AbacusSettings),
        "gold_only": (GoldOnlyOptimizer, GoldOnlySettings),
    }[name]


def make_optimizer(name: str, settings: Mapping[str, Any] | None = None, *, seed: int | None = None) -> Optimizer:
    """The optimizer of system `name`, with `settings` overriding its defaults; `seed` seeds a randomised one
    (unless `settings` name a seed)."""
    check_system(name)
    name = ABLATIONS.get(name, (name, ""))[0]
    optimizer, settings_type = optimizer_types(name)
    settings = dict(settings or {})
    if seed is not None and "seed" in {f.name for f in fields(settings_type)}:
        settings.setdefault("seed", seed)
    try:
        return optimizer(settings_type(**settings))
    except (TypeError, ValueError) as err:
        raise QueryError(f"system '{name}': {err}") from None
