"""`stretto run`: dataset -> query -> (profile -> optimize ->) execute -> evaluate -> log, configured by Hydra.

Every run executes a physical plan with the one cascade executor: with an optimizer (`optimizer=stretto|local|
lotus|...`) the plan it finds on a profiled sample at the targets; without one (`optimizer=none`) the one-step
plan of the family's gold operator on every row at its threshold (a one-member family, e.g. family=qwen_0_5b,
is one operator at a threshold). `backend=replay` answers the family from recordings (seconds, no model),
`backend=transformers` with the real models (and a vLLM server for the models `family.serve` names).
"""

from __future__ import annotations

import json
import logging
import resource
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import yaml
from omegaconf import DictConfig, OmegaConf

from stretto.api import embedding_source, family_spec, operator_source
from stretto.data.datasets import load_dataset
from stretto.data.table import Table
from stretto.engine import EmbeddingSource, Optimizer, one_operator_plan, run_query
from stretto.errors import DataError, QueryError
from stretto.evaluation.metrics import auc, quality
from stretto.evaluation.plan_quality import (
    check_targets,
    human_decisions,
    human_known,
    human_values,
    operator_frontier,
    values_right,
)
from stretto.execution.cascade_executor import OperatorSource, PlanExecution, execute_plan
from stretto.execution.gold import gold_decisions, gold_only_seconds, gold_values
from stretto.experiment.result import JobResult
from stretto.experiment.systems import make_optimizer
from stretto.operators.family import FamilySpec
from stretto.optimizer.physical_plan import PhysicalPlan
from stretto.plan.query import Query
from stretto.plan.query_generator import describe, generated_query
from stretto.plan.targets import Targets
from stretto.plan.template import parse_template
from stretto.plan.workload import Workload
from stretto.profiling.profile import ProfileStore

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
        workload = None
        spec = OmegaConf.to_container(cfg.query, resolve=True)
        drawn = Query.of(cfg.query.table, spec.get("filters") or [], spec.get("extracts") or [])
    if workload is not None and workload.joins:  # a multi-table workload: its predicates read the joined relation
        table = workload.relation(load_dataset(cfg.dataset.name, limit=cfg.dataset.get("limit")))
    else:
        table = load_table(cfg.dataset, cfg.query.table)
    query = Query(table.name, drawn.filters, drawn.extracts)
    query.check(table)
    return query, table


def configured_family(cfg: DictConfig) -> FamilySpec:
    """The `family` config: its operators, its gold operator (at its threshold) and the models a vLLM server serves."""
    return family_spec(OmegaConf.to_container(cfg.family, resolve=True))


def configured_source(cfg: DictConfig, spec: FamilySpec, *, stored: bool | None = None) -> OperatorSource:
    """Where the family's operators get their answers (stretto.api.operator_source, configured): a recording
    (backend=replay) or the real models, on stored KV caches under paths.kv_dir unless family.stored=false
    (`stored` overrides it)."""
    backend = cfg.backend
    if backend.name == "vllm":
        from stretto.experiment.preflight import VLLM_MOVED, ConfigError

        raise ConfigError(VLLM_MOVED)
    if backend.name == "replay":
        return operator_source(spec, "replay", recording=backend.recording)
    return operator_source(
        spec,
        backend.name,
        cache_dir=cfg.paths.cache_dir,
        kv_dir=cfg.paths.kv_dir,
        budget_gb=cfg.paths.kv_budget_gb,
        batch_size=backend.batch_size,
        dtype=backend.dtype,
        device=backend.device,
        max_tokens=backend.get("max_tokens"),
        on_long_text=backend.get("on_long_text", "truncate"),
        stored=cfg.family.get("stored", True) if stored is None else stored,
    )


def configured_embeddings(cfg: DictConfig) -> EmbeddingSource | None:
    """The stored document embeddings learned operators read (stretto.api.embedding_source, configured): beside
    the recording (backend=replay) or under paths.embeddings_dir (built by `stretto cache build`)."""
    if cfg.backend.name == "replay":
        return embedding_source("replay", recording=cfg.backend.recording)
    return embedding_source(cfg.backend.name, embeddings_dir=cfg.paths.embeddings_dir)


def metric_name(identity: str) -> str:
    """An operator identity as an MLflow metric name (which allows letters, digits, _ - . : / and spaces):
    '@' becomes ':', a learned operator's 'learned(a+b)' becomes 'learned/a/b', '=' becomes '-'."""
    if identity.startswith("learned(") and identity.endswith(")"):
        identity = "learned/" + identity[len("learned(") : -1].replace("+", "/")
    return identity.replace("@", ":").replace("=", "-")


def peak_memory_gb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2  # Linux reports KiB


def run_job(
    cfg: DictConfig,
    *,
    parent_run_id: str | None = None,
    run_id: str | None = None,
    tags: dict[str, str] | None = None,
) -> JobResult:
    """Run the configured query, with or without an optimizer, and record it; everything cheap is validated
    before a model loads. The keywords place the MLflow run in a sweep (sweep.run_cell)."""
    targets = Targets(**cfg.targets)
    optimizer = None if cfg.optimizer.name == "none" else make_optimizer(cfg.optimizer)
    query, table = configured_query(cfg)
    spec = configured_family(cfg)
    source = configured_source(cfg, spec)
    if optimizer is None:
        result, artifacts = _one_operator(cfg, query, table, spec, source)
    else:
        result, artifacts = _optimized(cfg, query, table, spec, source, optimizer, targets)
    result = replace(result, query=query, targets=targets)
    out = Path(cfg.paths.output_dir)
    (out / "metrics.json").write_text(json.dumps(result.metrics, indent=2))
    if cfg.tracking.enabled:
        from stretto.experiment.tracking import log_config_run

        if optimizer is not None:
            tags = {**(tags or {}), "stretto.query": describe(query)}
        logged = log_config_run(cfg, result.metrics, artifacts, parent_run_id=parent_run_id, run_id=run_id, tags=tags)
        result = replace(result, mlflow_run_id=logged)  # None: MLflow failed, and the CLI says why after the summary
    return result


def _outputs(cfg: DictConfig, plan: PhysicalPlan, execution: PlanExecution) -> tuple[Path, Path]:
    out = Path(cfg.paths.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    plan_yaml, result_csv = out / "plan.yaml", out / "result.csv"
    plan_yaml.write_text(yaml.safe_dump(plan.to_dict(), sort_keys=False))
    execution.result.to_csv(result_csv, index=False)
    return plan_yaml, result_csv


def _one_operator(
    cfg: DictConfig, query: Query, table: Table, spec: FamilySpec, source: OperatorSource
) -> tuple[JobResult, list[Path]]:
    """optimizer=none: the one-step plan of the family's gold operator on every row, at its threshold."""
    plan = one_operator_plan(query, spec)
    began = time.perf_counter()
    for cascade in plan.cascades:  # loads the model (or opens the recording / the server's tokenizer)
        source.operator(parse_template(cascade.template), cascade.gold)
    load_seconds = time.perf_counter() - began
    execution = execute_plan(table, plan, source, seed=cfg.seed, progress=cfg.progress)
    seconds = max(execution.seconds, 1e-9)
    metrics = {
        "rows_in": execution.rows_in,
        "rows_out": int(execution.kept.sum()),
        "execution_seconds": execution.seconds,  # measured by the backends (recorded ones on replay)
        "wall_seconds": execution.wall_seconds,
        "rows_per_second": execution.rows_in / seconds,
        "model_load_seconds": load_seconds,
        "peak_memory_gb": peak_memory_gb(),
    }
    # The gold operator at a moved threshold scores log-odds minus the threshold: decisions are scores > 0;
    # scores.csv and the AUC get the model's own log-odds back.
    shift = spec.gold_threshold
    scores = {f"score_{i}": s + shift for i, s in enumerate(execution.scores)}
    for i, (op, cascade) in enumerate(zip(query.operators, plan.cascades, strict=True)):
        kind, k = ("filter", i) if i < len(query.filters) else ("extract", i - len(query.filters))
        steps = [s for s in execution.stats if s.template == cascade.template]
        metrics[f"{kind}{k}.rows_seen"] = sum(s.tuples for s in steps)
        metrics[f"{kind}{k}.rows_kept"] = sum(s.kept for s in steps)
        metrics[f"{kind}{k}.seconds"] = sum(s.seconds for s in steps)
        metrics[f"{kind}{k}.tokens"] = sum(s.tokens for s in steps)
        if kind == "filter" and op.label is not None:
            decided = execution.scores[i]
            seen = ~np.isnan(decided) & op.label.known(table.df).to_numpy()  # decided and labelled
            truth = op.label.truth(table.df).to_numpy()[seen]
            q = quality(decided[seen] > 0.0, truth)
            metrics |= {f"filter{k}.{name}": v for name, v in q.as_dict().items()}
            metrics[f"filter{k}.auc"] = auc(scores[f"score_{i}"][seen], truth)
    plan_yaml, result_csv = _outputs(cfg, plan, execution)
    scores_csv = result_csv.with_name("scores.csv")
    table.df.assign(**scores).to_csv(scores_csv, index=False)
    result = JobResult(metrics, result_csv, plan=plan, execution=execution, operator=spec.gold_identity)
    return result, [result_csv, scores_csv, plan_yaml]


def _optimized(
    cfg: DictConfig,
    query: Query,
    table: Table,
    spec: FamilySpec,
    source: OperatorSource,
    optimizer: Optimizer,
    targets: Targets,
) -> tuple[JobResult, list[Path]]:
    """An optimizer at end-to-end targets: profile a sample, optimize on it, execute the plan."""
    replay = cfg.backend.name == "replay"
    store = None if replay else ProfileStore(cfg.profiling.store_dir)
    run = run_query(
        table, query, source, spec, targets, optimizer,
        sample_fraction=cfg.profiling.fraction, sample_size=cfg.profiling.get("size"), seed=cfg.profiling.seed,
        sample_growth=cfg.profiling.get("growth", 0), labels=cfg.profiling.get("labels", "gold"),
        store=store, progress=cfg.progress, embeddings=configured_embeddings(cfg),
    )  # fmt: skip
    # The gold operator's answers on every row is free on recordings; live it would cost a full gold run.
    gold = gold_decisions(table, query, source, spec) if replay else None
    values = gold_values(table, query, source, spec) if replay else {}
    if gold is not None:
        human = human_decisions(table, query, gold)
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
        "labels": int((run.profile.records["operator"] == spec.gold_identity).sum()),  # gold answers on the sample
        "predicted_precision_lower": run.plan.precision_lower,
        "predicted_recall_lower": run.plan.recall_lower,
        "fallback": float(run.plan.fallback),
    }
    for identity, tuples in run.execution.tuples_per_operator().items():
        metrics[f"tuples.{metric_name(identity)}"] = tuples
    frontier = operator_frontier(run.problem) if run.problem is not None else {}  # None: no sample was taken
    for identity, (seconds, area) in frontier.items():
        metrics[f"operator.{metric_name(identity)}.seconds"] = seconds  # the KV-variant frontier's points
        metrics[f"operator.{metric_name(identity)}.auc"] = area
    known = human_known(table, query)
    if gold is not None:
        metrics["gold_only_seconds"] = gold_only_seconds(table, query, source, spec, gold)
        metrics |= check_targets(kept, gold, human, targets, right, right_human, known).as_dict()
    elif human is not None:
        metrics |= check_targets(kept, human, human, targets, known=known).as_dict()
        metrics = {k: v for k, v in metrics.items() if not k.startswith(("gold.", "met_gold"))}
    plan_yaml, result_csv = _outputs(cfg, run.plan, run.execution)
    return JobResult(metrics, result_csv, plan=run.plan, execution=run.execution), [plan_yaml, result_csv]


def format_run(result: JobResult, cfg: DictConfig) -> str:
    """The few lines a user reads after `stretto run` (a sweep's skipped cell: one line)."""
    if result.skipped is not None:
        return result.skipped.line()
    lines = _one_operator_lines(result, cfg) if result.operator is not None else _optimized_lines(result, cfg)
    lines.append(f"  result table      {result.result_csv}")
    if result.mlflow_run_id:
        lines.append(
            f"  MLflow run        {result.mlflow_run_id}  (view: mlflow ui --backend-store-uri {cfg.tracking.uri})"
        )
    return "\n".join(lines)


def _one_operator_lines(result: JobResult, cfg: DictConfig) -> list[str]:
    m, query, targets = result.metrics, result.query, result.targets
    extracts = f" and {len(query.extracts)} extract(s)" if query.extracts else ""
    lines = [
        f"Stretto: {len(query.filters)} semantic filter(s){extracts} over table '{query.table}' with {result.operator}",
        f"  rows in / out     {m['rows_in']} / {m['rows_out']}",
        f"  runtime           {m['execution_seconds']:.1f} s ({m['rows_per_second']:.2f} rows/s); "
        f"model load {m['model_load_seconds']:.1f} s; peak memory {m['peak_memory_gb']:.2f} GB",
    ]
    for i, f in enumerate(query.filters):
        lines.append(
            f'  filter {i + 1} "{f.template.text}": saw {m[f"filter{i}.rows_seen"]}, kept {m[f"filter{i}.rows_kept"]}, '
            f"{m[f'filter{i}.seconds']:.1f} s"
        )
        if f.label is not None and f"filter{i}.precision" in m:
            p, r, f1 = m[f"filter{i}.precision"], m[f"filter{i}.recall"], m[f"filter{i}.f1"]
            met = "met" if targets.met(p, r) else "not met"
            lines.append(
                f"     vs human labels ({f.label.column} == {f.label.positive}): precision {p:.3f} recall {r:.3f} "
                f"F1 {f1:.3f} AUC {m[f'filter{i}.auc']:.3f} "
                f"(targets P>={targets.precision} R>={targets.recall}: {met})"
            )
    for j, e in enumerate(query.extracts):
        lines.append(f'  extract {j + 1} "{e.template.text}": filled {m[f"extract{j}.rows_seen"]} row(s)')
    return lines


def _optimized_lines(result: JobResult, cfg: DictConfig) -> list[str]:
    m, query, targets = result.metrics, result.query, result.targets
    lines = [
        f"{cfg.optimizer.name} (backend {cfg.backend.name}): {len(query.filters)} filter(s), "
        f"{len(query.extracts)} extract(s), "
        f"targets precision >= {targets.precision}, recall >= {targets.recall} at alpha {targets.alpha}",
        result.plan.describe(),
        f"  rows in / out     {m['rows_in']} / {m['rows_out']}",
        f"  seconds           profiling {m['profile_seconds']:.1f} + optimization {m['optimize_seconds']:.1f} "
        f"+ execution {m['execution_seconds']:.1f} = {m['total_seconds']:.1f}",
    ]
    for who in ("gold", "human"):
        if f"{who}.precision" in m:
            met = "met" if m[f"met_{who}"] else "NOT met"
            truth = "gold operator" if who == "gold" else "human labels"
            lines.append(
                f"  vs {truth:<22} precision {m[f'{who}.precision']:.3f} recall {m[f'{who}.recall']:.3f} "
                f"F1 {m[f'{who}.f1']:.3f}: targets {met}"
            )
    return lines
