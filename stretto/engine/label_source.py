"""Where the profiling sample's labels come from: the gold operator (the default), or the truth a user has.

`gold`: the gold operator labels the sample, and every guarantee is relative to it (gold alone is exact).
`column`: each filter's declared label column (`label: {column, positive}` in the workload or query) holds the
truth on every row; the sample is drawn as usual and answered by it. A CSV path: what a user labelled, keyed by
the table's key column (by 0-based row position, column `row`, when the table has none), one column per filter's
label column; the sample is exactly the rows labelled. With either, the gold operator is one more fallible
operator (its errors on the sample count like any other's), and the certification holds against the labels.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from stretto.data.table import Table
from stretto.errors import QueryError
from stretto.plan.query import Query

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
        if query.extracts:
            raise QueryError(f"profiling.labels={source!r}: labels from another source are for filters only; "
                             "this query has extracts (use profiling.labels=gold)")  # fmt: skip
        unlabelled = [f.template.text for f in query.filters if f.label is None]
        if unlabelled:
            raise QueryError(
                f"profiling.labels={source!r} needs a label column for every filter; none is declared for "
                f"{unlabelled} (set `label: {{column: ..., positive: ...}}` on the filter)"
            )


def sample_truth(table: Table, query: Query, source: str | None) -> dict[str, np.ndarray] | None:
    """Per filter template: the truth on every row (1.0 / 0.0; NaN where nobody labelled the row), or None when
    the gold operator labels the sample."""
    check_label_source(source, query)
    if source in (None, GOLD):
        return None
    if source == COLUMN:
        return {f.template.text: f.label.truth(table.df).to_numpy(dtype=float) for f in query.filters}
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
        truth = f.label.truth(pd.DataFrame({column: values})).to_numpy(dtype=float)
        out[f.template.text] = np.where(values.isna().to_numpy(), np.nan, truth)
    if not np.isfinite(np.array(list(out.values()))).all(axis=0).any():
        raise QueryError(f"labels file {source}: no row is labelled for every filter")
    return out


def labelled_rows(truth: dict[str, np.ndarray]) -> np.ndarray | None:
    """The rows labelled for every filter when not all are (the sample is then exactly those), else None."""
    known = np.isfinite(np.array(list(truth.values()))).all(axis=0)
    return None if known.all() else np.flatnonzero(known)
