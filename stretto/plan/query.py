"""Logical plans: which table, which semantic predicates and extractions, and where the human truth lives."""

from __future__ import annotations

import logging
import numbers
import weakref
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from stretto.data.table import Table
from stretto.errors import QueryError
from stretto.plan.template import ExtractTemplate, Template, parse_template

log = logging.getLogger(__name__)

#: Warnings about labels already logged, per table (a query is checked more than once per run).
_WARNED: weakref.WeakKeyDictionary[Table, set[str]] = weakref.WeakKeyDictionary()


def label_key(value: Any) -> str | None:
    """How a label value compares with a declared positive: None if missing, else a lowercase string.

    Case and surrounding spaces do not matter ('POSITIVE' == 'positive '), True == 'true', and a whole
    number compares equal to its integer spelling (1.0 == 1 == '1': a CSV column with a missing label
    is read as floats).
    """
    if value is None or (pd.api.types.is_scalar(value) and pd.isna(value)):
        return None
    if isinstance(value, bool | np.bool_):
        return "true" if value else "false"
    if isinstance(value, numbers.Integral):
        return str(int(value))
    if isinstance(value, numbers.Real) and float(value).is_integer():
        return str(int(value))
    return str(value).strip().lower()


@dataclass(frozen=True)
class LabelSpec:
    """A row truly satisfies the predicate when `column == positive` (a human label, not a model's), or, with
    `above`, when the column's number exceeds it.

    Values are compared by `label_key`; every other value counts as negative. A missing value means nobody
    labelled the row, so the row is left out of every comparison with the labels (`known`). With `above`, a
    missing number means the document gives none, so a claim "more than N" is false there (rotowire's box
    scores: an empty cell is a statistic the report does not state). `check` refuses a label that can never
    be true and reports what the column holds.
    """

    column: str
    positive: Any = True
    above: float | None = None

    def truth(self, df: pd.DataFrame) -> pd.Series:
        if self.above is not None:
            return pd.to_numeric(df[self.column]).gt(self.above).fillna(False).astype(bool)
        return df[self.column].map(label_key).eq(label_key(self.positive)).astype(bool)

    def known(self, df: pd.DataFrame) -> pd.Series:
        """The rows whose truth is known: every row with `above`, else those with a label value."""
        if self.above is not None:
            return pd.Series(True, index=df.index)
        return df[self.column].map(label_key).notna()

    def check(self, table: Table, what: str) -> list[str]:
        """Warnings about this label on `table`; a QueryError if its positive value occurs nowhere (with `above`:
        if the column holds something other than numbers).

        `what` names the operator in messages. On a part of a table (`dataset.limit`), a positive that
        occurs only in the rest is a warning (the scores cannot be compared with human labels), not an error.
        """
        if self.above is not None:
            values = table.df[self.column]
            not_numbers = values[pd.to_numeric(values, errors="coerce").isna() & values.notna()]
            if not not_numbers.empty:
                raise QueryError(
                    f"{what}: label.above compares numbers, but column '{self.column}' holds "
                    f"{not_numbers.iloc[0]!r}; drop `above` and set label.positive"
                )
            return []
        positive = label_key(self.positive)
        if positive is None:
            raise QueryError(f"{what}: label.positive is empty; set it to the value of '{self.column}' that means true")
        values = table.df[self.column]
        keys = values.map(label_key)
        found = _occurrences(values, keys)
        if not keys.eq(positive).any():
            whole = table.uncut
            if whole is not None and whole.df[self.column].map(label_key).eq(positive).any():
                return [
                    f"{what}: label value {self.positive!r} of column '{self.column}' does not occur in the "
                    f"{len(table)} rows loaded (it does among all {len(whole)}), so no row counts as positive and "
                    f"the comparison with human labels means nothing; load more rows (raise dataset.limit). "
                    f"Values in the rows loaded: {found}"
                ]
            raise QueryError(
                f"{what}: label value {self.positive!r} never occurs in label column '{self.column}' of table "
                f"'{table.name}', so every row would count as negative; values that occur: {found}. "
                f"Set label.positive to one of them" + (" (it defaults to true)" if self.positive is True else "")
            )
        warnings = []
        distinct = keys.dropna().nunique()
        if distinct > 2:
            warnings.append(
                f"{what}: label column '{self.column}' holds {distinct} distinct values; only {self.positive!r} "
                f"counts as positive and every other value as negative: {found}"
            )
        missing = int(keys.isna().sum())
        if missing:
            warnings.append(
                f"{what}: {missing} of {len(keys)} rows have no value in label column '{self.column}' "
                f"and are left out of the comparison with the labels"
            )
        return warnings


def _occurrences(values: pd.Series, keys: pd.Series, shown: int = 10) -> str:
    """'POSITIVE (664), NEGATIVE (336)': each distinct value as first spelled, with counts, most common first."""
    spelled = values[keys.notna()].groupby(keys[keys.notna()], sort=False).agg(lambda s: str(s.iloc[0]).strip())
    counts = keys.value_counts()
    parts = [f"{spelled[key]} ({n})" for key, n in counts.head(shown).items()]
    if len(counts) > shown:
        parts.append(f"and {len(counts) - shown} more values")
    if keys.isna().any():
        parts.append(f"missing ({int(keys.isna().sum())})")
    return ", ".join(parts) or "none (every value is missing)"


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
        warnings = []
        for f in self.filters:
            f.template.check_columns(table.columns, table.name)
            if f.label and f.label.column not in table.columns:
                raise QueryError(
                    f"label column '{f.label.column}' of filter '{f.template.text}' is not in table '{table.name}'; "
                    f"available columns: {table.columns}"
                )
            if f.label:
                warnings += f.label.check(table, f"filter '{f.template.text}'")
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
        # A query is checked when it is configured and again when it runs: say each thing once per table.
        said = _WARNED.setdefault(table, set())
        for warning in warnings:
            if warning not in said:
                said.add(warning)
                log.warning(warning)
