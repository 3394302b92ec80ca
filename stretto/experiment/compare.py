"""The main job: the configured query answered by several systems on the same profile; one table, one plot.

Each system is one cell (the user's overrides plus the system's optimizer and family), run and logged like
any sweep cell under one MLflow parent run. Profiles come from the same seeded sample for every system, so
the comparison is of plans, not of luck.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from omegaconf import DictConfig

from stretto.evaluation.metrics import quality
from stretto.experiment.plots import frontier, with_target
from stretto.experiment.run import run_job
from stretto.experiment.sweep import run_cell
from stretto.experiment.systems import system_overrides, without_compression
from stretto.plan.targets import Targets

SYSTEM_GROUPS = ("optimizer=", "+optimizer=", "++optimizer=")  # the system's; the family stays the user's


def system_cells(cfg: DictConfig, user: list[str], sweep: str) -> dict[str, DictConfig]:
    """Each system's config: the user's overrides (their family included) and the system's optimizer; all
    composed before the first system runs, so a bad system or override stops the comparison before any work."""
    from hydra import compose

    user = [o for o in user if not o.startswith(SYSTEM_GROUPS)]
    out = Path(cfg.paths.output_dir)
    cells = {}
    for system in cfg.compare.systems:
        optimizer = system_overrides(system)[0]  # no_compression: Stretto's optimizer, the family stripped below
        overrides = [*user, optimizer, f"paths.output_dir={out / system}", f"tracking.sweep={sweep}"]
        cell = compose(config_name="config", overrides=overrides)
        cells[system] = without_compression(cell) if system == "no_compression" else cell
    return cells


def run_comparison(cfg: DictConfig) -> dict[str, Any]:
    from hydra.core.hydra_config import HydraConfig

    out = Path(cfg.paths.output_dir)
    sweep = cfg.tracking.get("sweep") or f"compare_{out.name}"
    rows, kept = [], {}
    cells = system_cells(cfg, list(HydraConfig.get().overrides.task), sweep)
    offline = prepare(cfg) if cfg.compare.get("prepare", True) and cfg.backend.name != "replay" else None
    for system, cell in cells.items():
        result = run_cell(cell, run_job, system, wait=True)  # another process may be running it
        m = result.metrics
        if result.kept is not None:
            kept[system] = result.kept
        rows.append(
            {
                "system": system,
                "dataset": cell.dataset.get("name") or Path(cell.dataset.path).stem,
                "target_p": cell.targets.precision,
                "target_r": cell.targets.recall,
                "precision_gold": m.get("gold.precision"),
                "recall_gold": m.get("gold.recall"),
                "f1_gold": m.get("gold.f1"),
                "met_gold": m.get("met_gold"),
                "met_human": m.get("met_human"),
                "profile_seconds": m["profile_seconds"],
                "optimize_seconds": m["optimize_seconds"],
                "exec_seconds": m["execution_seconds"],
                "total_seconds": m["total_seconds"],
                "labels": m.get("labels", 0),
                "fallback": m["fallback"],
            }
        )
    table = pd.DataFrame(rows)
    if table.precision_gold.isna().all() and "gold_only" in kept:
        against_gold_only(table, kept, Targets(**cfg.targets))
    # The headline: each system's whole cost (labels + profiling + optimization + execution) over gold alone's;
    # beside it the paper's metric, execution seconds over LOTUS's, and the share profiling takes of the total.
    if "gold_only" in set(table.system):
        gold_total = float(table.loc[table.system == "gold_only", "total_seconds"].iloc[0])
        table["total_over_gold_only"] = table.total_seconds / gold_total
    if "lotus" in set(table.system):
        table["exec_over_lotus"] = table.exec_seconds / float(
            table.loc[table.system == "lotus", "exec_seconds"].iloc[0]
        )
    table["profile_share"] = table.profile_seconds / table.total_seconds.where(table.total_seconds > 0)
    out.mkdir(parents=True, exist_ok=True)
    table.to_csv(out / "comparison.csv", index=False)
    plot = frontier(with_target(table), out)
    return {"table": table, "csv": out / "comparison.csv", "plot": plot, "sweep": sweep, "cfg": cfg, "offline": offline}


def prepare(cfg: DictConfig) -> str:
    """The offline state every compared system uses, built before any system is timed (stretto cache build):
    what it took is reported on its own and charged to no system."""
    from stretto.experiment.cache_cmd import build

    began = time.perf_counter()
    report = build(cfg)
    return f"offline, before any system was timed (charged to none; {time.perf_counter() - began:.1f} s):\n{report}"


def against_gold_only(table: pd.DataFrame, kept: dict[str, np.ndarray], targets: Targets) -> None:
    """Live runs have no gold labels (the gold operator on every row): gold-only's result is exactly that."""
    gold = kept["gold_only"]
    for i, system in enumerate(table.system):
        if system in kept:
            q = quality(kept[system], gold)
            table.loc[i, ["precision_gold", "recall_gold", "f1_gold"]] = [q.precision, q.recall, q.f1]
            table.loc[i, "met_gold"] = float(targets.met(q.precision, q.recall))


def _cell(value: Any, fmt: str) -> str:
    return "-" if value is None or pd.isna(value) else format(value, fmt)


def format_comparison(result: dict[str, Any]) -> str:
    table, cfg = result["table"], result["cfg"]
    lines = [] if result.get("offline") is None else [result["offline"]]
    lines += [
        f"{cfg.dataset.get('name')}: {len(table)} systems, targets precision >= {cfg.targets.precision}, "
        f"recall >= {cfg.targets.recall} at alpha {cfg.targets.alpha} (backend {cfg.backend.name}); "
        "quality against the gold operator on every row",
        f"{'system':<15}{'precision':>10}{'recall':>8}{'met':>5}{'human':>7}{'profile s':>11}{'optimize s':>12}"
        f"{'execution s':>13}{'total s':>9}{'total / gold alone':>20}{'exec / LOTUS':>14}{'labels':>8}",
    ]
    for _, r in table.iterrows():
        met = "-" if pd.isna(r.met_gold) else ("yes" if r.met_gold else "NO")
        human = "-" if r.met_human is None or pd.isna(r.met_human) else ("yes" if r.met_human else "NO")
        lines.append(
            f"{r.system + (' *' if r.fallback else ''):<15}{_cell(r.precision_gold, '.3f'):>10}"
            f"{_cell(r.recall_gold, '.3f'):>8}{met:>5}{human:>7}{r.profile_seconds:>11.1f}{r.optimize_seconds:>12.1f}"
            f"{r.exec_seconds:>13.1f}{r.total_seconds:>9.1f}{_cell(r.get('total_over_gold_only'), '.2f'):>20}"
            f"{_cell(r.get('exec_over_lotus'), '.2f'):>14}{int(r.labels):>8}"
        )
    if table.fallback.any():
        lines.append("  * no plan could be certified at these targets: the gold operator alone answers")
    lines.append(f"  table {result['csv']}   frontier plot {result['plot']}   MLflow sweep '{result['sweep']}'")
    return "\n".join(lines)
