"""The optimized job: the configured query at end-to-end targets, profile -> optimize -> execute -> evaluate.

`optimizer=stretto|local|shift_budget` picks the system, `family=` the physical operators, `backend=replay`
answers them from recordings (seconds, no model) and `backend=transformers` with the real models.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import yaml
from omegaconf import DictConfig, OmegaConf

from stretto.engine import run_query
from stretto.errors import ProfileError, QueryError
from stretto.evaluation.plan_quality import (
    check_targets,
    human_decisions,
    human_values,
    operator_frontier,
    values_right,
)
from stretto.execution.cascade_executor import OperatorSource
from stretto.execution.gold import gold_only_seconds, silver_decisions, silver_values
from stretto.experiment.run import configured_query
from stretto.experiment.systems import make_optimizer
from stretto.operators.family import FamilySpec, LiveFamily, ReplayFamily
from stretto.plan.query_generator import describe
from stretto.plan.targets import Targets
from stretto.profiling.profile import Profile, ProfileStore


def metric_name(identity: str) -> str:
    """An operator identity as an MLflow metric name (which allows no '@')."""
    return identity.replace("@", ":")


def make_source(cfg: DictConfig, spec: FamilySpec) -> OperatorSource:
    if cfg.backend.name not in ("replay", "transformers"):
        from stretto.experiment.preflight import VLLM_WITH_OPTIMIZER

        raise QueryError(VLLM_WITH_OPTIMIZER if cfg.backend.name == "vllm" else f"unknown backend '{cfg.backend.name}'")
    if cfg.backend.name == "replay":
        if not Path(cfg.backend.recording).exists():
            raise ProfileError(
                f"no recording at {cfg.backend.recording}: record the workload's scores first "
                "(scripts/record_scores.py) or run with the real models (backend=transformers)"
            )
        return ReplayFamily(spec, Profile.load(cfg.backend.recording))
    return LiveFamily(
        spec,
        cache_dir=Path(cfg.paths.cache_dir),
        batch_size=cfg.backend.batch_size,
        dtype=cfg.backend.dtype,
        device=cfg.backend.device,
        budget_gb=cfg.kv.budget_gb,
        stored=cfg.family.get("stored", True),
    )


def run_optimized(
    cfg: DictConfig,
    *,
    parent_run_id: str | None = None,
    run_id: str | None = None,
    tags: dict[str, str] | None = None,
) -> dict[str, Any]:
    targets = Targets(**cfg.targets)
    optimizer = make_optimizer(cfg.optimizer)
    query, table = configured_query(cfg)
    spec = FamilySpec.of(OmegaConf.to_container(cfg.family, resolve=True))
    source = make_source(cfg, spec)
    replay = cfg.backend.name == "replay"
    store = None if replay else ProfileStore(cfg.profiling.store_dir)
    run = run_query(
        table,
        query,
        source,
        spec,
        targets,
        optimizer,
        sample_fraction=cfg.profiling.fraction,
        seed=cfg.profiling.seed,
        store=store,
        progress=cfg.progress,
    )
    # Silver (the gold operator on every row) is free on recordings; live it would cost a full gold run.
    silver = silver_decisions(table, query, source, spec) if replay else None
    values = silver_values(table, query, source, spec) if replay else {}
    if silver is not None:
        human = human_decisions(table, query, silver)
    elif all(f.label is not None for f in query.filters) and not query.extracts:
        human = np.array([f.label.truth(table.df).to_numpy() for f in query.filters])
    else:
        human = None
    kept, result = run.execution.kept, run.execution.result
    right = values_right(result, kept, values)
    right_human = values_right(result, kept, human_values(table, query, values)) if human is not None else None
    metrics: dict[str, float] = {
        "rows_in": len(table),
        "rows_out": int(run.execution.kept.sum()),
        "profile_seconds": run.profile_seconds,
        "optimize_seconds": run.optimize_seconds,
        "execution_seconds": run.execution.seconds,
        "total_seconds": run.total_seconds,
        "predicted_precision_lower": run.plan.precision_lower,
        "predicted_recall_lower": run.plan.recall_lower,
        "fallback": float(run.plan.fallback),
    }
    for identity, tuples in run.execution.tuples_per_operator().items():
        metrics[f"tuples.{metric_name(identity)}"] = tuples
    for identity, (seconds, auc) in operator_frontier(run.problem).items():
        metrics[f"operator.{metric_name(identity)}.seconds"] = seconds  # the KV-variant frontier's points
        metrics[f"operator.{metric_name(identity)}.auc"] = auc
    if silver is not None:
        metrics["gold_only_seconds"] = gold_only_seconds(table, query, source, spec, silver)
        metrics |= check_targets(kept, silver, human, targets, right, right_human).as_dict()
    elif human is not None:
        metrics |= check_targets(kept, human, human, targets).as_dict()
        metrics = {k: v for k, v in metrics.items() if not k.startswith(("silver.", "met_silver"))}

    out = Path(cfg.paths.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    plan_yaml, result_csv = out / "plan.yaml", out / "result.csv"
    plan_yaml.write_text(yaml.safe_dump(run.plan.to_dict(), sort_keys=False))
    run.execution.result.to_csv(result_csv, index=False)
    (out / "metrics.json").write_text(json.dumps(metrics, indent=2))
    summary = {"metrics": metrics, "run": run, "query": query, "targets": targets, "result_csv": result_csv}
    if cfg.tracking.enabled:
        from stretto.experiment.tracking import log_config_run

        tags = {**(tags or {}), "stretto.query": describe(query)}
        logged = log_config_run(
            cfg, metrics, [plan_yaml, result_csv], parent_run_id=parent_run_id, run_id=run_id, tags=tags
        )
        if logged:  # None: MLflow failed, and the CLI says why after this summary
            summary["mlflow_run_id"] = logged
    return summary


def format_optimized(summary: dict[str, Any], cfg: DictConfig) -> str:
    if "skipped" in summary:
        from stretto.experiment.sweep import skipped_line

        return skipped_line(summary)
    m, run, targets = summary["metrics"], summary["run"], summary["targets"]
    lines = [
        f"{cfg.optimizer.name} (backend {cfg.backend.name}): {len(summary['query'].filters)} filter(s), "
        f"{len(summary['query'].extracts)} extract(s), "
        f"targets precision >= {targets.precision}, recall >= {targets.recall} at alpha {targets.alpha}",
        run.plan.describe(),
        f"  rows in / out     {m['rows_in']} / {m['rows_out']}",
        f"  seconds           profiling {m['profile_seconds']:.1f} + optimization {m['optimize_seconds']:.1f} "
        f"+ execution {m['execution_seconds']:.1f} = {m['total_seconds']:.1f}",
    ]
    for who in ("silver", "human"):
        if f"{who}.precision" in m:
            met = "met" if m[f"met_{who}"] else "NOT met"
            truth = "gold operator (silver)" if who == "silver" else "human labels"
            lines.append(
                f"  vs {truth:<22} precision {m[f'{who}.precision']:.3f} recall {m[f'{who}.recall']:.3f} "
                f"F1 {m[f'{who}.f1']:.3f}: targets {met}"
            )
    lines.append(f"  result table      {summary['result_csv']}")
    if "mlflow_run_id" in summary:
        lines.append(f"  MLflow run        {summary['mlflow_run_id']}")
    return "\n".join(lines)
