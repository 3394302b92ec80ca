"""A workload: the predicates a benchmark draws its queries from (conf/workload/*.yaml)."""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from stretto.errors import QueryError
from stretto.plan.query import Query, SemFilter


@dataclass(frozen=True)
class Workload:
    dataset: str
    table: str
    filters: tuple[SemFilter, ...]

    @classmethod
    def of(cls, config: Mapping[str, Any]) -> Workload:
        for key in ("dataset", "table", "filters"):
            if key not in config:
                raise QueryError(f"a workload needs '{key}' (dataset, table, filters: [{{template, label}}])")
        filters = tuple(SemFilter.of(f["template"], f.get("label")) for f in config["filters"])
        return cls(config["dataset"], config["table"], filters)

    def conjunctions(self, sizes: Sequence[int]) -> list[Query]:
        """Every conjunction of `size` distinct predicates, for each size, in a fixed order."""
        if any(not 1 <= k <= len(self.filters) for k in sizes):
            raise QueryError(
                f"query sizes {list(sizes)} must lie in 1..{len(self.filters)} (the workload's predicates)"
            )
        return [Query(self.table, combo) for k in sizes for combo in itertools.combinations(self.filters, k)]
