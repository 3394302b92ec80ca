"""Runs a physical plan: tuples flow through each cascade, and only UNSURE tuples reach the next operator.

Cascades run in the plan's order, each on the tuples every earlier cascade kept. Inside a cascade each
cheap operator scores the tuples still unsure (in batches, by its backend), keeps those above its upper
threshold and discards those below its lower one; a random fraction of those accepts / discards
(the plan's forcing fractions, drawn from `seed`) goes to the gold operator with the still-unsure
rest. Tuples of the profiling sample are not scored again: the gold operator's recorded answers
decide them, at no cost; so do the tuples whose gold answer a system bought for one template
(`answers`: the labels a whole-table system chose, e.g. BARGAIN's), at that template's cascade.
An extract's cascade never discards: a cheap extractor's value is final when its confidence is
above the upper threshold, and the gold extractor fills in the rest; the values land in the
result under the template's [output] column.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Protocol

import numpy as np
import pandas as pd

from stretto.data.table import Table
from stretto.optimizer.physical_plan import PhysicalPlan, forcing_shares, gold_share, run_steps
from stretto.plan.template import ExtractTemplate, Template, parse_template
from stretto.profiling.operator import CandidateOperator
from stretto.profiling.profile import Profile, row_keys
from stretto.progress import phase


class OperatorSource(Protocol):
    def operator(self, template: Template, identity: str) -> CandidateOperator: ...


@dataclass(frozen=True)
class StepStats:
    """What one operator of one cascade did."""

    template: str
    operator: str
    tuples: int
    kept: int
    discarded: int
    to_gold: int  # forced accepts/discards and, for the gold step, 0
    seconds: float
    tokens: int = 0  # prompt tokens the operator read


@dataclass(frozen=True)
class PlanExecution:
    result: pd.DataFrame  # the kept rows, with one column per extract
    kept: np.ndarray  # (rows,) bool
    stats: tuple[StepStats, ...]
    seconds: float  # operator seconds (measured by the backends; recorded ones for replay)
    wall_seconds: float
    rows_in: int
    sample_rows: int  # rows answered from the profile
    # per cascade, in plan order: each row's score from the operator that decided it (NaN for rows the cascade
    # never saw or answered from the profile)
    scores: tuple[np.ndarray, ...] = ()

    def tuples_per_operator(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for s in self.stats:
            out[s.operator] = out.get(s.operator, 0) + s.tuples
        return out


def execute_plan(
    table: Table,
    plan: PhysicalPlan,
    source: OperatorSource,
    *,
    sample: np.ndarray | None = None,
    profile: Profile | None = None,
    seed: int = 0,
    progress: bool = True,
    answers: Profile | None = None,
) -> PlanExecution:
    began = time.perf_counter()
    n = len(table)
    in_sample = np.zeros(n, dtype=bool)
    if sample is not None and len(sample):
        if profile is None:
            raise ValueError("sample rows are answered from their profile: pass the profile too")
        in_sample[sample] = True
    rng = np.random.default_rng(seed)
    alive = np.ones(n, dtype=bool)
    stats: list[StepStats] = []
    decided_by: list[np.ndarray] = []
    extracted: dict[str, np.ndarray] = {}
    for cascade in plan.cascades:
        template = parse_template(cascade.template)
        is_extract = isinstance(template, ExtractTemplate)
        keep = np.zeros(n, dtype=bool)
        values = np.full(n, None, dtype=object)
        scores = np.full(n, np.nan, dtype=np.float32)
        known = np.flatnonzero(alive & in_sample)
        if len(known):
            keys = row_keys(table.df.iloc[known], template)
            # A gold label left unasked (an earlier filter's gold label said no: the row is out of the answer
            # whatever this one says) discards the row here too.
            recorded = profile.lookup(keys, template, cascade.gold, partial=True)
            keep[known] = is_extract or recorded["score"].to_numpy() > 0.0
            values[known] = [v if isinstance(v, str) else None for v in recorded["value"]]
        decided = alive & in_sample
        if answers is not None and (answers.records["operator"] == cascade.gold).any():
            rest = np.flatnonzero(alive & ~in_sample)
            bought = answers.lookup(row_keys(table.df.iloc[rest], template), template, cascade.gold, partial=True)
            has = ~np.isnan(bought["score"].to_numpy(dtype=float))
            rows = rest[has]
            keep[rows] = is_extract or bought["score"].to_numpy()[has] > 0.0
            values[rows] = [v if isinstance(v, str) else None for v in bought["value"].to_numpy()[has]]
            decided[rows] = True
        draws = rng.random((2, n))
        scored_by: list = []

        def scores_of(k, rows, cascade=cascade, template=template, values=values, scores=scores, scored_by=scored_by):
            """Step k scores the rows still unsure (in batches, by its backend)."""
            operator = cascade.steps[k].operator
            with phase(f"executing {operator}"):
                scored = source.operator(template, operator).score(table.df.iloc[rows], progress=progress)
            scores[rows] = scored.scores
            if isinstance(template, ExtractTemplate):
                values[rows] = scored.values
            scored_by.append(scored)
            return scored.scores

        flow = run_steps(cascade.steps, scores_of, alive & ~decided, is_extract)
        share_a, share_d = forcing_shares(cascade.force_accept, cascade.force_discard, draws)
        cheap_keep, gold_part, _ = gold_share(
            flow.accepted.astype(float), flow.discarded.astype(float), flow.unsure.astype(float), 0.0, share_a, share_d
        )
        keep |= cheap_keep > 0.5
        for k, (reached, scored) in enumerate(zip(flow.reached, scored_by, strict=True)):
            accepted, discarded = flow.accepted & (flow.decided_by == k), flow.discarded & (flow.decided_by == k)
            forced_a, forced_d = int((accepted & (share_a > 0)).sum()), int((discarded & (share_d > 0)).sum())
            stats.append(
                StepStats(
                    cascade.template,
                    cascade.steps[k].operator,
                    int(reached.sum()),
                    int(accepted.sum()) - forced_a,
                    int(discarded.sum()) - forced_d,
                    forced_a + forced_d,
                    float(scored.seconds.sum()),
                    int(scored.tokens.sum()),
                )
            )
        rest = np.flatnonzero(gold_part > 0.5).astype(np.int64)
        if len(rest):
            with phase(f"executing gold {cascade.gold}"):
                scored = source.operator(template, cascade.gold).score(table.df.iloc[rest], progress=progress)
            gold_keep = np.ones(len(rest), dtype=bool) if is_extract else scored.scores > 0.0
            scores[rest] = scored.scores
            keep[rest] = gold_keep
            if is_extract:
                values[rest] = scored.values
            stats.append(
                StepStats(
                    cascade.template,
                    cascade.gold,
                    len(rest),
                    int(gold_keep.sum()),
                    int((~gold_keep).sum()),
                    0,
                    float(scored.seconds.sum()),
                    int(scored.tokens.sum()),
                )
            )
        decided_by.append(scores)
        alive &= keep
        if is_extract:
            extracted[template.output] = values
    result = table.df[alive].assign(**{name: v[alive] for name, v in extracted.items()})
    return PlanExecution(
        result=result,
        kept=alive,
        stats=tuple(stats),
        seconds=sum(s.seconds for s in stats),
        wall_seconds=time.perf_counter() - began,
        rows_in=n,
        sample_rows=int(in_sample.sum()),
        scores=tuple(decided_by),
    )
