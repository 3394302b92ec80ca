"""The front door: a semantic query over a table at end-to-end precision and recall targets, in one call.

    import stretto
    answer = stretto.query("movie", filters=["{reviewtext} is clearly positive"], precision=0.7, recall=0.7)
    answer.result              # the rows that pass (with a column per extract)
    answer.plan.describe()     # the cascades and thresholds the system chose, and their bounds
    answer.costs               # profiling (gold labels + candidates on the sample), optimization, execution
    answer.quality()           # precision / recall against the filters' labels (or labels you pass)

Plain Python in and out: a DataFrame, a Table or a bundled dataset's name; a family and a backend by name or
as objects. No Hydra, no MLflow: the harness (stretto/experiment/) configures this same call and records it.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml

from stretto.data.datasets import DATASETS, load_dataset
from stretto.data.table import Table
from stretto.engine import Costs, EmbeddingSource, QueryRun, run_query
from stretto.engine.label_source import check_label_source
from stretto.errors import ModelError, ProfileError, QueryError
from stretto.evaluation.metrics import Quality, quality
from stretto.evaluation.plan_quality import human_known
from stretto.execution.cascade_executor import OperatorSource
from stretto.execution.gold import gold_decisions
from stretto.operators.family import FamilySpec, LiveFamily, ReplayFamily
from stretto.operators.stored_embeddings import EmbeddingStore, EmbeddingTable
from stretto.optimizer.physical_plan import PhysicalPlan
from stretto.plan.query import LabelSpec, Query, SemExtract, SemFilter
from stretto.plan.targets import Targets
from stretto.profiling.profile import Profile, ProfileStore
from stretto.systems import ABLATIONS, check_system, make_optimizer

log = logging.getLogger(__name__)
ROOT = Path(__file__).resolve().parents[1]
FAMILY_DIR = ROOT / "conf" / "family"  # the named families, one file each (also Hydra's `family` group)
RECORDING_DIR = ROOT / "recordings"  # recorded operator answers of the bundled datasets (backend="replay")
BACKENDS = ("transformers", "replay")


def family_spec(family: str | FamilySpec | Mapping[str, Any]) -> FamilySpec:
    """A family by name (conf/family/<name>.yaml: `default`, `no_compression`), as its config mapping, or as is."""
    if isinstance(family, FamilySpec):
        return family
    if isinstance(family, Mapping):
        return FamilySpec.of(family)
    if family == "no_compression":
        return family_spec("default").without_compression()
    path = FAMILY_DIR / f"{family}.yaml"
    if family == "custom" or not path.is_file():
        names = sorted(p.stem for p in FAMILY_DIR.glob("*.yaml") if p.stem != "custom")
        raise QueryError(
            f"unknown family '{family}'; choose one of {names}, or pass a FamilySpec or a mapping "
            "{models: [{model, variants: [{press, ratio}]}], gold: {model, press, ratio}}"
        )
    return FamilySpec.of(yaml.safe_load(path.read_text()))


def operator_source(
    family: FamilySpec,
    backend: str | OperatorSource,
    *,
    recording_name: str = "",
    recording: str | Path | None = None,
    cache_dir: str | Path | None = None,
    batch_size: int = 8,
    dtype: str = "bfloat16",
    device: str = "cpu",
    budget_gb: float | None = None,
    stored: bool = True,
    kv_dir: str | Path | None = None,
    max_tokens: int | None = None,
    on_long_text: str = "truncate",
) -> OperatorSource:
    """Where the family's operators get their answers: the real models (`transformers`, on stored KV caches
    under `kv_dir`, default <cache_dir>/kv, or from scratch with `stored=False`; a vLLM server for the models
    the family serves), a recording of them (`replay`, no model), or any object with `operator(template,
    identity)`. The harness (`stretto run`, `compare`, `pipeline`) and the scripts build their sources here."""
    if not isinstance(backend, str):
        return backend
    if backend == "replay":
        path = Path(recording) if recording is not None else RECORDING_DIR / f"{recording_name}.parquet"
        if not path.exists():
            raise ProfileError(
                f"no recording at {path}: record the workload's scores first (scripts/record_scores.py), "
                "pass recording=<file>, or run with the real models (backend='transformers')"
            )
        return ReplayFamily(family, Profile.load(path))
    if backend == "transformers":
        return LiveFamily(
            family,
            cache_dir=Path(cache_dir) if cache_dir is not None else None,
            batch_size=batch_size,
            dtype=dtype,
            device=device,
            budget_gb=budget_gb,
            stored=stored,
            kv_dir=Path(kv_dir) if kv_dir is not None else None,
            max_tokens=max_tokens,
            on_long_text=on_long_text,
        )
    raise QueryError(f"unknown backend '{backend}'; choose one of {list(BACKENDS)} or pass an operator source")


def embedding_source(
    backend: str | OperatorSource,
    *,
    recording_name: str = "",
    recording: str | Path | None = None,
    embeddings_dir: str | Path | None = None,
) -> EmbeddingSource | None:
    """The stored document embeddings learned operators read: beside a recording (`<recording>_embeddings.parquet`,
    backend `replay`), or the store the offline build fills (`embeddings_dir`, default <cache dir>/embeddings)
    for the real models. None where there are none (no learned operators then)."""
    if backend == "replay":
        path = Path(recording) if recording is not None else RECORDING_DIR / f"{recording_name}.parquet"
        stored = path.with_name(f"{path.stem}_embeddings.parquet")
        return EmbeddingTable.load(stored) if stored.exists() else None
    if backend == "transformers":
        try:
            return EmbeddingStore(Path(embeddings_dir) if embeddings_dir else _default_cache() / "embeddings")
        except ModelError as err:  # no embedder installed: no learned operators
            log.info("no learned operators: %s", err)
            return None
    return None


@dataclass(frozen=True)
class Answer:
    """A query's result, the plan that produced it, what it cost, and how to check it."""

    run: QueryRun  # everything the engine saw: sample, profile, problem, plan, execution, seconds
    table: Table
    query: Query
    source: OperatorSource
    family: FamilySpec

    @property
    def result(self) -> pd.DataFrame:
        """The rows that pass every filter, with a column per extract."""
        return self.run.execution.result

    @property
    def kept(self) -> np.ndarray:
        """(rows of the table,) whether each row is in the result."""
        return self.run.execution.kept

    @property
    def plan(self) -> PhysicalPlan:
        return self.run.plan

    @property
    def costs(self) -> Costs:
        return self.run.costs

    def quality(self, labels: Any = None) -> Quality:
        """Precision and recall of the result's rows against a truth: `labels` is one boolean per row of the
        table (a sequence, or the name of a boolean column), or {column, positive} / {column, above} (a row is
        true when its column holds the positive value / a number above it); None takes the filters' own
        labels; "gold" asks the gold operator about every row (free on recordings, a full gold pass on real
        models). Rows whose label is missing are left out (`LabelSpec.known`)."""
        truth, known = self._truth(labels)
        return quality(self.kept[known], truth[known])

    def _truth(self, labels: Any) -> tuple[np.ndarray, np.ndarray]:
        """(truth, known): one boolean per row, and whether its truth is known."""
        n = len(self.table)
        every = np.ones(n, dtype=bool)
        if isinstance(labels, str) and labels == "gold":
            return gold_decisions(self.table, self.query, self.source, self.family).all(axis=0), every
        if isinstance(labels, Mapping):
            spec = LabelSpec(**labels)
            spec.check(self.table, "labels")
            return spec.truth(self.table.df).to_numpy(), spec.known(self.table.df).to_numpy()
        if isinstance(labels, str):
            if labels not in self.table.df.columns:
                raise QueryError(f"labels: table '{self.table.name}' has no column '{labels}'")
            labels = self.table.df[labels]
        if labels is None:
            unlabelled = [f.template.text for f in self.query.filters if f.label is None]
            if unlabelled or not self.query.filters:
                raise QueryError(
                    f"no labels given and filter(s) {unlabelled} declare none: pass labels=<one bool per row>, "
                    "a boolean column's name, or 'gold'"
                )
            truth = np.array([f.label.truth(self.table.df).to_numpy() for f in self.query.filters]).all(axis=0)
            return truth, human_known(self.table, self.query)
        truth = np.asarray(labels)
        if truth.shape != (n,) or truth.dtype != bool:
            raise QueryError(f"labels must be {n} booleans, one per row of the table; got {truth.dtype} {truth.shape}")
        return truth, every


def as_table(data: Table | pd.DataFrame | str | Path, query_columns: Sequence[str], name: str | None) -> Table:
    """The table to query: as given, a bundled dataset's table by name, a file (CSV, Parquet or a folder of .txt
    files), or a DataFrame whose text columns are the ones the templates name (rows with empty text are dropped
    with a warning, as from a file)."""
    if isinstance(data, Table):
        return data
    if isinstance(data, pd.DataFrame):
        return Table(name or "table", data, tuple(query_columns)).drop_empty_text()
    if isinstance(data, str) and data in DATASETS:
        tables = load_dataset(data)
        if name is not None and name not in tables:
            raise QueryError(f"dataset '{data}' has no table '{name}'; its tables: {list(tables)}")
        return tables[name] if name else next(iter(tables.values()))
    if isinstance(data, str | Path):
        path = Path(data)
        if path.is_dir():
            return Table.from_text_folder(path, name=name)
        return Table.from_path(path, text_columns=tuple(query_columns), name=name)
    raise QueryError(
        f"query over a {type(data).__name__}: pass a pandas DataFrame, a stretto Table, a file path or one of the "
        f"bundled datasets {list(DATASETS)}"
    )


def _operator(spec: str | Mapping[str, Any], kind: type[SemFilter] | type[SemExtract]) -> SemFilter | SemExtract:
    if isinstance(spec, str):
        return kind.of(spec)
    spec = dict(spec)
    if "template" not in spec:
        raise QueryError(f"{kind.__name__} {spec} has no 'template'")
    return kind.of(spec.pop("template"), spec.pop("label", None))


def query(
    data: Table | pd.DataFrame | str | Path,
    filters: Sequence[str | Mapping[str, Any]] = (),
    extracts: Sequence[str | Mapping[str, Any]] = (),
    *,
    precision: float = 0.9,
    recall: float = 0.9,
    alpha: float = 0.95,
    system: str = "stretto",
    settings: Mapping[str, Any] | None = None,
    family: str | FamilySpec | Mapping[str, Any] = "default",
    backend: str | OperatorSource = "transformers",
    sample_fraction: float = 0.15,
    sample_size: int | None = None,
    sample_growth: int = 0,
    labels: str = "gold",
    seed: int = 0,
    table: str | None = None,
    recording: str | Path | None = None,
    cache_dir: str | Path | None = None,
    batch_size: int = 8,
    dtype: str = "bfloat16",
    device: str = "cpu",
    progress: bool = True,
    embeddings: EmbeddingSource | None = None,
) -> Answer:
    """Keep the rows for which every filter's claim holds, fill each extract's [output], and meet
    precision >= `precision` and recall >= `recall` of the result (against the gold operator), each with
    probability >= `alpha`, at the lowest cost the `system` finds.

    filters / extracts: templates naming text columns in braces ("{body} reports a billing problem",
    "the [product] named in {body}"), or mappings {template, label} with a human label for evaluation.
    system: "stretto" (default), "local", "shift_budget", "no_compression", "lotus", "bargain", "abacus",
    "gold_only"; `settings` override its defaults (e.g. {"jobs": 32}). family / backend: see `family_spec`
    and `operator_source`. `table` names the table of a multi-table dataset (or of a DataFrame).
    sample_size: the profiling sample's row count (wins over `sample_fraction`; more than the table's rows is an
    OptimizerError). When the sample's gold labels cannot certify any plan, Stretto skips the cheap operators.
    sample_growth: up to this many doublings of the sample while it certifies nothing (engine.run_query).
    labels: where the sample's labels come from: "gold" (the gold operator; the guarantees are relative to it),
    "column" (each filter's `label` column: the guarantees hold against it) or a CSV of rows you labelled, keyed
    by the table's key column (or `row`, the 0-based position), one column per filter's label column
    (engine/label_source.py). A query that not even gold alone can meet against them is refused
    (UncertifiableTargets), before it runs.
    embeddings: the documents' stored embeddings for learned operators (default: the recording's for `replay`,
    the offline store under <cache_dir>/embeddings for `transformers`; see `embedding_source`).
    """
    check_system(system)
    check_label_source(labels)
    parsed = Query(
        table or "table",
        tuple(_operator(f, SemFilter) for f in filters),
        tuple(_operator(e, SemExtract) for e in extracts),
    )
    columns = list(dict.fromkeys(c for op in parsed.operators for c in op.template.columns))
    rows = as_table(data, columns, table)
    parsed = Query(rows.name, parsed.filters, parsed.extracts)
    targets = Targets(precision, recall, alpha)
    spec = family_spec(family)
    if system in ABLATIONS and ABLATIONS[system][1] == "no_compression":
        spec = spec.without_compression()
    optimizer = make_optimizer(system, settings, seed=seed)
    bundled = data if isinstance(data, str) and data in DATASETS else rows.name  # recordings are per dataset
    source = operator_source(
        spec, backend, recording_name=bundled, recording=recording, cache_dir=cache_dir,
        batch_size=batch_size, dtype=dtype, device=device,
    )  # fmt: skip
    live = backend == "transformers"
    store = ProfileStore((Path(cache_dir) if cache_dir else _default_cache()) / "profiles") if live else None
    if embeddings is None:
        embeddings = embedding_source(
            backend, recording_name=bundled, recording=recording,
            embeddings_dir=Path(cache_dir) / "embeddings" if cache_dir else None,
        )  # fmt: skip
    run = run_query(
        rows, parsed, source, spec, targets, optimizer,
        sample_fraction=sample_fraction, sample_size=sample_size, seed=seed, store=store, progress=progress,
        embeddings=embeddings, sample_growth=sample_growth, labels=labels,
    )  # fmt: skip
    return Answer(run, rows, parsed, source, spec)


def _default_cache() -> Path:
    from stretto.backends.model_loader import default_cache_dir

    return default_cache_dir()
