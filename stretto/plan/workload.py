"""A workload: the predicates a benchmark draws its queries from (conf/workload/*.yaml).

A multi-table workload also names the relational joins that build the relation its predicates read (rotowire:
teams -> teams_to_games on name -> reports on game_id); each drawn query then runs as that pipeline.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from stretto.data.table import Table
from stretto.errors import QueryError
from stretto.plan.pipeline import Pipeline
from stretto.plan.query import Query, SemExtract, SemFilter
from stretto.plan.relational import Join


@dataclass(frozen=True)
class Workload:
    dataset: str
    table: str
    filters: tuple[SemFilter, ...]
    extracts: tuple[SemExtract, ...] = ()
    joins: tuple[Join, ...] = ()  # relational equi-joins from `table`, run before the semantic operators

    @classmethod
    def of(cls, config: Mapping[str, Any]) -> Workload:
        for key in ("dataset", "table", "filters"):
            if key not in config:
                raise QueryError(f"a workload needs '{key}' (dataset, table, filters: [{{template, label}}])")
        filters = tuple(SemFilter.of(f["template"], f.get("label")) for f in config["filters"])
        extracts = tuple(SemExtract.of(e["template"], e.get("label")) for e in config.get("extracts") or [])
        # Each join as a pipeline's join step ({table, on} or {table, left_on, right_on}), checked the same way.
        pipeline = Pipeline.of({"table": config["table"], "steps": [{"join": j} for j in config.get("joins") or []]})
        joins = tuple(step for step in pipeline.steps if isinstance(step, Join))
        return cls(config["dataset"], config["table"], filters, extracts, joins)

    def relation(self, tables: Mapping[str, Table]) -> Table:
        """The table the predicates read: `table` itself, or with joins the joined relation (named `table`), whose
        text columns are the ones the predicates read and whose label columns are the labels they name."""
        if self.table not in tables:
            raise QueryError(f"workload starts from unknown table '{self.table}'; tables: {sorted(tables)}")
        if not self.joins:
            return tables[self.table]
        frames = {name: table.df for name, table in tables.items()}
        frame = frames[self.table]
        for join in self.joins:
            frame = join.apply(frame, frames)
        operators = (*self.filters, *self.extracts)
        text = sorted({column for op in operators for column in op.template.columns})
        labels = [op.label.column if isinstance(op, SemFilter) else op.label for op in operators if op.label]
        return Table(
            self.table, frame.reset_index(drop=True), text_columns=text, label_columns=list(dict.fromkeys(labels))
        )

    def pipeline(self, query: Query) -> Pipeline:
        """The query as a pipeline over the dataset's tables: the workload's joins, then its semantic operators."""
        return Pipeline(self.table, (*self.joins, *query.filters, *query.extracts))

    def conjunctions(self, sizes: Sequence[int], extract_sizes: Sequence[int] = (0,)) -> list[Query]:
        """Every query of k distinct filters and e distinct extracts, for each size pair, in a fixed order."""
        if any(not 0 <= k <= len(self.filters) for k in sizes):
            raise QueryError(f"filters per query {list(sizes)} must lie in 0..{len(self.filters)} (the workload's)")
        if any(not 0 <= e <= len(self.extracts) for e in extract_sizes):
            raise QueryError(
                f"extracts per query {list(extract_sizes)} must lie in 0..{len(self.extracts)} (the workload's)"
            )
        return [
            Query(self.table, filters, extracts)
            for k in sizes
            for e in extract_sizes
            if k + e > 0
            for filters in itertools.combinations(self.filters, k)
            for extracts in itertools.combinations(self.extracts, e)
        ]
