"""The systems a comparison can run, by `optimizer.name`: Stretto, its ablations and the baselines."""

from __future__ import annotations

from typing import Any

from omegaconf import DictConfig, OmegaConf, open_dict

from stretto.engine import Optimizer
from stretto.errors import QueryError
from stretto.systems import OPTIMIZERS, SYSTEMS
from stretto.systems import make_optimizer as make_system_optimizer


def make_optimizer(config: DictConfig | dict[str, Any]) -> Optimizer:
    """The optimizer of an `optimizer` config: its name picks the system, the other keys are its settings."""
    settings = OmegaConf.to_container(config, resolve=True) if isinstance(config, DictConfig) else dict(config)
    name = settings.pop("name")
    if name not in OPTIMIZERS:
        raise QueryError(f"unknown optimizer '{name}'; choose one of {sorted(OPTIMIZERS)} (or none)")
    return make_system_optimizer(name, settings)


# The systems of a comparison, as config overrides. A system is an optimizer on an operator family: the
# no-compression ablation is Stretto's optimizer on the family without KV compression.
COMPARED = ("stretto", "local", "no_compression", "lotus", "bargain", "abacus", "gold_only")


def system_overrides(system: str) -> list[str]:
    """The overrides that make a configured run one system: its optimizer (the configured family stays the
    user's); the no-compression ablation on the default family is family=no_compression."""
    if system == "no_compression":
        return ["optimizer=stretto", "family=no_compression"]
    if system not in OPTIMIZERS:
        raise QueryError(f"unknown system '{system}'; choose from {list(SYSTEMS)}")
    return [f"optimizer={system}"]


def without_compression(cfg: DictConfig) -> DictConfig:
    """The no-compression ablation of any configured family (the user's models and gold, full caches only),
    named no_compression; on the default family it equals family=no_compression."""
    from stretto.kvcache.variant import KVVariant

    family = OmegaConf.to_container(cfg.family, resolve=True)
    for member in family["models"]:
        member["variants"] = [v for v in member["variants"] if not KVVariant(**v).compressed]
    family["models"] = [m for m in family["models"] if m["variants"]]
    family["name"] = "no_compression"
    with open_dict(cfg):
        cfg.family = family
    return cfg


def system_label(cfg: DictConfig) -> str:
    """The name a comparison shows for a configured run: its optimizer, or the family when that is the ablation."""
    family = cfg.family.get("name", "default")
    if family == "default":
        return str(cfg.optimizer.name)
    return family if cfg.optimizer.name == "stretto" else f"{cfg.optimizer.name}+{family}"
