"""Multi-table query specs: a source table and steps, semantic and relational, written in YAML or built in Python.

    scan("symptoms").sem_filter("{symptoms} describes a digestive problem")
                    .join("patients", on="patient_id").where("age", ">=", 40).project("patient_id", "age")

    scan("fodors").sem_join("zagats", "{fodors.record} and {zagats.record} describe the same restaurant", k=5)

Every semantic filter and extract of a pipeline (and a semantic join's pair predicate) forms one semantic
block that the optimizer plans jointly for the end-to-end targets. Relational filters and joins run before
it (they commute with a conjunction); project and limit run on its result. After a semantic join every
column is named `alias.column` (aliases default to the table names; a self-join must give two).
`check` walks the steps with the columns each one sees, so a bad spec fails before any model runs.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from stretto.errors import QueryError
from stretto.plan.query import SemExtract, SemFilter
from stretto.plan.relational import Join, Limit, Project, Where
from stretto.plan.template import Template


@dataclass(frozen=True)
class SemJoin:
    """Pairs of (left row, right row) for which the template holds; candidates come from blocking."""

    right: str
    template: Template  # over `left_alias.column` and `right_alias.column`
    left_alias: str
    right_alias: str
    k: int = 5  # embedding blocking: the k most similar right rows per left row
    on: tuple[str, str] | None = None  # relational blocking instead: (left key, right key)
    window: int = 20  # blocking audit: gold answers ranks k..window of sampled left rows to bound what k missed

    def __post_init__(self) -> None:
        if self.left_alias == self.right_alias:
            raise QueryError(
                f"semantic self-join of '{self.right}' needs two different aliases "
                f"(alias='{self.left_alias}' on the left, right_alias='...' on the right)"
            )
        if self.on is None and not 1 <= self.k <= self.window:
            raise QueryError(f"sem_join: need 1 <= k ({self.k}) <= window ({self.window})")

    def side_columns(self, alias: str) -> list[str]:
        """The template's columns of one side, unqualified."""
        return [c.split(".", 1)[1] for c in self.template.columns if c.split(".", 1)[0] == alias]


PipelineStep = SemFilter | SemExtract | SemJoin | Where | Join | Project | Limit


@dataclass(frozen=True)
class Pipeline:
    table: str
    steps: tuple[PipelineStep, ...] = ()
    alias: str | None = None

    @property
    def name(self) -> str:
        return self.alias or self.table

    def _add(self, step: PipelineStep) -> Pipeline:
        return replace(self, steps=(*self.steps, step))

    def sem_filter(self, template: str, label: Mapping[str, Any] | None = None) -> Pipeline:
        return self._add(SemFilter.of(template, label))

    def sem_extract(self, template: str, label: str | None = None) -> Pipeline:
        return self._add(SemExtract.of(template, label))

    def sem_join(
        self,
        right: str,
        template: str,
        *,
        k: int = 5,
        on: Sequence[str] | None = None,
        right_alias: str | None = None,
        window: int = 20,
    ) -> Pipeline:
        key = (on[0], on[-1]) if on else None
        return self._add(SemJoin(right, Template(template), self.name, right_alias or right, k, key, window))

    def where(self, column: str, op: str, value: Any) -> Pipeline:
        return self._add(Where(column, op, value))

    def join(self, table: str, on: str | None = None, *, left_on: str | None = None, right_on: str | None = None):
        if not (on or (left_on and right_on)):
            raise QueryError(f"join with '{table}': give on=<key> or both left_on and right_on")
        return self._add(Join(table, left_on or on, right_on or on))

    def project(self, *columns: str) -> Pipeline:
        return self._add(Project(tuple(columns)))

    def limit(self, n: int) -> Pipeline:
        return self._add(Limit(n))

    @property
    def sem_join_step(self) -> SemJoin | None:
        joins = [s for s in self.steps if isinstance(s, SemJoin)]
        return joins[0] if joins else None

    def semantic_steps(self) -> list[SemFilter | SemExtract]:
        return [s for s in self.steps if isinstance(s, SemFilter | SemExtract)]

    @classmethod
    def of(cls, config: Mapping[str, Any]) -> Pipeline:
        """From YAML: {table, alias?, steps: [{sem_filter: T}, {sem_extract: T}, {sem_join: {right, template, k}},
        {where: {column, op, value}}, {join: {table, on}}, {project: [cols]}, {limit: n}]}."""
        if "table" not in config:
            raise QueryError("a pipeline needs 'table' (the table it starts from) and 'steps'")
        pipeline = cls(config["table"], alias=config.get("alias"))
        for step in config.get("steps") or []:
            if not isinstance(step, Mapping) or len(step) != 1:
                raise QueryError(f"each pipeline step is one mapping like {{sem_filter: ...}}; got {step!r}")
            ((kind, arg),) = step.items()
            if isinstance(arg, Mapping) and True in arg:
                raise QueryError(f"pipeline step '{kind}' has a key read as true: quote \"on\" in YAML")
            if kind not in STEP_BUILDERS:
                raise QueryError(f"unknown pipeline step '{kind}'; known steps: {sorted(STEP_BUILDERS)}")
            try:
                pipeline = STEP_BUILDERS[kind](pipeline, arg)
            except TypeError as err:
                raise QueryError(f"pipeline step '{kind}': {err}") from None
        return pipeline

    def check(self, columns_of: Mapping[str, Sequence[str]]) -> list[str]:
        """Walk the steps with the columns each sees (columns_of: table -> its columns); returns the result's
        columns. Raises QueryError naming an unknown table or column, or a misplaced step."""
        if self.table not in columns_of:
            raise QueryError(f"pipeline starts from unknown table '{self.table}'; tables: {sorted(columns_of)}")
        joined = self.sem_join_step is not None
        columns = [f"{self.name}.{c}" if joined else c for c in columns_of[self.table]]
        seen_semantic = False
        for step in self.steps:
            if isinstance(step, SemJoin):
                if step is not self.sem_join_step:
                    raise QueryError("a pipeline holds at most one sem_join")
                if seen_semantic:
                    raise QueryError("put sem_join before semantic filters and extracts: they run on its pairs")
                if step.right not in columns_of:
                    raise QueryError(f"sem_join with unknown table '{step.right}'; tables: {sorted(columns_of)}")
                columns += [f"{step.right_alias}.{c}" for c in columns_of[step.right]]
                unknown = [c for c in step.template.columns if c not in columns]
                if unknown:
                    raise QueryError(
                        f"join template '{step.template.text}' refers to {unknown}, not among the joined columns "
                        f"(write them as {self.name}.<column> and {step.right_alias}.<column>): {columns}"
                    )
                if step.on and (f"{self.name}.{step.on[0]}" not in columns or step.on[1] not in columns_of[step.right]):
                    raise QueryError(f"sem_join blocking key {step.on} is not a column of both sides")
            elif isinstance(step, SemFilter | SemExtract):
                seen_semantic = True
                step.template.check_columns(columns, self.name)
                if isinstance(step, SemExtract):
                    columns.append(step.template.output)
            elif isinstance(step, Join):
                if step.table not in columns_of:
                    raise QueryError(f"join with unknown table '{step.table}'; tables: {sorted(columns_of)}")
                if step.left_on not in columns or step.right_on not in columns_of[step.table]:
                    raise QueryError(f"join with '{step.table}' on {step.left_on} = {step.right_on}: key not found")
                columns += [c if c not in columns else f"{c}_{step.table}" for c in columns_of[step.table]]
            else:
                outputs = {s.template.output for s in self.semantic_steps() if isinstance(s, SemExtract)}
                if isinstance(step, Where) and step.column in outputs:
                    raise QueryError(
                        f"where on extracted column '{step.column}': relational filters run before the semantic "
                        "block; filter on it semantically (sem_filter) instead"
                    )
                missing = [c for c in getattr(step, "columns", ()) if c not in columns]
                if missing:
                    raise QueryError(f"{type(step).__name__.lower()} refers to unknown column(s) {missing}; "
                                     f"have {columns}")  # fmt: skip
                if isinstance(step, Project):
                    columns = list(step.columns)
        if not self.semantic_steps() and not joined:
            raise QueryError(f"pipeline over '{self.table}' has no semantic step: nothing for a model to answer")
        return columns


def _template_step(name: str):
    def build(p: Pipeline, arg: Any) -> Pipeline:
        return getattr(p, name)(arg) if isinstance(arg, str) else getattr(p, name)(**arg)

    return build


STEP_BUILDERS = {  # YAML step name -> how it extends a pipeline
    "sem_filter": _template_step("sem_filter"),
    "sem_extract": _template_step("sem_extract"),
    "sem_join": lambda p, a: p.sem_join(**a),
    "where": lambda p, a: p.where(**a),
    "join": lambda p, a: p.join(**a),
    "project": lambda p, a: p.project(*a),
    "limit": lambda p, a: p.limit(a),
}


def scan(table: str, alias: str | None = None) -> Pipeline:
    """Start a pipeline from a table (give an alias to join a table with itself)."""
    return Pipeline(table, alias=alias)
