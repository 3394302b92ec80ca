"""Runs a multi-table pipeline: relational steps, then blocking, then one jointly optimized semantic block.

A semantic join cannot ask an LLM about all n x m pairs, so blocking proposes candidates (each left row's k
nearest right rows by MiniLM embedding, or the rows sharing a key) and the pair predicate is a filter over
them like any other. What blocking misses caps recall, so it is bounded and charged: for a seeded sample of
left rows the gold operator also answers the pairs ranked k..window, the share of its positives found
inside the top k gives a Beta lower bound B at confidence 1 - (1 - alpha) / 2, and the plan must certify
recall / B at the same confidence (a union bound: both hold with probability >= alpha). Precision, which
blocking cannot lower, keeps confidence alpha (Targets.recall_alpha). Pairs beyond the window are taken as
non-matches; the restaurants benchmark measures how often that is wrong.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, replace

import numpy as np
import pandas as pd

from stretto.data.table import Table
from stretto.engine.query import Optimizer, QueryRun, run_query
from stretto.execution.cascade_executor import OperatorSource
from stretto.operators.blocking import (
    Candidates,
    blocking_recall_bound,
    clustered_recall_lower,
    key_pairs,
    text_of,
    top_k_pairs,
)
from stretto.operators.family import FamilySpec
from stretto.plan.pipeline import Pipeline, SemJoin
from stretto.plan.query import Query, SemExtract, SemFilter
from stretto.plan.relational import Join, Limit, Project, Where
from stretto.plan.targets import Targets
from stretto.profiling.profile import ProfileStore, answers
from stretto.profiling.sample import profiling_sample


@dataclass(frozen=True)
class BlockingReport:
    candidates: int  # pairs the semantic block sees
    all_pairs: int  # n x m
    audited_rows: int  # left rows whose window the gold operator answered
    found: int  # gold positives inside the top k of those rows
    missed: int  # gold positives ranked k..window
    recall_lower: float  # B, at confidence 1 - (1 - alpha) / 2 (over rows when matches share a left row)
    seconds: float  # wall seconds of blocking: embedding + the audit (whose answers may come from the store)
    audit_operator_seconds: float  # the audit's gold answers as measured (counted as profiling)
    embedding_seconds: float = 0.0
    window: int = 0  # pairs ranked beyond it are taken as non-matches (an assumption, not bounded); 0: a key join
    shared_rows: int = 0  # audited left rows with more than one gold positive in their window

    @property
    def assumption(self) -> str:
        """What the recall bound takes for granted, in the words a result should carry."""
        if not self.window:
            return "a relational key: nothing is missed"
        beyond = f"pairs ranked beyond the top {self.window} of each left row are taken as non-matches (not bounded)"
        if not self.shared_rows:  # each positive is its own sampled left row: the pairs are the draws
            return beyond
        return (
            f"{beyond}; {self.shared_rows} audited left rows hold several matches (pairs are sampled in clusters "
            "by left row), so the recall bound counts rows, not pairs (a betting bound)"
        )


@dataclass(frozen=True)
class PipelineRun:
    result: pd.DataFrame
    run: QueryRun  # the semantic block
    relation: Table  # what the semantic block ran on (the candidate pairs for a semantic join)
    blocking: BlockingReport | None
    relational_seconds: float


def qualified(table: Table, alias: str) -> pd.DataFrame:
    return table.df.rename(columns={c: f"{alias}.{c}" for c in table.df.columns}).reset_index(drop=True)


def pair_relation(left: pd.DataFrame, right: pd.DataFrame, candidates: Candidates) -> pd.DataFrame:
    pairs = pd.concat(
        [left.iloc[candidates.left].reset_index(drop=True), right.iloc[candidates.right].reset_index(drop=True)],
        axis=1,
    )
    return pairs.assign(_left=candidates.left, _right=candidates.right, _rank=candidates.rank)


def embed_sides(
    join: SemJoin, left: pd.DataFrame, right: pd.DataFrame, embedder, *, progress: bool = True
) -> tuple[np.ndarray, np.ndarray]:
    """Each side's rows embedded by the columns the join's template reads (qualified `alias.column` frames)."""
    return tuple(
        embedder.encode(text_of(df, [f"{alias}.{c}" for c in join.side_columns(alias)]), progress=progress)
        for df, alias in ((left, join.left_alias), (right, join.right_alias))
    )


def block(
    join: SemJoin,
    left: pd.DataFrame,
    right: pd.DataFrame,
    source: OperatorSource,
    family: FamilySpec,
    *,
    alpha: float,
    sample_fraction: float,
    seed: int,
    store: ProfileStore | None = None,
    embedder=None,
    progress: bool = True,
) -> tuple[pd.DataFrame, BlockingReport]:
    """The candidate pairs and what blocking's recall is known to be."""
    began = time.perf_counter()
    all_pairs = len(left) * len(right)
    if join.on is not None:  # a relational key: exact, nothing missed
        candidates = _key_candidates(join, left, right)
        report = BlockingReport(len(candidates), all_pairs, 0, 0, 0, 1.0, time.perf_counter() - began, 0.0)
        return pair_relation(left, right, candidates), report
    left_vectors, right_vectors = embed_sides(join, left, right, _embedder(embedder), progress=progress)
    embedding_seconds = time.perf_counter() - began
    window = top_k_pairs(left_vectors, right_vectors, join.window)
    audited = profiling_sample(len(left), sample_fraction, seed)
    in_audit = np.isin(window.left, audited)
    audit_pairs = pair_relation(left, right, _subset(window, in_audit))
    gold_answers = answers(audit_pairs, source.operator(join.template, family.gold_identity), store, progress=progress)
    positive, inside = gold_answers["score"].to_numpy() > 0.0, audit_pairs["_rank"].to_numpy() < join.k
    row = np.searchsorted(audited, audit_pairs["_left"].to_numpy())  # each pair's audited left row
    found_per_row = np.bincount(row, weights=positive & inside, minlength=len(audited))
    matches_per_row = np.bincount(row, weights=positive, minlength=len(audited))
    found = int(found_per_row.sum())
    missed = int(matches_per_row.sum()) - found
    shared_rows = int((matches_per_row > 1).sum())
    if shared_rows:  # pairs were drawn in clusters (by left row): the row is the draw
        bound = clustered_recall_lower(found_per_row, matches_per_row, len(left), alpha, join.window, seed=seed)
    else:
        bound = blocking_recall_bound(found, missed, alpha) if found + missed else 0.0
    candidates = _subset(window, window.rank < join.k)
    report = BlockingReport(
        len(candidates), all_pairs, len(audited), found, missed, bound, time.perf_counter() - began,
        float(gold_answers["seconds"].sum()), embedding_seconds, join.window, shared_rows,
    )  # fmt: skip
    return pair_relation(left, right, candidates), report


def _subset(c: Candidates, keep: np.ndarray) -> Candidates:
    return Candidates(c.left[keep], c.right[keep], c.similarity[keep], c.rank[keep])


def _key_candidates(join: SemJoin, left: pd.DataFrame, right: pd.DataFrame) -> Candidates:
    return key_pairs(left, right, f"{join.left_alias}.{join.on[0]}", f"{join.right_alias}.{join.on[1]}")


def _embedder(embedder):
    if embedder is None:
        from stretto.operators.embedding import Embedder

        embedder = Embedder()
    return embedder


def join_candidates(join: SemJoin, left: Table, right: Table, embedder=None, *, progress: bool = True) -> pd.DataFrame:
    """The candidate pairs blocking proposes for a semantic join (each left row's k nearest right rows by
    embedding, or the rows sharing the join's key), as the relation its pair predicate reads: both sides'
    columns as `alias.column`, without the audit of what blocking missed."""
    lq, rq = qualified(left, join.left_alias), qualified(right, join.right_alias)
    if join.on is not None:
        return pair_relation(lq, rq, _key_candidates(join, lq, rq))
    vectors = embed_sides(join, lq, rq, _embedder(embedder), progress=progress)
    return pair_relation(lq, rq, top_k_pairs(*vectors, join.k))


def run_pipeline(
    pipeline: Pipeline,
    tables: Mapping[str, Table],
    source: OperatorSource,
    family: FamilySpec,
    targets: Targets,
    optimizer: Optimizer,
    *,
    sample_fraction: float = 0.15,
    seed: int = 0,
    store: ProfileStore | None = None,
    embedder=None,
    progress: bool = True,
) -> PipelineRun:
    """Relational steps first, then blocking (if a semantic join), then the semantic block, then project/limit."""
    pipeline.check({name: list(t.df.columns) for name, t in tables.items()})
    began = time.perf_counter()
    join = pipeline.sem_join_step
    frames = {name: t.df for name, t in tables.items()}
    relation = qualified(tables[pipeline.table], pipeline.name) if join else tables[pipeline.table].df
    blocking, block_targets, late = None, targets, []
    for step in pipeline.steps:
        if isinstance(step, Where | Join):
            relation = step.apply(relation, frames)
        elif isinstance(step, Project | Limit):
            late.append(step)
        elif isinstance(step, SemJoin):
            block_targets = replace(targets, recall_alpha=1.0 - (1.0 - targets.recall_confidence) / 2)
            right = qualified(tables[step.right], step.right_alias)
            relation, blocking = block(
                step, relation.reset_index(drop=True), right, source, family, alpha=block_targets.recall_alpha,
                sample_fraction=sample_fraction, seed=seed, store=store, embedder=embedder, progress=progress,
            )  # fmt: skip
    relational_seconds = time.perf_counter() - began - (blocking.seconds if blocking else 0.0)
    filters = [s for s in pipeline.steps if isinstance(s, SemFilter)]
    if join:
        filters.insert(0, SemFilter(join.template))
    extracts = [s for s in pipeline.steps if isinstance(s, SemExtract)]
    columns = sorted({c for s in (*filters, *extracts) for c in s.template.columns})
    table = Table(pipeline.name, relation.reset_index(drop=True), text_columns=columns)
    run = run_query(
        table, Query(table.name, tuple(filters), tuple(extracts)), source, family, block_targets, optimizer,
        sample_fraction=sample_fraction, seed=seed, store=store, progress=progress,
        upstream_recall=blocking.recall_lower if blocking else 1.0,
    )  # fmt: skip
    if blocking:  # the audit's gold answers are profiling work
        run = replace(run, profile_seconds=run.profile_seconds + blocking.audit_operator_seconds)
    result = run.execution.result
    for step in late:
        result = step.apply(result, frames)
    return PipelineRun(result, run, table, blocking, relational_seconds)
