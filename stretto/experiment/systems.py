"""The systems a comparison can run, by `optimizer.name`: Stretto, its ablations and the baselines."""

from __future__ import annotations

from typing import Any

from omegaconf import DictConfig, OmegaConf

from baselines.abacus import AbacusOptimizer, AbacusSettings
from baselines.bargain import BargainOptimizer, BargainSettings
from baselines.gold_only import GoldOnlyOptimizer, GoldOnlySettings
from baselines.lotus import LotusOptimizer, LotusSettings
from stretto.engine import Optimizer
from stretto.errors import QueryError
from stretto.optimizer.ablations import LocalOptimizer, ShiftBudgetOptimizer
from stretto.optimizer.gradient import GradientOptimizer, GradientSettings

SYSTEMS: dict[str, tuple[type, type]] = {
    "stretto": (GradientOptimizer, GradientSettings),
    "local": (LocalOptimizer, GradientSettings),
    "shift_budget": (ShiftBudgetOptimizer, GradientSettings),
    "lotus": (LotusOptimizer, LotusSettings),
    "bargain": (BargainOptimizer, BargainSettings),
    "abacus": (AbacusOptimizer, AbacusSettings),
    "gold_only": (GoldOnlyOptimizer, GoldOnlySettings),
}


def make_optimizer(config: DictConfig | dict[str, Any]) -> Optimizer:
    """The optimizer of an `optimizer` config: its name picks the system, the other keys are its settings."""
    settings = OmegaConf.to_container(config, resolve=True) if isinstance(config, DictConfig) else dict(config)
    name = settings.pop("name")
    if name not in SYSTEMS:
        raise QueryError(f"unknown optimizer '{name}'; choose one of {sorted(SYSTEMS)} (or none)")
    optimizer, settings_type = SYSTEMS[name]
    try:
        return optimizer(settings_type(**settings))
    except TypeError as err:
        raise QueryError(f"optimizer '{name}': {err}") from None
