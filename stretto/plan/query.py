"""Logical plans: which table, which semantic predicates and extractions, and where the human truth lives."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import pandas as pd

from stretto.data.table import Table
from stretto.errors import QueryError
from stretto.plan.template import ExtractTemplate, Template, parse_template


@dataclass(frozen=True)
class LabelSpec:
    """A row truly satisfies the predicate when `column == positive` (a human label, not a model's)."""

    column: str
    positive: Any = True

    def truth(self, df: pd.DataFrame) -> pd.Series:
        return df[self.column].astype(str).str.lower() == str(self.positive).lower()


@dataclass(frozen=True)
class SemFilter:
    """Keep rows for which the template's claim is true."""

    template: Template
    label: LabelSpec | None = None

    @classmethod
    def of(cls, template: str, label: Mapping[str, Any] | None = None) -> SemFilter:
        return cls(Template(template), LabelSpec(**label) if label else None)


@dataclass(frozen=True)
class SemExtract:
    """Fill the template's [output] column for every row of the result."""

    template: ExtractTemplate
    label: str | None = None  # a column holding the true value (human), for evaluation only

    @classmethod
    def of(cls, template: str, label: str | None = None) -> SemExtract:
        parsed = parse_template(template)
        if not isinstance(parsed, ExtractTemplate):
            raise QueryError(
                f"extract '{template}' names no output: put the column to fill in brackets, "
                "e.g. 'the movie [title] mentioned in {reviewtext}'"
            )
        return cls(parsed, label)


@dataclass(frozen=True)
class Query:
    """A conjunction of semantic filters over one table, then extractions on the rows that pass."""

    table: str
    filters: tuple[SemFilter, ...]
    extracts: tuple[SemExtract, ...] = ()

    def __post_init__(self) -> None:
        if not self.filters and not self.extracts:
            raise QueryError(f"query over '{self.table}' has no semantic filter or extract")
        outputs = [e.template.output for e in self.extracts]
        if len(set(outputs)) != len(outputs):
            raise QueryError(f"query over '{self.table}' extracts the same output twice: {outputs}")

    @classmethod
    def of(cls, table: str, filters: Sequence[Mapping[str, Any]], extracts: Sequence[Mapping[str, Any]] = ()) -> Query:
        return cls(
            table,
            tuple(SemFilter.of(f["template"], f.get("label")) for f in filters),
            tuple(SemExtract.of(e["template"], e.get("label")) for e in extracts),
        )

    @property
    def operators(self) -> tuple[SemFilter | SemExtract, ...]:
        """Every semantic operator: the filters, then the extracts."""
        return (*self.filters, *self.extracts)

    def check(self, table: Table) -> None:
        """Fail early, naming the problem, if the table cannot answer this query."""
        if table.name != self.table:
            raise QueryError(f"query is over table '{self.table}' but was given table '{table.name}'")
        for f in self.filters:
            f.template.check_columns(table.columns, table.name)
            if f.label and f.label.column not in table.columns:
                raise QueryError(
                    f"label column '{f.label.column}' of filter '{f.template.text}' is not in table '{table.name}'; "
                    f"available columns: {table.columns}"
                )
        for e in self.extracts:
            e.template.check_columns(table.columns, table.name)
            if e.template.output in table.columns:
                raise QueryError(
                    f"extract '{e.template.text}' would overwrite column '{e.template.output}' of table "
                    f"'{table.name}': name the [output] differently"
                )
            if e.label and e.label not in table.columns:
                raise QueryError(
                    f"label column '{e.label}' of extract '{e.template.text}' is not in table '{table.name}'; "
                    f"available columns: {table.columns}"
                )
