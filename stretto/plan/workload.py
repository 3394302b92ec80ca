"""A workload: the predicates a benchmark draws its queries from (conf/workload/*.yaml).

A multi-table workload also names the relational joins that build the relation its predicates read (rotowire:
teams -> teams_to_games on name -> reports on game_id); each drawn query then runs as that pipeline. A workload may
read a seeded sample of that relation's groups (rotowire players: every pair of some games), when recording the
whole relation costs more CPU than the benchmark needs.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from stretto.data.table import Table
from stretto.errors import QueryError
from stretto.plan.pipeline import Pipeline
from stretto.plan.query import Query, SemExtract, SemFilter
from stretto.plan.relational import Join


@dataclass(frozen=True)
class GroupSample:
    """Every row of `count` distinct values of column `by`, drawn with `seed` (rows keep their order): a sample of
    whole groups, so each sampled game's report still answers every one of its pairs (one KV cache per game)."""

    by: str
    count: int
    seed: int = 0

    @classmethod
    def of(cls, config: Mapping[str, Any]) -> GroupSample:
        unknown = set(config) - {"by", "count", "seed"}
        if unknown or "by" not in config or "count" not in config:
            raise QueryError(
                f"a workload's sample is {{by: <column>, count: <groups>, seed: <int>}}; got {dict(config)}"
            )
        if int(config["count"]) < 1:
            raise QueryError(f"a workload's sample needs count >= 1 group; got {config['count']}")
        return cls(str(config["by"]), int(config["count"]), int(config.get("seed", 0)))

    def apply(self, frame: pd.DataFrame) -> pd.DataFrame:
        if self.by not in frame.columns:
            raise QueryError(f"the workload samples by column '{self.by}', which the relation lacks: {list(frame)}")
        groups = np.sort(frame[self.by].dropna().unique())
        if self.count > len(groups):
            raise QueryError(f"the workload samples {self.count} values of '{self.by}'; the relation has {len(groups)}")
        kept = np.random.default_rng(self.seed).choice(groups, size=self.count, replace=False)
        return frame[frame[self.by].isin(kept)]


@dataclass(frozen=True)
class Workload:
    dataset: str
    table: str
    filters: tuple[SemFilter, ...]
    extracts: tuple[SemExtract, ...] = ()
    joins: tuple[Join, ...] = ()  # relational equi-joins from `table`, run before the semantic operators
    sample: GroupSample | None = None  # the relation's rows: a seeded sample of its groups (None: all of them)

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
        sample = GroupSample.of(config["sample"]) if config.get("sample") else None
        return cls(config["dataset"], config["table"], filters, extracts, joins, sample)

    def relation(self, tables: Mapping[str, Table]) -> Table:
        """The table the predicates read: `table` itself, or with joins the joined relation (named `table`), whose
        text columns are the ones the predicates read and whose label columns are the labels they name; with a
        sample, only the sampled groups' rows."""
        if self.table not in tables:
            raise QueryError(f"workload starts from unknown table '{self.table}'; tables: {sorted(tables)}")
        if not self.joins and self.sample is None:
            return tables[self.table]
        frames = {name: table.df for name, table in tables.items()}
        frame = frames[self.table]
        for join in self.joins:
            frame = join.apply(frame, frames)
        if self.sample is not None:
            frame = self.sample.apply(frame)
        operators = (*self.filters, *self.extracts)
        text = sorted({column for op in operators for column in op.template.columns})
        labels = [op.label.column if isinstance(op, SemFilter) else op.label for op in operators if op.label]
        return Table(
            self.table, frame.reset_index(drop=True), text_columns=text, label_columns=list(dict.fromkeys(labels))
        )

    def pipeline(self, query: Query) -> Pipeline:
        """The query as a pipeline over the dataset's tables: the workload's joins, then its semantic operators (over
        every joined row: a pipeline has no sample step)."""
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
