"""Systems that choose which rows to label as they go, over the whole table: LOTUS and BARGAIN as their authors
run them (a proxy scored on every row, the oracle called on the rows the method picks).

Per filter, in the query's order, on the rows every earlier filter kept: the proxy scores every row; the system
asks the gold operator (its oracle) about the rows it chooses and sets the proxy's two thresholds; that cascade
(proxy, then gold on the rows in between) runs through the one executor, every bought label answering its row
(as the profiling sample's labels do for Stretto). Extracts then run on the gold extractor over the rows kept.

Charges (DESIGN.md section 7): the oracle's answers are the run's labels (profile seconds, each row once, at the
gold operator's measured seconds); the proxy on every row and gold on the unlabelled rows in between are
execution; the system's own arithmetic is optimization.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import Any, Protocol

import numpy as np
import pandas as pd

from stretto.data.table import Table
from stretto.engine.record import QueryRun
from stretto.execution.cascade_executor import OperatorSource, PlanExecution, StepStats, execute_plan
from stretto.optimizer.physical_plan import Cascade, PhysicalPlan, Step
from stretto.plan.query import Query
from stretto.plan.targets import Targets
from stretto.plan.template import Template
from stretto.profiling.operator import CandidateOperator, ScoredRows
from stretto.profiling.profile import Profile, row_keys
from stretto.progress import phase


class TableSystem(Protocol):
    """A system that labels rows of the table as it goes (see the module's docstring)."""

    name: str

    def proxy(self, identities: Sequence[str], gold: str) -> str: ...

    def table_thresholds(
        self,
        scores: np.ndarray,  # the proxy's log-odds on this filter's rows
        oracle: Callable[[np.ndarray], np.ndarray],  # positions into `scores` -> gold decisions (labels bought)
        targets: Targets,  # the query's
        filters: int,  # how many filters share them
        index: int,  # this filter's place among them
    ) -> tuple[float, float, dict[str, Any]]: ...  # (lower, upper) on the proxy's scores, notes for the plan


def labels_as_it_goes(optimizer: object) -> bool:
    return callable(getattr(optimizer, "table_thresholds", None))


class _Oracle:
    """The gold operator on the rows a system picks: each row asked once; its answers and seconds are kept."""

    def __init__(self, operator: CandidateOperator, rows: pd.DataFrame, template: Template, gold: str) -> None:
        self.operator, self.rows, self.template, self.gold = operator, rows, template, gold
        self.keys = row_keys(rows, template)
        self.said: dict[int, float] = {}  # position -> the gold operator's score
        self.bought: list[Profile] = []
        self.seconds = 0.0  # charged: the gold operator's measured seconds on the rows bought
        self.waited = 0.0  # wall time spent in the gold operator (not the system's own time)

    def __call__(self, positions: np.ndarray) -> np.ndarray:
        positions = np.asarray(positions, dtype=np.int64).reshape(-1)
        new = np.array(sorted(set(positions.tolist()) - set(self.said)), dtype=np.int64)
        if len(new):
            began = time.perf_counter()
            scored = self.operator.score(self.rows.iloc[new], progress=False)
            self.waited += time.perf_counter() - began
            self.seconds += float(scored.seconds.sum())
            self.bought.append(Profile.of_scores(self.keys[new], self.template, self.gold, scored))
            self.said.update(zip(new.tolist(), scored.scores.tolist(), strict=True))
        return np.array([self.said[p] > 0.0 for p in positions.tolist()], dtype=bool)


class _Measured:
    """An operator whose answers on these rows were already measured (and charged: the proxy ran on every row,
    whichever of them the executor then asks): the executor gets them again at no cost, not a second run."""

    def __init__(self, operator: CandidateOperator, rows: pd.DataFrame, scored: ScoredRows) -> None:
        self.template, self._identity, self.scored = operator.template, operator.identity, scored
        self.position = {key: i for i, key in enumerate(row_keys(rows, operator.template))}

    @property
    def identity(self) -> str:
        return self._identity

    def score(self, rows: pd.DataFrame, *, progress: bool = True) -> ScoredRows:
        at = np.array([self.position[key] for key in row_keys(rows, self.template)], dtype=np.int64)
        s = self.scored
        values = None if s.values is None else tuple(s.values[i] for i in at)
        return ScoredRows(s.scores[at], np.zeros(len(at)), np.zeros(len(at), np.int64), 0, values)


class _WithMeasured:
    def __init__(self, source: OperatorSource, measured: _Measured) -> None:
        self.source, self.measured = source, measured

    def operator(self, template: Template, identity: str) -> CandidateOperator:
        m = self.measured
        if template.text == m.template.text and identity == m.identity:
            return m
        return self.source.operator(template, identity)


def _with_proxy_charged(stats: Sequence[StepStats], cascade: Cascade, scored: ScoredRows) -> list[StepStats]:
    """The cascade's step stats with the proxy charged for every row it scored (the executor saw it free)."""
    proxy = cascade.steps[0].operator
    charged = {"tuples": len(scored.scores), "seconds": float(scored.seconds.sum()), "tokens": int(scored.tokens.sum())}
    out = [replace(s, **charged) if s.operator == proxy else s for s in stats]
    if not any(s.operator == proxy for s in stats):  # every row was decided by a bought label
        out.insert(0, StepStats(cascade.template, proxy, kept=0, discarded=0, to_gold=0, **charged))
    return out


def _plan(cascades: Sequence[Cascade], system: str = "stretto", **fields: Any) -> PhysicalPlan:
    nan = math.nan
    return PhysicalPlan(tuple(cascades), nan, nan, nan, nan, system=system, **fields)


def run_on_table(
    table: Table,
    query: Query,
    source: OperatorSource,
    gold: str,
    identities: Sequence[str],
    targets: Targets,
    system: TableSystem,
    *,
    seed: int = 0,
    progress: bool = True,
) -> QueryRun:
    """The query answered by a system that labels the table as it goes; a QueryRun like every system's (its
    sample: the rows it labelled for some filter; problem None: it optimized no sampled problem)."""
    began = time.perf_counter()
    proxy = system.proxy(identities, gold)
    n = len(table)
    alive = np.ones(n, dtype=bool)
    cascades, notes, stats, scores, bought = [], {}, [], [], []
    labelled = np.zeros(n, dtype=bool)
    label_seconds = think_seconds = execution_seconds = 0.0
    for i, f in enumerate(query.filters):
        part = np.flatnonzero(alive)
        decided = np.full(n, np.nan, dtype=np.float32)
        if not len(part):  # every row is out already
            cascades.append(Cascade.gold_only(f.template.text, gold))
            scores.append(decided)
            continue
        rows = replace(table, df=table.df.iloc[part])
        with phase(f"{system.name}: proxy {proxy} on {len(part)} rows"):
            measured = _Measured(
                source.operator(f.template, proxy), rows.df,
                source.operator(f.template, proxy).score(rows.df, progress=progress),
            )  # fmt: skip
        oracle = _Oracle(source.operator(f.template, gold), rows.df, f.template, gold)
        thinking = time.perf_counter()
        lower, upper, note = system.table_thresholds(
            measured.scored.scores.astype(np.float64), oracle, targets, len(query.filters), i
        )
        think_seconds += time.perf_counter() - thinking - oracle.waited
        cascade = Cascade(f.template.text, (Step(proxy, lower, upper),), gold)
        cascades.append(cascade)
        notes[f.template.text] = {**note, "labels": len(oracle.said)}
        run = execute_plan(
            rows, _plan([cascade]), _WithMeasured(source, measured), answers=Profile.concat(oracle.bought),
            seed=seed, progress=progress,
        )  # fmt: skip
        alive[part] = run.kept
        labelled[part[list(oracle.said)]] = True
        decided[part] = run.scores[0]
        scores.append(decided)
        stats.extend(_with_proxy_charged(run.stats, cascade, measured.scored))
        execution_seconds += run.seconds + float(measured.scored.seconds.sum())
        label_seconds += oracle.seconds
        bought.extend(oracle.bought)
    result = table.df[alive]
    extracts = [Cascade.gold_only(e.template.text, gold) for e in query.extracts]
    scores.extend(np.full(n, np.nan, dtype=np.float32) for _ in extracts)
    if extracts and alive.any():
        kept = np.flatnonzero(alive)
        run = execute_plan(
            replace(table, df=table.df.iloc[kept]), _plan(extracts), source, seed=seed, progress=progress
        )
        result, execution_seconds = run.result, execution_seconds + run.seconds
        stats.extend(run.stats)
        for k, decided in enumerate(run.scores):
            scores[len(query.filters) + k][kept] = decided
    plan = _plan(
        [*cascades, *extracts],
        system.name,
        notes={"proxy": proxy, "per_filter": notes, "labels": sum(note["labels"] for note in notes.values())},
        bounds="per filter, by the system's own rule (not an end-to-end bound)",
    )
    execution = PlanExecution(
        result=result,
        kept=alive,
        stats=tuple(stats),
        seconds=execution_seconds,
        wall_seconds=time.perf_counter() - began,
        rows_in=n,
        sample_rows=int(labelled.sum()),
        scores=tuple(scores),
    )
    return QueryRun(
        plan, execution, np.flatnonzero(labelled), Profile.concat(bought), None, label_seconds, think_seconds
    )
