"""Seeded random queries from a workload's predicates, in the paper's shapes (2 filters; 1 filter + 1 extract; ...).

The paper draws random chains of 2-4 semantic operators from each dataset's predicate list. A query here is
a conjunction of distinct filters plus distinct extracts; `generate` lists every query of the requested
shapes, shuffles them with the seed and returns the first `count`, so query i of (workload, shapes, seed) is
the same everywhere. `queries_by_shape` draws the paper's shapes one by one (each a `generate` of that shape).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from stretto.errors import QueryError
from stretto.plan.query import Query
from stretto.plan.workload import Workload

#: The paper's query shapes as (filters, extracts) per query: 1F1E, 2F, 1F2E, 2F1E, 1F3E, 2F2E, 0F2E.
PAPER_SHAPES: tuple[tuple[int, int], ...] = ((1, 1), (2, 0), (1, 2), (2, 1), (1, 3), (2, 2), (0, 2))


def shape_name(filters: int, extracts: int) -> str:
    """'2F1E' for 2 filters and 1 extract; '2F' without extracts."""
    return f"{filters}F{extracts}E" if extracts else f"{filters}F"


def generate(
    workload: Workload,
    filters_per_query: Sequence[int],
    count: int,
    seed: int,
    extracts_per_query: Sequence[int] = (0,),
) -> list[Query]:
    """`count` distinct queries with the given numbers of filters and extracts, in a seeded random order."""
    pool = workload.conjunctions(filters_per_query, extracts_per_query)
    if not 1 <= count <= len(pool):
        raise QueryError(
            f"asked for {count} queries of {list(filters_per_query)} filters and {list(extracts_per_query)} "
            f"extracts, but the workload's predicates make {len(pool)} distinct ones"
        )
    order = np.random.default_rng(seed).permutation(len(pool))
    return [pool[i] for i in order[:count]]


def generated_query(
    workload: Workload,
    filters_per_query: Sequence[int],
    count: int,
    seed: int,
    index: int,
    extracts_per_query: Sequence[int] = (0,),
) -> Query:
    """Query `index` of the seeded list (the unit a sweep iterates over)."""
    queries = generate(workload, filters_per_query, count, seed, extracts_per_query)
    if not 0 <= index < len(queries):
        raise QueryError(f"query.index={index} is outside the {len(queries)} generated queries (0..{count - 1})")
    return queries[index]


def queries_by_shape(
    workload: Workload,
    shapes: Sequence[tuple[int, int]] = PAPER_SHAPES,
    per_shape: int = 10,
    seed: int = 42,
) -> dict[str, list[Query]]:
    """Up to `per_shape` seeded queries of each shape, by shape name; a shape needing more filters or extracts
    than the workload has is left out (ecommerce's one filter makes no 2-filter shape)."""
    out = {}
    for filters, extracts in shapes:
        possible = math.comb(len(workload.filters), filters) * math.comb(len(workload.extracts), extracts)
        if possible:
            out[shape_name(filters, extracts)] = generate(
                workload, [filters], min(per_shape, possible), seed, [extracts]
            )
    return out


def describe(query: Query) -> str:
    """'F1 AND F2 EXTRACT E1 EXTRACT E2'; a query without filters starts with 'EXTRACT'."""
    text = " AND ".join(f.template.text for f in query.filters)
    for e in query.extracts:
        text = f"{text} EXTRACT {e.template.text}".lstrip()
    return text
