"""`stretto pipeline`: a multi-table pipeline (conf/pipeline/) at the configured targets, with the real models.

    stretto pipeline experiment=restaurants_join      # semantic join, MiniLM blocking, Qwen 0.5B -> 1.5B
    stretto pipeline experiment=medical_patients targets.precision=0.9 targets.recall=0.9

The tables come from the `dataset` group (all of its tables), the operators from `family`, the system from
`optimizer`; answers are kept in the profile store, so a rerun reuses them. Writes the plan, the result and
the metrics to the run's output folder and, with tracking on, one MLflow run.
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import yaml
from omegaconf import DictConfig, OmegaConf

from stretto.data.datasets import load_dataset
from stretto.engine.pipeline import run_pipeline
from stretto.errors import QueryError
from stretto.experiment.result import JobResult
from stretto.experiment.run import configured_family, configured_source
from stretto.experiment.systems import make_optimizer
from stretto.plan.pipeline import Pipeline
from stretto.plan.targets import Targets
from stretto.profiling.profile import ProfileStore


def run_pipeline_job(cfg: DictConfig) -> JobResult:
    if cfg.get("pipeline") is None:
        raise QueryError("no pipeline configured: pick one from conf/pipeline/ (pipeline=<name>) or an experiment")
    if cfg.optimizer.name == "none" or cfg.backend.name != "transformers":
        raise QueryError("stretto pipeline needs an optimizer (optimizer=stretto) and a live backend (transformers)")
    pipeline = Pipeline.of(OmegaConf.to_container(cfg.pipeline, resolve=True))
    tables = load_dataset(cfg.dataset.name, limit=cfg.dataset.get("limit"))
    spec = configured_family(cfg)
    pipeline.check({name: list(t.df.columns) for name, t in tables.items()})  # before any model loads
    run = run_pipeline(
        pipeline, tables, configured_source(cfg, spec), spec, Targets(**cfg.targets), make_optimizer(cfg.optimizer),
        sample_fraction=cfg.profiling.fraction, seed=cfg.profiling.seed,
        store=ProfileStore(cfg.profiling.store_dir), progress=cfg.progress,
    )  # fmt: skip
    q, b = run.run, run.blocking
    metrics = {
        "rows_in": len(run.relation),
        "rows_out": len(run.result),
        "profile_seconds": q.profile_seconds,
        "optimize_seconds": q.optimize_seconds,
        "execution_seconds": q.execution.seconds,
        "total_seconds": q.total_seconds,
        "predicted_precision_lower": q.plan.precision_lower,
        "predicted_recall_lower": q.plan.recall_lower,
        "fallback": float(q.plan.fallback),
    }
    if b is not None:
        metrics |= {"blocking.candidates": b.candidates, "blocking.recall_lower": b.recall_lower,
                    "blocking.embedding_seconds": b.embedding_seconds}  # fmt: skip
    out = Path(cfg.paths.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    plan_yaml, result_csv = out / "plan.yaml", out / "result.csv"
    plan_yaml.write_text(yaml.safe_dump(q.plan.to_dict(), sort_keys=False))
    run.result.to_csv(result_csv, index=False)
    (out / "metrics.json").write_text(json.dumps(metrics, indent=2))
    result = JobResult(metrics, result_csv, plan=q.plan, execution=q.execution, targets=Targets(**cfg.targets),
                       blocking=b)  # fmt: skip
    if cfg.tracking.enabled:
        from stretto.experiment.tracking import log_config_run

        # None: MLflow failed, and the CLI says why after the summary
        result = replace(result, mlflow_run_id=log_config_run(cfg, metrics, [plan_yaml, result_csv]))
    return result


def format_pipeline(result: JobResult) -> str:
    m, b = result.metrics, result.blocking
    lines = [result.plan.describe(), f"  rows in / out     {m['rows_in']} / {m['rows_out']}"]
    if b is not None:
        lines.append(
            f"  blocking          {b.candidates} of {b.all_pairs} pairs; recall >= {b.recall_lower:.3f} "
            f"({b.found} found, {b.missed} missed in the audit), embedding {b.embedding_seconds:.1f} s",
        )
        lines.append(f"  assumption        {b.assumption}")
    lines += [
        f"  seconds           profiling {m['profile_seconds']:.1f} + optimization {m['optimize_seconds']:.1f} "
        f"+ execution {m['execution_seconds']:.1f} = {m['total_seconds']:.1f}",
        f"  result table      {result.result_csv}",
    ]
    if result.mlflow_run_id:
        lines.append(f"  MLflow run        {result.mlflow_run_id}")
    return "\n".join(lines)
