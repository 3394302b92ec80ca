"""Where the profiling sample's labels come from: the gold operator (the default), or the truth a user has.

`gold`: the gold operator labels the sample, and every guarantee is relative to it (gold alone is exact).
`column`: each filter's declared label column (`label: {column, positive}` in the workload or query) holds the
truth on every row, and each extract's (`label: <column>`) its true value (an empty cell: the document does not
say, so no value is the right answer); the sample is drawn as usual and answered by them. A filter's row whose
label cell is empty is unlabelled: the sample is then the rows labelled for every filter.
A CSV path: what a user labelled, keyed by the table's key column (by 0-based row position, column `row`, when
the table has none), one column per filter's label column (filters only); the sample is exactly the rows
labelled. With either, the gold operator is one more fallible operator (its errors on the sample count like any
other's, its wrong values too), and the certification holds against the labels.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from stretto.data.table import Table
from stretto.errors import QueryError
from stretto.plan.answers import as_number
from stretto.plan.query import LabelSpec, Query

GOLD = "gold"
COLUMN = "column"


def check_label_source(source: str | None, query: Query | None = None) -> None:
    """A clear error for a label source that cannot work, before anything runs."""
    if source in (None, GOLD):
        return
    if source != COLUMN and not (str(source).endswith(".csv") and Path(source).is_file()):
        raise QueryError(
            f"profiling.labels={source!r}: use 'gold' (the gold operator labels the sample), 'column' (each "
            "filter's label column) or the path of an existing CSV of labels keyed by row"
        )
    if query is not None:
        if query.extracts and source != COLUMN:
            raise QueryError(f"profiling.labels={source!r}: a labels file is for filters only; this query has "
                             "extracts (profiling.labels=column reads their label columns, or use gold)")  # fmt: skip
        unlabelled = [f.template.text for f in query.filters if f.label is None]
        if unlabelled:
            raise QueryError(
                f"profiling.labels={source!r} needs a label column for every filter; none is declared for "
                f"{unlabelled} (set `label: {{column: ..., positive: ...}}` on the filter)"
            )
        unlabelled = [e.template.text for e in query.extracts if e.label is None]
        if unlabelled:
            raise QueryError(
                f"profiling.labels={source!r} needs a label column for every extract; none is declared for "
                f"{unlabelled} (set `label: <column of true values>` on the extract)"
            )


def sample_truth(table: Table, query: Query, source: str | None) -> dict[str, np.ndarray] | None:
    """Per filter template: the truth on every row (1.0 / 0.0; NaN where nobody labelled the row); per extract
    template: the true value on every row (None: no value is right); or None when the gold operator labels the
    sample."""
    check_label_source(source, query)
    if source in (None, GOLD):
        return None
    if source == COLUMN:
        decisions = {f.template.text: _with_unlabelled(f.label, table.df) for f in query.filters}
        values = {e.template.text: _values(table.df[e.label], bool(e.template.choices)) for e in query.extracts}
        return decisions | values
    labelled = pd.read_csv(source)
    key = table.key or "row"
    if key not in labelled.columns:
        raise QueryError(f"labels file {source}: no '{key}' column to match its rows to the table's "
                         f"(columns: {list(labelled.columns)})")  # fmt: skip
    ids = table.df[table.key] if table.key else pd.Series(np.arange(len(table)), index=table.df.index)
    unknown = set(labelled[key]) - set(ids)
    if unknown:
        raise QueryError(f"labels file {source}: {len(unknown)} rows match no row of table '{table.name}' "
                         f"(e.g. {sorted(map(str, unknown))[:3]})")  # fmt: skip
    out = {}
    for f in query.filters:
        column = f.label.column
        if column not in labelled.columns:
            raise QueryError(f"labels file {source}: no column '{column}' (the label of filter "
                             f"'{f.template.text}'); columns: {list(labelled.columns)}")  # fmt: skip
        by_id = labelled.set_index(key)[column]
        values = ids.map(by_id)
        out[f.template.text] = _with_unlabelled(f.label, pd.DataFrame({column: values}))
    if not np.isfinite(np.array(list(out.values()))).all(axis=0).any():
        raise QueryError(f"labels file {source}: no row is labelled for every filter")
    return out


def labelled_sample(drawn: np.ndarray, truth: dict[str, np.ndarray], query: Query, source: str) -> np.ndarray | None:
    """The sample when not every row is labelled for every filter (else None: the `drawn` sample): a labels
    file's rows (what a user labelled is the sample), or the drawn rows whose label cells are all filled."""
    if not query.filters:
        return None
    known = np.isfinite(np.array([truth[f.template.text] for f in query.filters])).all(axis=0)
    if known.all():
        return None
    return drawn[known[drawn]] if source == COLUMN else np.flatnonzero(known)


def _with_unlabelled(label: LabelSpec, df: pd.DataFrame) -> np.ndarray:
    """A filter's truth as 1.0 / 0.0, NaN where it is unknown (nobody labelled the row, `LabelSpec.known`)."""
    return np.where(label.known(df).to_numpy(), label.truth(df).to_numpy(dtype=float), np.nan)


def _values(cells: pd.Series, categorical: bool) -> np.ndarray:
    """An extract's true values as an operator's answers are stored: text (a whole number without its ".0", a
    category lowercased), None where the cell is empty (the document does not say)."""

    def answer(value: object) -> str | None:
        if pd.isna(value):
            return None
        number = as_number(value)
        if number is not None and number.is_integer():
            return str(int(number))
        return str(value).lower() if categorical else str(value)

    return np.array([answer(v) for v in cells], dtype=object)
