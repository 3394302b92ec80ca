"""A workload: the predicates a benchmark draws its queries from (conf/workload/*.yaml)."""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from stretto.errors import QueryError
from stretto.plan.query import Query, SemExtract, SemFilter


@dataclass(frozen=True)
class Workload:
    dataset: str
    table: str
    filters: tuple[SemFilter, ...]
    extracts: tuple[SemExtract, ...] = ()

    @classmethod
    def of(cls, config: Mapping[str, Any]) -> Workload:
        for key in ("dataset", "table", "filters"):
            if key not in config:
                raise QueryError(f"a workload needs '{key}' (dataset, table, filters: [{{template, label}}])")
        filters = tuple(SemFilter.of(f["template"], f.get("label")) for f in config["filters"])
        extracts = tuple(SemExtract.of(e["template"], e.get("label")) for e in config.get("extracts") or [])
        return cls(config["dataset"], config["table"], filters, extracts)

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
