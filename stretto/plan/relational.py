"""Relational operators next to the semantic ones: filter by column value, equi-join, project, limit (pandas).

They are exact and cheap, so a pipeline runs filters and joins before the semantic block (they commute with a
conjunction of semantic filters, and every row they drop is a row no LLM has to read); project and limit run
last, on the result. Each one checks its columns against the relation it is given and names what is missing.
"""

from __future__ import annotations

import operator
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from numbers import Real
from typing import Any

import numpy as np
import pandas as pd

from stretto.errors import QueryError

COMPARISONS = {
    "==": operator.eq,
    "!=": operator.ne,
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
}


def check_columns(df: pd.DataFrame, columns: Sequence[str], what: str) -> None:
    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise QueryError(f"{what} refers to column(s) {missing} that are not in the relation; have {list(df.columns)}")


def value_kind(values: pd.Series) -> str | None:
    """What a column holds, for checking a comparison's value: number, bool, text, or None (anything goes)."""
    if pd.api.types.is_bool_dtype(values):
        return "bool"
    if pd.api.types.is_numeric_dtype(values):
        return "number"
    present = values.dropna()
    if pd.api.types.is_string_dtype(values) and len(present) and present.map(lambda v: isinstance(v, str)).all():
        return "text"
    return None


def fits(kind: str | None, value: Any) -> bool:
    """Whether `value` compares meaningfully with a column of this kind (a number with text never does)."""
    if kind is None or value is None:
        return True
    if kind == "bool":
        return isinstance(value, bool | np.bool_)
    if kind == "number":
        return isinstance(value, Real) and not isinstance(value, bool | np.bool_)
    return isinstance(value, str)


@dataclass(frozen=True)
class Where:
    """Keep rows whose `column` compares true to `value` (op one of ==, !=, <, <=, >, >=, in)."""

    column: str
    op: str
    value: Any

    def __post_init__(self) -> None:
        if self.op not in (*COMPARISONS, "in"):
            raise QueryError(f"where: unknown comparison '{self.op}'; use one of {[*COMPARISONS, 'in']}")
        if self.op == "in" and not isinstance(self.value, list | tuple | set):
            raise QueryError(f"where {self.column} in ...: give a list of values, got {self.value!r}")

    @property
    def columns(self) -> tuple[str, ...]:
        return (self.column,)

    def apply(self, df: pd.DataFrame, tables: Mapping[str, pd.DataFrame]) -> pd.DataFrame:
        check_columns(df, self.columns, f"where {self.column} {self.op} {self.value!r}")
        values = df[self.column]
        kind = value_kind(values)
        for value in self.value if self.op == "in" else [self.value]:
            if not fits(kind, value):
                raise QueryError(
                    f"where {self.column} {self.op} {self.value!r}: column '{self.column}' holds {kind} values "
                    f"({values.dtype}), and {value!r} is a {type(value).__name__}; write a {kind} value"
                )
        keep = values.isin(list(self.value)) if self.op == "in" else COMPARISONS[self.op](values, self.value)
        return df[keep.fillna(False).to_numpy(bool)]


@dataclass(frozen=True)
class Join:
    """Equi-join with another table on a key (inner); the right side's clashing columns get a `_<table>` suffix."""

    table: str
    left_on: str
    right_on: str

    @property
    def columns(self) -> tuple[str, ...]:
        return (self.left_on,)

    def apply(self, df: pd.DataFrame, tables: Mapping[str, pd.DataFrame]) -> pd.DataFrame:
        if self.table not in tables:
            raise QueryError(f"join with unknown table '{self.table}'; tables: {sorted(tables)}")
        right = tables[self.table]
        check_columns(df, [self.left_on], f"join with '{self.table}'")
        check_columns(right, [self.right_on], f"join with '{self.table}' (its side)")
        return df.merge(right, left_on=self.left_on, right_on=self.right_on, how="inner",
                        suffixes=("", f"_{self.table}"))  # fmt: skip


@dataclass(frozen=True)
class Project:
    columns: tuple[str, ...]

    def apply(self, df: pd.DataFrame, tables: Mapping[str, pd.DataFrame]) -> pd.DataFrame:
        check_columns(df, self.columns, "project")
        return df[list(self.columns)]


@dataclass(frozen=True)
class Limit:
    """The first n rows of the result (the targets hold for the result before the limit)."""

    n: int

    def __post_init__(self) -> None:
        if isinstance(self.n, bool) or not isinstance(self.n, int) or self.n < 1:
            raise QueryError(f"limit must be a positive integer, got {self.n!r}")

    @property
    def columns(self) -> tuple[str, ...]:
        return ()

    def apply(self, df: pd.DataFrame, tables: Mapping[str, pd.DataFrame]) -> pd.DataFrame:
        return df.head(self.n)
