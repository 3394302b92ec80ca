"""Logical plans: which table, which semantic predicates, and where the human truth for each lives."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import pandas as pd

from stretto.data.table import Table
from stretto.errors import QueryError
from stretto.plan.template import Template


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
class Query:
    """A conjunction of semantic filters over one table."""

    table: str
    filters: tuple[SemFilter, ...]

    def __post_init__(self) -> None:
        if not self.filters:
            raise QueryError(f"query over '{self.table}' has no filters")

    @classmethod
    def of(cls, table: str, filters: Sequence[Mapping[str, Any]]) -> Query:
        return cls(table, tuple(SemFilter.of(f["template"], f.get("label")) for f in filters))

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
