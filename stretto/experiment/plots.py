"""Comparison plots from MLflow runs: each figure as a PNG with the CSV of exactly what it draws.

`runs_frame` turns the child runs of a sweep (or a whole experiment) into one row per run with the columns
every plot reads; the plots aggregate per (dataset, target, system):
- frontier:     execution seconds vs F1 against gold, per system (one point per target)
- total_frontier: whole cost over gold alone's vs F1 against gold (from replayed runs: scripts/end_to_end.py)
- met_rate:     fraction of runs meeting both targets, against gold and human labels
- speedup:      LOTUS's and gold-only's execution seconds over each system's, on the same cells
- kv_frontier:  per physical operator, seconds per tuple vs AUC against the gold operator
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # files only, no screen
import matplotlib.pyplot as plt
import pandas as pd

from stretto.errors import QueryError

COLUMNS = {
    "tags.stretto.system": "system",
    "tags.stretto.query": "query",
    "tags.stretto.cell": "cell",
    "params.dataset.name": "dataset",
    "params.targets.precision": "target_p",
    "params.targets.recall": "target_r",
    "params.seed": "seed",
    "metrics.execution_seconds": "exec_seconds",
    "metrics.profile_seconds": "profile_seconds",
    "metrics.optimize_seconds": "optimize_seconds",
    "metrics.total_seconds": "total_seconds",
    "metrics.labels": "labels",
    "metrics.gold_only_seconds": "gold_only_seconds",
    "metrics.gold.precision": "precision_gold",
    "metrics.gold.recall": "recall_gold",
    "metrics.gold.f1": "f1_gold",
    "metrics.human.precision": "precision_human",
    "metrics.human.recall": "recall_human",
    "metrics.human.f1": "f1_human",
    "metrics.met_gold": "met_gold",
    "metrics.met_human": "met_human",
    "metrics.fallback": "fallback",
}
GROUP = ["dataset", "target", "system"]


def runs_frame(tracking: Mapping[str, Any], sweep: str | None = None) -> pd.DataFrame:
    """One row per finished child run of the configured experiment (of one sweep, if named)."""
    import mlflow

    mlflow.set_tracking_uri(tracking["uri"])
    if mlflow.get_experiment_by_name(tracking["experiment"]) is None:
        raise QueryError(f"MLflow store {tracking['uri']} has no experiment '{tracking['experiment']}'")
    where = "attributes.status = 'FINISHED'" + (f" and tags.`stretto.sweep` = '{sweep}'" if sweep else "")
    raw = mlflow.search_runs(experiment_names=[tracking["experiment"]], filter_string=where)
    if raw.empty or "tags.stretto.system" not in raw:
        raise QueryError(f"no finished runs of a system in experiment '{tracking['experiment']}'" + (
            f", sweep '{sweep}'" if sweep else "") + ": run a sweep first")  # fmt: skip
    raw = raw[raw["tags.stretto.system"].notna()]
    runs = raw.reindex(columns=list(COLUMNS)).rename(columns=COLUMNS)  # a metric no run logged (met_human): NaN
    operators = raw[[c for c in raw if c.startswith("metrics.operator.")]]
    runs = pd.concat([runs, operators.rename(columns=lambda c: c.removeprefix("metrics."))], axis=1)
    return with_target(runs)


def with_target(runs: pd.DataFrame) -> pd.DataFrame:
    runs = runs.copy()
    runs["target"] = (
        runs["target_p"].astype(float).map("{:g}".format) + "/" + runs["target_r"].astype(float).map("{:g}".format)
    )
    return runs


def _save(fig: plt.Figure, table: pd.DataFrame, out: Path, name: str) -> Path:
    out.mkdir(parents=True, exist_ok=True)
    table.to_csv(out / f"{name}.csv", index=False)
    fig.tight_layout()
    fig.savefig(out / f"{name}.png", dpi=120)
    plt.close(fig)
    return out / f"{name}.png"


def _per_dataset(table: pd.DataFrame, title: str) -> tuple[plt.Figure, list[tuple[plt.Axes, str, pd.DataFrame]]]:
    """One panel per dataset: (axes, dataset, its rows of the table)."""
    datasets = sorted(table.dataset.unique())
    fig, axes = plt.subplots(1, len(datasets), figsize=(5.5 * len(datasets), 4.2), squeeze=False)
    fig.suptitle(title)
    return fig, [(ax, d, table[table.dataset == d]) for ax, d in zip(axes[0], datasets, strict=True)]


def frontier(runs: pd.DataFrame, out: Path, prefix: str = "") -> Path:
    table = runs.groupby(GROUP, as_index=False).agg(
        exec_seconds=("exec_seconds", "mean"), f1_gold=("f1_gold", "mean"), runs=("system", "size")
    )
    title = "Runtime vs F1 (against gold), mean per target"
    fig = _cost_against_f1(table, "exec_seconds", "execution seconds per query", title)
    return _save(fig, table, out, f"{prefix}frontier")


def _cost_against_f1(table: pd.DataFrame, cost: str, xlabel: str, title: str, line_at: float | None = None):
    """One panel per dataset, one line per system through its targets: `cost` against F1 vs gold."""
    fig, panels = _per_dataset(table, title)
    for ax, dataset, rows in panels:
        for system, points in rows.groupby("system"):
            points = points.sort_values(cost)
            ax.plot(points[cost], points.f1_gold, marker="o", label=system)
            for _, p in points.iterrows():
                ax.annotate(str(p.target), (p[cost], p.f1_gold), fontsize=7, alpha=0.7)
        if line_at is not None:
            ax.axvline(line_at, color="grey", lw=0.8, ls="--")
        ax.set(title=dataset, xlabel=xlabel, ylabel="F1 vs gold")
        ax.legend(fontsize=8)
    return fig


def total_frontier(runs: pd.DataFrame, out: Path, prefix: str = "") -> Path:
    """Each system's whole cost (labels + profiling + optimization + execution) over gold alone's vs F1 against
    gold, mean per (dataset, target, system); runs need precision, recall, total_seconds, gold_only_seconds."""
    both = runs["precision"] + runs["recall"]
    scored = runs.assign(
        f1_gold=(2 * runs["precision"] * runs["recall"] / both).where(both > 0, 0.0),
        total_over_gold_only=runs["total_seconds"] / runs["gold_only_seconds"],
    )
    table = scored.groupby(GROUP, as_index=False).agg(
        total_over_gold_only=("total_over_gold_only", "mean"), f1_gold=("f1_gold", "mean"), runs=("system", "size")
    )
    title = "Total cost vs F1 (against gold), mean per target"
    fig = _cost_against_f1(table, "total_over_gold_only", "total seconds / gold alone's", title, line_at=1.0)
    return _save(fig, table, out, f"{prefix}total_frontier")


def met_rate(runs: pd.DataFrame, out: Path, prefix: str = "") -> Path:
    table = runs.groupby(GROUP, as_index=False).agg(
        met_rate_gold=("met_gold", "mean"), met_rate_human=("met_human", "mean"), runs=("system", "size")
    )
    fig, panels = _per_dataset(table, "Fraction of queries meeting both targets (against gold)")
    for ax, dataset, rows in panels:
        wide = rows.pivot(index="target", columns="system", values="met_rate_gold")
        wide.plot.bar(ax=ax, rot=0, width=0.8)
        ax.axhline(0.95, color="grey", linestyle="--", linewidth=0.8)
        ax.set(title=dataset, xlabel="target (precision/recall)", ylabel="met rate", ylim=(0, 1.05))
        ax.legend(fontsize=7, ncol=2)
    return _save(fig, table, out, f"{prefix}met_rate")


def speedup(runs: pd.DataFrame, out: Path, prefix: str = "") -> Path:
    """Seconds of LOTUS and of gold alone over each system's, summed over the same cells."""
    cells = ["dataset", "target", "query", "seed"]
    wide = runs.pivot_table(index=cells, columns="system", values="exec_seconds", aggfunc="mean")
    rows = []
    for (dataset, target), group in wide.groupby(level=[0, 1]):
        for system in group.columns:
            for over in ("lotus", "gold_only"):
                if over not in group:
                    continue
                paired = group[list(dict.fromkeys([system, over]))].dropna()
                if not paired.empty:
                    ratio = float(paired[over].sum() / paired[system].sum())
                    rows.append(
                        {"dataset": dataset, "target": target, "system": system, "over": over, "speedup": ratio}
                    )
    table = pd.DataFrame(rows, columns=["dataset", "target", "system", "over", "speedup"])
    if table.empty:
        raise QueryError("speedup needs LOTUS or gold-only runs on the same cells as the other systems")
    panels = sorted(table.over.unique())
    fig, axes = plt.subplots(1, len(panels), figsize=(6 * len(panels), 4.2), squeeze=False)
    for ax, over in zip(axes[0], panels, strict=True):
        wide = table[table.over == over].pivot_table(index=["dataset", "target"], columns="system", values="speedup")
        wide.plot.bar(ax=ax, rot=30, width=0.8)
        ax.axhline(1.0, color="grey", linewidth=0.8)
        ax.set(title=f"speedup over {over} (its seconds / the system's)", xlabel="", ylabel="x")
        ax.legend(fontsize=7, ncol=2)
    return _save(fig, table, out, f"{prefix}speedup")


def kv_frontier(runs: pd.DataFrame, out: Path, prefix: str = "") -> Path:
    """Operators' seconds per tuple vs AUC against gold, averaged over the runs that profiled them."""
    rows = []
    for column in runs.columns:
        if column.startswith("operator.") and column.endswith(".seconds"):
            identity = column.removeprefix("operator.").removesuffix(".seconds")
            for dataset, group in runs.groupby("dataset"):
                seconds, aucs = group[column].dropna(), group[f"operator.{identity}.auc"].dropna()
                if len(seconds):
                    rows.append({"dataset": dataset, "operator": identity.replace(":", "@"),
                                 "seconds_per_tuple": seconds.mean(), "auc_vs_gold": aucs.mean()})  # fmt: skip
    table = pd.DataFrame(rows, columns=["dataset", "operator", "seconds_per_tuple", "auc_vs_gold"])
    table = table.sort_values(["dataset", "seconds_per_tuple"], ignore_index=True)
    if table.empty:
        raise QueryError("no operator metrics in these runs (they come from optimized runs)")
    fig, panels = _per_dataset(table, "Physical operators: seconds per tuple vs AUC against the gold operator")
    for ax, dataset, points in panels:
        ax.scatter(points.seconds_per_tuple * 1000, points.auc_vs_gold)
        for _, p in points.iterrows():
            ax.annotate(p.operator.split("/")[-1], (p.seconds_per_tuple * 1000, p.auc_vs_gold), fontsize=7)
        ax.set(title=dataset, xlabel="ms per tuple", ylabel="AUC vs gold")
    return _save(fig, table, out, f"{prefix}kv_frontier")


PLOTS = {"frontier": frontier, "met_rate": met_rate, "speedup": speedup, "kv_frontier": kv_frontier}


def draw_all(runs: pd.DataFrame, out: Path, prefix: str = "") -> list[Path]:
    """Every plot the runs support (speedup needs LOTUS or gold-only beside the others); files `prefix + name`."""
    drawn = []
    for name, plot in PLOTS.items():
        try:
            drawn.append(plot(runs, out, prefix))
        except QueryError as err:
            if name in ("frontier", "met_rate"):
                raise
            print(f"skipped {name}: {err}")
    return drawn
