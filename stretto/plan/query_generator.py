"""Seeded random queries from a workload's predicates, in the paper's shapes (conjunctions of k filters).

The paper draws random chains of 2-4 semantic operators from each dataset's predicate list. A query here is
a conjunction of distinct filters; `generate` lists every conjunction of the requested sizes, shuffles them
with the seed and returns the first `count`, so query i of (workload, shapes, seed) is the same everywhere.
(Extract shapes, "1 filter + 1 extract", arrive with semantic extract.)
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from stretto.errors import QueryError
from stretto.plan.query import Query
from stretto.plan.workload import Workload


def generate(workload: Workload, filters_per_query: Sequence[int], count: int, seed: int) -> list[Query]:
    """`count` distinct conjunctions with the given numbers of filters, in a seeded random order."""
    pool = workload.conjunctions(filters_per_query)
    if not 1 <= count <= len(pool):
        raise QueryError(
            f"asked for {count} queries of {list(filters_per_query)} filters, but the workload's "
            f"{len(workload.filters)} predicates make {len(pool)} distinct ones"
        )
    order = np.random.default_rng(seed).permutation(len(pool))
    return [pool[i] for i in order[:count]]


def generated_query(workload: Workload, filters_per_query: Sequence[int], count: int, seed: int, index: int) -> Query:
    """Query `index` of the seeded list (the unit a sweep iterates over)."""
    queries = generate(workload, filters_per_query, count, seed)
    if not 0 <= index < len(queries):
        raise QueryError(f"query.index={index} is outside the {len(queries)} generated queries (0..{count - 1})")
    return queries[index]


def describe(query: Query) -> str:
    return " AND ".join(f.template.text for f in query.filters)
