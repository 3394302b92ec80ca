"""The main job: dataset -> query -> operator -> execute -> evaluate -> log, configured by Hydra."""

from __future__ import annotations

import json
import logging
import resource
import time
from pathlib import Path
from typing import Any

import numpy as np
from omegaconf import DictConfig, OmegaConf

from stretto.backends.base import YesNoScorer
from stretto.backends.model_loader import LoadedModel, load_model
from stretto.backends.transformers_backend import TransformersBackend
from stretto.data.datasets import load_dataset
from stretto.data.table import Table
from stretto.errors import DataError, QueryError
from stretto.evaluation.metrics import auc, quality
from stretto.execution.filter_executor import ExecutionResult, execute_filters, score_column
from stretto.kvcache.backend import KVCachedBackend
from stretto.kvcache.build import KVBuilder
from stretto.kvcache.store import KVStore
from stretto.kvcache.variant import KVVariant
from stretto.operators.llm_filter import LLMFilter
from stretto.plan.query import Query
from stretto.plan.query_generator import generated_query
from stretto.plan.targets import Targets
from stretto.plan.workload import Workload

log = logging.getLogger(__name__)


def load_table(dataset: DictConfig, table_name: str | None) -> Table:
    """The table the query runs on, from a bundled dataset name or from a user's file or folder."""
    limit = dataset.get("limit")
    if limit is not None and limit < 1:
        raise DataError(f"dataset.limit must be >= 1, got {limit}")
    if dataset.get("name"):
        tables = load_dataset(dataset.name, limit=limit)
        if table_name is None:
            if len(tables) != 1:
                raise QueryError(f"dataset '{dataset.name}' has tables {sorted(tables)}: set query.table")
            return next(iter(tables.values()))
        if table_name not in tables:
            raise QueryError(f"dataset '{dataset.name}' has no table '{table_name}'; it has {sorted(tables)}")
        return tables[table_name]
    path = Path(dataset.path)
    name = table_name or dataset.get("table") or path.stem
    # How to read the file (dataset.encoding) and whether rows with empty text stay (dataset.keep_empty_text).
    reading = {"encoding": dataset.get("encoding") or "utf-8", "keep_empty_text": dataset.get("keep_empty_text", False)}
    if path.is_dir():
        table = Table.from_text_folder(path, name=name, **reading)
    else:
        table = Table.from_path(
            path,
            name=name,
            text_columns=list(dataset.text_columns),
            label_columns=list(dataset.label_columns),
            **reading,
        )
    return table.head(limit) if limit is not None else table


def configured_query(cfg: DictConfig) -> tuple[Query, Table]:
    """The configured query and the table it runs on, checked against each other (no model needed)."""
    if cfg.query.get("generated"):
        workload = Workload.of(OmegaConf.to_container(cfg.workload, resolve=True))
        if cfg.dataset.get("name") != workload.dataset:
            raise QueryError(
                f"workload '{workload.dataset}' draws its queries from dataset '{workload.dataset}', "
                f"but dataset={cfg.dataset.get('name') or cfg.dataset.get('path')}: set both"
            )
        q = cfg.query
        extracts = list(q.get("extracts") or [0])
        drawn = generated_query(workload, list(q.filters), q.count, q.seed, q.index, extracts)
    else:
        spec = OmegaConf.to_container(cfg.query, resolve=True)
        drawn = Query.of(cfg.query.table, spec.get("filters") or [], spec.get("extracts") or [])
    table = load_table(cfg.dataset, cfg.query.table)
    query = Query(table.name, drawn.filters, drawn.extracts)
    query.check(table)
    return query, table


def configured_model(cfg: DictConfig) -> LoadedModel:
    return load_model(
        cfg.operators.model, cache_dir=Path(cfg.paths.cache_dir), dtype=cfg.backend.dtype, device=cfg.backend.device
    )


def evaluate(query: Query, table: Table, run: ExecutionResult) -> dict[str, float]:
    """Quality of each labelled filter against the human labels, on the rows that filter saw."""
    metrics: dict[str, float] = {}
    for i, f in enumerate(query.filters):
        if f.label is None:
            continue
        scores = run.scores[score_column(i)].to_numpy()
        seen = ~np.isnan(scores)
        truth = f.label.truth(table.df).to_numpy()[seen]
        q = quality(scores[seen] > run.stats[i].threshold, truth)
        metrics |= {f"filter{i}.{k}": v for k, v in q.as_dict().items()}
        metrics[f"filter{i}.auc"] = auc(scores[seen], truth)
    return metrics


def kv_variants(kv: DictConfig) -> list[KVVariant]:
    """The operator's variant first, then every other variant to store alongside it."""
    return list(dict.fromkeys([KVVariant(**kv.variant), *(KVVariant(**v) for v in kv.build)]))


def kv_builder(cfg: DictConfig, loaded: LoadedModel, variants: list[KVVariant]) -> KVBuilder:
    store = KVStore(cfg.kv.store_dir, budget_gb=cfg.kv.budget_gb)
    return KVBuilder(
        loaded,
        variants,
        store,
        min_kept_tokens=cfg.kv.min_kept_tokens,
        max_tokens=cfg.backend.max_tokens,
        on_long_text=cfg.backend.on_long_text,
    )


def make_backend(cfg: DictConfig, loaded: LoadedModel, variants: list[KVVariant]) -> YesNoScorer:
    """From-scratch scoring, or scoring on stored caches of the configured variant (kv.cached)."""
    base = TransformersBackend(
        loaded,
        batch_size=cfg.backend.batch_size,
        max_tokens=cfg.backend.max_tokens,
        on_long_text=cfg.backend.on_long_text,
    )
    if not cfg.kv.cached:
        return base
    return KVCachedBackend(base, kv_builder(cfg, loaded, variants), variants[0])


def configured_backend(cfg: DictConfig, variants: list[KVVariant]) -> YesNoScorer:
    """A vLLM server's client, or the model loaded here (scoring from scratch or on stored caches)."""
    if cfg.backend.name == "vllm":
        return served_backend(cfg)
    if cfg.backend.name != "transformers":
        from stretto.experiment.preflight import REPLAY_WITHOUT_OPTIMIZER

        replay = cfg.backend.name == "replay"
        raise QueryError(REPLAY_WITHOUT_OPTIMIZER if replay else f"unknown backend '{cfg.backend.name}'")
    return make_backend(cfg, configured_model(cfg), variants)


def served_backend(cfg: DictConfig) -> YesNoScorer:
    """The configured model answered by a vLLM server (only its tokenizer is loaded here)."""
    from stretto.backends.vllm_backend import VLLMBackend, served_model

    if cfg.kv.cached:
        raise QueryError("backend=vllm keeps its own prefix cache on the server: use kv=none")
    served = served_model(cfg.operators.model, Path(cfg.paths.cache_dir))
    return VLLMBackend(
        served,
        cfg.backend.url,
        served_name=cfg.backend.served_name,
        concurrency=cfg.backend.concurrency,
        timeout=cfg.backend.timeout,
    )


def peak_memory_gb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2  # Linux reports KiB


def run_job(
    cfg: DictConfig,
    *,
    parent_run_id: str | None = None,
    run_id: str | None = None,
    tags: dict[str, str] | None = None,
) -> dict[str, Any]:
    """Run the configured query; validates everything cheap before the model is loaded. The keywords place the
    MLflow run in a sweep (sweep.run_cell)."""
    targets = Targets(**cfg.targets)
    query, table = configured_query(cfg)
    variants = kv_variants(cfg.kv)  # validated before the model is loaded

    began = time.perf_counter()
    backend = configured_backend(cfg, variants)
    load_seconds = time.perf_counter() - began
    operators = [LLMFilter(f.template, backend, threshold=cfg.operators.threshold) for f in query.filters]
    run = execute_filters(table, query, operators, progress=cfg.progress)

    metrics = {
        "rows_in": run.rows_in,
        "rows_out": run.rows_out,
        "execution_seconds": run.seconds,
        "rows_per_second": run.rows_in / run.seconds,
        "model_load_seconds": load_seconds,
        "peak_memory_gb": peak_memory_gb(),
    }
    for i, s in enumerate(run.stats):
        metrics |= {f"filter{i}.rows_seen": s.rows_seen, f"filter{i}.rows_kept": s.rows_kept}
        metrics |= {f"filter{i}.seconds": s.seconds, f"filter{i}.tokens": s.tokens}
    metrics |= evaluate(query, table, run)

    out = Path(cfg.paths.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    result_csv, scores_csv = out / "result.csv", out / "scores.csv"
    run.result.to_csv(result_csv, index=False)
    table.df.join(run.scores).to_csv(scores_csv, index=False)
    (out / "metrics.json").write_text(json.dumps(metrics, indent=2))
    summary = {"metrics": metrics, "run": run, "query": query, "table": table, "targets": targets}
    summary["operator"] = operators[0].identity
    summary["result_csv"] = result_csv

    if cfg.tracking.enabled:
        from stretto.experiment.tracking import log_config_run

        logged = [result_csv, scores_csv]
        recorded = log_config_run(cfg, metrics, logged, parent_run_id=parent_run_id, run_id=run_id, tags=tags)
        if recorded:  # None: MLflow failed, and the CLI says why after this summary
            summary["mlflow_run_id"] = recorded
    return summary


def format_summary(summary: dict[str, Any], cfg: DictConfig) -> str:
    """The few lines a user reads after a run."""
    if "skipped" in summary:
        from stretto.experiment.sweep import skipped_line

        return skipped_line(summary)
    m, run, query, targets = summary["metrics"], summary["run"], summary["query"], summary["targets"]
    lines = [
        f"Stretto: {len(query.filters)} semantic filter(s) over table '{query.table}' with {summary['operator']}",
        f"  rows in / out     {m['rows_in']} / {m['rows_out']}",
        f"  runtime           {m['execution_seconds']:.1f} s ({m['rows_per_second']:.2f} rows/s); "
        f"model load {m['model_load_seconds']:.1f} s; peak memory {m['peak_memory_gb']:.2f} GB",
    ]
    for i, (f, s) in enumerate(zip(query.filters, run.stats, strict=True)):
        lines.append(f'  filter {i + 1} "{f.template.text}": saw {s.rows_seen}, kept {s.rows_kept}, {s.seconds:.1f} s')
        if f.label is not None:
            p, r, f1 = m[f"filter{i}.precision"], m[f"filter{i}.recall"], m[f"filter{i}.f1"]
            met = "met" if targets.met(p, r) else "not met"
            lines.append(
                f"     vs human labels ({f.label.column} == {f.label.positive}): precision {p:.3f} recall {r:.3f} "
                f"F1 {f1:.3f} AUC {m[f'filter{i}.auc']:.3f} "
                f"(targets P>={targets.precision} R>={targets.recall}: {met})"
            )
    lines.append(f"  result table      {summary['result_csv']}")
    if "mlflow_run_id" in summary:
        lines.append(
            f"  MLflow run        {summary['mlflow_run_id']}  (view: mlflow ui --backend-store-uri {cfg.tracking.uri})"
        )
    return "\n".join(lines)
