"""One query end to end: sample -> profile -> optimize -> execute. A plain library call (no Hydra, no MLflow)."""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from math import ceil
from typing import Protocol

import numpy as np
import pandas as pd

from stretto.data.table import Table
from stretto.engine.label_source import labelled_sample, sample_truth
from stretto.engine.on_table import labels_as_it_goes, run_on_table
from stretto.engine.record import QueryRun
from stretto.errors import QueryError
from stretto.execution.cascade_executor import OperatorSource, execute_plan
from stretto.operators.family import FamilySpec
from stretto.operators.learned import LearnedOperator, WithLearned, fit_learned
from stretto.operators.stored_embeddings import EmbeddingTable
from stretto.optimizer.certify import gold_alone
from stretto.optimizer.physical_plan import Cascade, PhysicalPlan
from stretto.optimizer.problem import PlanProblem, operator_sample
from stretto.optimizer.reorder import best_order
from stretto.plan.query import Query
from stretto.plan.targets import Targets
from stretto.plan.template import ExtractTemplate
from stretto.profiling.profile import Profile, ProfileStore, row_keys
from stretto.profiling.sample import profile_rows, profiling_sample, sample_seconds

log = logging.getLogger(__name__)


class EmbeddingSource(Protocol):
    """Stored document embeddings (a recording's, or an EmbeddingStore): None where they were never built."""

    def available(self, rows: pd.DataFrame, columns: Sequence[str]) -> EmbeddingTable | None: ...


class Optimizer(Protocol):
    """Every system (Stretto, its ablations, the baselines) turns the same problem into a physical plan."""

    name: str

    def optimize(self, problem: PlanProblem) -> PhysicalPlan: ...

    # Optional: labels_where_needed = True: the sample's gold labels are asked only where they matter (see
    # gold_labels); a system whose rules judge each filter on its own leaves it unset.
    #
    # Optional: needs_candidates(problem) -> bool, where `problem` holds the sample's gold labels alone (no
    # candidates). False says no plan but gold alone could be certified on these labels, so the cheap operators
    # are not profiled and gold alone answers (lazy profiling). A system without it profiles every operator.
    #
    # Optional: candidates(identities, gold) -> list[str] | None: the operators of the family (gold among them)
    # this system needs profiled on the sample; the problem it optimizes then holds those alone, and only those
    # are charged. None says the system takes no sample at all: the gold operator answers every row, nothing is
    # profiled, and the run's cost is that execution alone. A system without it profiles the whole family.
    #
    # Optional: candidates_with_embeddings(identities, gold): the same, asked instead where every filter's
    # documents have stored embeddings (learned operators will be offered).
    #
    # Optional: tuning_tuples(problem) -> np.ndarray | None: the sample tuples it tunes on and never certifies
    # on. Learned operators are fitted on those tuples' labels and offered to it as candidates (when the
    # documents have stored embeddings); None, or a system without it, gets no learned operators.


def profile_query(
    table: Table,
    query: Query,
    source: OperatorSource,
    family: FamilySpec,
    *,
    sample: np.ndarray,
    store: ProfileStore | None = None,
    progress: bool = True,
    identities: Sequence[str] | None = None,
) -> Profile:
    """The operators' answers on the sample rows: `identities` (default: the whole family) on every filter."""
    rows = table.df.iloc[sample]
    identities = family.identities if identities is None else identities
    operators = [source.operator(f.template, identity) for f in query.operators for identity in identities]
    return profile_rows(rows, operators, store=store, progress=progress)


#: The sample rows labelled on every filter first (a share of the sample, at least a few): their answers choose
#: the order the rest are labelled in. Measured on the movie and Enron conjunctions (scripts/end_to_end.py): a
#: tenth costs more in labels than it saves; much fewer than ten rows misjudge the order.
PILOT_SHARE, PILOT_MIN = 0.05, 10


def gold_labels(
    table: Table,
    query: Query,
    source: OperatorSource,
    gold: str,
    *,
    sample: np.ndarray,
    store: ProfileStore | None = None,
    progress: bool = True,
) -> Profile:
    """The gold operator's answers on the sample where they matter: filters in the order that costs least, each
    asked only on the sample rows where every earlier filter's gold answer is yes, then extracts where all are.
    Elsewhere the row is out of the answer whatever a later operator says: the conjunction's labels are exact,
    and an unasked label counts as "yes" when a plan's outcome is simulated (problem.operator_sample), so a plan
    that could keep such a row is charged a false positive; recall counts are exact and precision counts can
    only be pessimistic. The order: a random pilot of the sample (PILOT_SHARE) is labelled on every filter, and the
    order that is cheapest on it (optimizer.reorder.best_order) labels the rest; a plan's
    filter order, gold alone's included, follows the labels (an unasked "yes" makes a later filter look less
    selective), so a fallback to gold alone runs its filters most selective first, not in the query's order."""
    rows = table.df.iloc[sample]
    filters = [op for op in query.operators if not isinstance(op.template, ExtractTemplate)]
    extracts = [op for op in query.operators if isinstance(op.template, ExtractTemplate)]
    profiles: list[Profile] = []

    def answers(op, where: np.ndarray) -> pd.DataFrame:
        """Gold's answers to `op` on rows[where] (asked now), as the profile's records of every sample row."""
        profiles.append(profile_rows(rows[where], [source.operator(op.template, gold)], store=store,
                                     progress=progress))  # fmt: skip
        return profiles[-1].lookup(row_keys(rows, op.template), op.template, gold, partial=True)

    needed = np.ones(len(rows), dtype=bool)
    pilot = np.zeros(len(rows), dtype=bool)
    if len(filters) > 1:  # drawn (seeded by the sample), not the sorted sample's first rows: a table may be sorted
        drawn = np.random.default_rng(np.asarray(sample)).permutation(len(rows))
        pilot[drawn[: max(PILOT_MIN, ceil(PILOT_SHARE * len(rows)))]] = True
    if pilot.any():
        asked = [answers(f, pilot) for f in filters]
        said = np.array([a["score"].to_numpy()[pilot] > 0.0 for a in asked])
        order, _ = best_order(said.astype(float), np.array([a["seconds"].to_numpy()[pilot] for a in asked]))
        filters = [filters[i] for i in order]
        needed[pilot] = said.all(axis=0)
    for f in filters:
        where = needed & ~pilot
        if where.any():
            needed[where] &= answers(f, where)["score"].to_numpy()[where] > 0.0
    for e in extracts:
        if needed.any():
            answers(e, needed)
    return Profile.concat(profiles)


def plan_problem(
    table: Table,
    query: Query,
    family: FamilySpec,
    profile: Profile,
    sample: np.ndarray,
    targets: Targets,
    upstream_recall: float = 1.0,
    identities: Sequence[str] | None = None,
    learned: Sequence[LearnedOperator] = (),
    truth: Mapping[str, np.ndarray] | None = None,
) -> PlanProblem:
    """`identities`: the candidates profiled (default: the whole family; the gold one alone gives a problem with
    the gold labels and no candidates). `learned`: learned operators fitted for this query, candidates of their
    own template (fitted on the tuning labels). `truth`: each filter's labels on every row from another source
    (label_source.sample_truth), the gold operator's answers then one more operator's."""
    rows = table.df.iloc[sample]
    identities = family.identities if identities is None else identities
    operators = []
    for op in query.operators:
        fitted = [lo.identity for lo in learned if lo.template.text == op.template.text]
        keys = row_keys(rows, op.template)
        labels = None if truth is None else truth[op.template.text][sample]
        operators.append(
            operator_sample(profile, op.template, keys, [*identities, *fitted], family.gold_identity, fitted, labels)
        )
    return PlanProblem(tuple(operators), targets, len(sample) / len(table), upstream_recall)


def learned_operators(
    table: Table,
    query: Query,
    source: OperatorSource,
    profile: Profile,
    sample: np.ndarray,
    tuning: np.ndarray,
    embeddings: Mapping[tuple[str, ...], EmbeddingTable | None],
    gold: str,
    cheap: Sequence[str],
    truth: Mapping[str, np.ndarray] | None = None,
) -> list[LearnedOperator]:
    """Per filter whose documents have stored embeddings (`embeddings`, by the columns a template reads): learned
    operators over the embedding alone and over [embedding + each cheap operator's score], fitted on the gold
    labels of the sample's `tuning` tuples only (positions into `sample`), so the certification tuples still
    judge them as fresh data."""
    rows = table.df.iloc[sample]
    out: list[LearnedOperator] = []
    for f in query.filters:
        stored = embeddings.get(f.template.columns)
        if stored is None:
            continue
        keys = row_keys(rows, f.template)
        gold_scores = profile.lookup(keys, f.template, gold, partial=True)["score"].to_numpy(np.float64)
        if truth is not None:  # the labels come from another source: they teach, not the gold operator's say
            gold_scores = np.where(truth[f.template.text][sample] > 0.5, 1.0, -1.0)
        asked = tuning[~np.isnan(gold_scores[tuning])]  # labels left unasked (see gold_labels) teach nothing
        inputs = {
            identity: (
                source.operator(f.template, identity),
                profile.lookup(keys, f.template, identity)["score"].to_numpy(np.float64),
            )
            for identity in cheap
        }
        out.extend(fit_learned(f.template, rows, gold_scores > 0.0, asked, stored, inputs))
    return out


def learned_profile(table: Table, sample: np.ndarray, learned: Sequence[LearnedOperator]) -> Profile:
    """The learned operators' answers on the sample rows (their input operators answer from the profile store
    or recording, so nothing is scored twice by a model)."""
    rows = table.df.iloc[sample]
    return Profile.concat(
        Profile.of_scores(row_keys(rows, op.template), op.template, op.identity, op.score(rows, progress=False))
        for op in learned
    )


def run_query(
    table: Table,
    query: Query,
    source: OperatorSource,
    family: FamilySpec,
    targets: Targets,
    optimizer: Optimizer,
    *,
    sample_fraction: float = 0.15,
    sample_size: int | None = None,
    seed: int = 0,
    store: ProfileStore | None = None,
    progress: bool = True,
    upstream_recall: float = 1.0,
    embeddings: EmbeddingSource | None = None,
    sample_growth: int = 0,
    labels: str | None = None,
) -> QueryRun:
    """Answer the query at the targets: profile a seeded sample, optimize on it, execute the plan on the table.

    `sample_size` (a row count) wins over `sample_fraction` when set. Lazy profiling: when the optimizer says
    (needs_candidates) that the sample's gold labels cannot certify any plan but gold alone, the cheap operators
    are never asked, gold alone answers, and the profile seconds are the gold labels' alone.

    `sample_growth` = g > 0: up to g doublings of the sample (nested: each holds the last), each tried only when
    the smaller one certified nothing, and each certified at level (1 - alpha) / (g + 1) (Bonferroni over the
    looks, so the plan that runs misses a target with probability <= 1 - alpha whichever look chose it). Rows
    labelled for the sample are answered by their gold labels, so growing costs nothing gold alone would not pay.

    `labels`: where the sample's labels come from (engine/label_source.py): "gold" (default: the gold operator),
    "column" (each filter's label column) or a CSV of labelled rows (the sample is then those rows). With labels
    from another source the gold operator is profiled on the sample like a candidate, every guarantee holds
    against the labels, the sample's rows are answered by them, and a query even gold alone cannot certify is
    refused before it runs (UncertifiableTargets)."""
    query.check(table)
    gold = family.gold_identity
    truth = sample_truth(table, query, labels)
    if truth is not None and (labels_as_it_goes(optimizer) or wanted_operators(optimizer, family) is None):
        raise QueryError(
            f"system '{optimizer.name}' takes no profiling sample, so it cannot use labels from another source "
            f"(profiling.labels={labels}); use a sampling system, e.g. stretto"
        )
    if labels_as_it_goes(optimizer):
        return run_on_table(
            table, query, source, gold, family.identities, targets, optimizer, seed=seed, progress=progress
        )  # fmt: skip
    stored = {} if embeddings is None else {f.template.columns: embeddings.available(table.df, f.template.columns)
                                            for f in query.filters}  # fmt: skip
    learnable = embeddings is not None and all(found is not None for found in stored.values())
    chosen = wanted_operators(optimizer, family, learnable)
    if chosen is None:
        return unsampled_run(table, query, source, family, optimizer.name, seed=seed, progress=progress)
    cold_operators = getattr(source, "cold_operators", None)  # would build caches at query time: left out
    cold = cold_operators([op.template for op in query.operators], table.df, chosen) if cold_operators else []
    if cold:
        log.info("left out (no stored KV caches for this table; `stretto cache build` stores them): %s", cold)
        chosen = [identity for identity in chosen if identity not in cold]
    first = profiling_sample(len(table), sample_fraction, seed, size=sample_size)
    labelled_only = None if truth is None else labelled_sample(first, truth, query, labels)
    if labelled_only is not None:  # only labelled rows can be in the sample
        if sample_growth:
            raise QueryError("profiling.growth needs labels on every row; some rows are unlabelled")
        first = labelled_only
    sizes = [min(len(first) * 2**k, len(table)) for k in range(sample_growth + 1)]
    sizes = sorted(set(sizes))
    if len(sizes) > 1:
        targets = targets.split(len(sizes))
        order = np.random.default_rng(np.random.SeedSequence(seed).spawn(2)[1]).permutation(len(table))
        grown = [np.sort(order[:size]) for size in sizes]
    else:
        grown = [first]
    profile, labelled, optimize_seconds, learn_seconds = Profile.empty(), np.zeros(0, np.int64), 0.0, 0.0
    for look, sample in enumerate(grown):
        new = np.setdiff1d(sample, labelled)
        labelled = sample
        step = _plan_on_sample(
            table, query, source, family, targets, optimizer, chosen, sample, new, profile,
            store=store, progress=progress, upstream_recall=upstream_recall, embeddings=stored, truth=truth,
        )  # fmt: skip
        profile, optimize_seconds = step.profile, optimize_seconds + step.optimize_seconds
        learn_seconds += step.learn_seconds
        if (step.plan.notes.get("lazy") is None and not step.plan.fallback) or look == len(grown) - 1:
            break
    plan, problem = step.plan, step.problem
    if cold:
        plan.notes.update(left_out_without_stored_caches=cold)
    if len(grown) > 1:
        plan.notes.update(sample_looks=look + 1, sample_sizes=sizes)
    if plan.notes.get("lazy"):
        log.warning(
            "targets precision >= %s, recall >= %s at alpha %s cannot be certified with %d gold positives in "
            "the %d-row sample: gold alone answers; the cheap operators were not profiled",
            targets.precision,
            targets.recall,
            targets.alpha,
            int(problem.labels.sum()),
            len(sample),
        )
    answered = profile if truth is None else truth_profile(table, query, truth, sample, gold)
    execution = execute_plan(table, plan, step.source, sample=sample, profile=answered, seed=seed, progress=progress)
    if truth is not None:
        plan.notes.update(label_source=labels)
    templates = [f.template for f in query.operators]
    profiled = [gold] if plan.notes.get("lazy") else chosen
    spent = sample_seconds(profile, table.df.iloc[sample], templates, profiled) + learn_seconds
    return QueryRun(plan, execution, sample, profile, problem, spent, optimize_seconds)


@dataclass(frozen=True)
class _SamplePlan:
    plan: PhysicalPlan
    problem: PlanProblem
    profile: Profile  # every answer so far (earlier looks' too)
    source: OperatorSource  # with the learned operators fitted on this sample
    learn_seconds: float
    optimize_seconds: float


def _plan_on_sample(
    table: Table,
    query: Query,
    source: OperatorSource,
    family: FamilySpec,
    targets: Targets,
    optimizer: Optimizer,
    chosen: list[str],
    sample: np.ndarray,
    new: np.ndarray,
    profile: Profile,
    *,
    store: ProfileStore | None,
    progress: bool,
    upstream_recall: float,
    embeddings: Mapping[tuple[str, ...], EmbeddingTable | None],
    truth: Mapping[str, np.ndarray] | None = None,
) -> _SamplePlan:
    """Profile the sample's `new` rows (the rest were answered at an earlier look), then plan on the sample."""
    gold = family.gold_identity
    cheap = [identity for identity in chosen if identity != gold]
    needs_candidates = getattr(optimizer, "needs_candidates", None)
    if needs_candidates is None:
        asked = profile_query(
            table, query, source, family, sample=new, store=store, progress=progress, identities=chosen
        )
        profile = Profile.concat([profile, asked])
    else:
        if getattr(optimizer, "labels_where_needed", False) and truth is None:
            asked = gold_labels(table, query, source, gold, sample=new, store=store, progress=progress)
        else:
            asked = profile_query(
                table, query, source, family, sample=new, store=store, progress=progress, identities=[gold]
            )
        profile = Profile.concat([profile, asked])
        began = time.perf_counter()
        labels = plan_problem(
            table, query, family, profile, sample, targets, upstream_recall, identities=[gold], truth=truth
        )  # fmt: skip
        if not needs_candidates(labels):
            plan = lazy_gold_plan(labels, optimizer.name)
            optimize_seconds = time.perf_counter() - began
            plan.notes.update(optimize_seconds=optimize_seconds)
            return _SamplePlan(plan, labels, profile, source, 0.0, optimize_seconds)
        unasked = _unanswered(profile, table, query, cheap, sample)  # an earlier look may have skipped them
        if len(unasked):
            rest = profile_query(
                table, query, source, family, sample=unasked, store=store, progress=progress, identities=cheap
            )
            profile = Profile.concat([profile, rest])
    problem = plan_problem(
        table, query, family, profile, sample, targets, upstream_recall, identities=chosen, truth=truth
    )  # fmt: skip
    learn_seconds = 0.0
    tuning_tuples = getattr(optimizer, "tuning_tuples", None)
    tuning = tuning_tuples(problem) if tuning_tuples is not None and embeddings else None
    if tuning is not None:
        began = time.perf_counter()
        learned = learned_operators(table, query, source, profile, sample, tuning, embeddings, gold, cheap, truth)
        if learned:
            profile = Profile.concat([profile, learned_profile(table, sample, learned)])
            source = WithLearned(source, learned)
            problem = plan_problem(
                table, query, family, profile, sample, targets, upstream_recall, chosen, learned, truth
            )
        learn_seconds = time.perf_counter() - began  # fitting and scoring the sample: charged as profiling
    began = time.perf_counter()
    plan = optimizer.optimize(problem)
    return _SamplePlan(plan, problem, profile, source, learn_seconds, time.perf_counter() - began)


def truth_profile(
    table: Table, query: Query, truth: Mapping[str, np.ndarray], sample: np.ndarray, gold: str
) -> Profile:
    """The sample's labels from another source as the gold operator's answers, for the executor: the sample's
    rows are answered by them (a filter's decision, an extract's true value)."""
    rows = table.df.iloc[sample]

    def answers(op, score, value) -> pd.DataFrame:
        keys = row_keys(rows, op.template)
        return pd.DataFrame({"row_key": keys, "template": op.template.text, "operator": gold, "score": score,
                             "seconds": 0.0, "tokens": 0, "value": value})  # fmt: skip

    decided = [answers(f, np.where(truth[f.template.text][sample] > 0.5, 1.0, -1.0), None) for f in query.filters]
    extracted = [answers(e, 1.0, list(truth[e.template.text][sample])) for e in query.extracts]
    return Profile(pd.concat([*decided, *extracted], ignore_index=True))


def _unanswered(
    profile: Profile, table: Table, query: Query, identities: Sequence[str], sample: np.ndarray
) -> np.ndarray:
    """The sample rows some of these operators have not answered yet for some template."""
    rows = table.df.iloc[sample]
    missing = np.zeros(len(sample), dtype=bool)
    for op in query.operators:
        keys = row_keys(rows, op.template)
        for identity in identities:
            if not (profile.records["operator"] == identity).any():
                return sample
            missing |= np.isnan(profile.lookup(keys, op.template, identity, partial=True)["score"].to_numpy(float))
    return sample[missing]


def wanted_operators(optimizer: Optimizer, family: FamilySpec, learnable: bool = False) -> list[str] | None:
    """The family's operators this system has profiled on the sample (gold always among them), in the family's
    order; None when it takes no sample (see Optimizer.candidates). `learnable`: every filter's documents have
    stored embeddings (learned operators can be fitted), which may change what a system asks for."""
    candidates = getattr(optimizer, "candidates", None)
    if learnable:
        candidates = getattr(optimizer, "candidates_with_embeddings", candidates)
    if candidates is None:
        return list(family.identities)
    gold = family.gold_identity
    asked = candidates(list(family.identities), gold)
    if asked is None:
        return None
    unknown = [identity for identity in asked if identity not in family.identities]
    if unknown:
        raise ValueError(f"{optimizer.name} asked for operators outside the family: {unknown}")
    return [identity for identity in family.identities if identity in set(asked) | {gold}]


def unsampled_run(
    table: Table, query: Query, source: OperatorSource, family: FamilySpec, system: str, *, seed: int, progress: bool
) -> QueryRun:
    """A system that takes no sample: the gold operator on every row and nothing else (no profile, no problem;
    its execution seconds cover every row)."""
    plan = replace(one_operator_plan(query, family), system=system)
    plan.notes.update(profiled="nothing: no sample")
    execution = execute_plan(table, plan, source, seed=seed, progress=progress)
    return QueryRun(plan, execution, np.array([], dtype=np.int64), Profile.empty(), None, 0.0, 0.0)


def lazy_gold_plan(problem: PlanProblem, system: str) -> PhysicalPlan:
    """Gold alone, chosen before the cheap operators were profiled (their figures are absent from the plan);
    against labels from another source it is certified against them or refused (certify.gold_alone)."""
    plan = gold_alone(problem, system)
    plan.notes.update(lazy=True, profiled="gold only", gold_positives=int(problem.labels.sum()))
    return plan


def one_operator_plan(query: Query, family: FamilySpec) -> PhysicalPlan:
    """No optimizer: the family's gold operator answers every filter and extract on every row, at its threshold
    (family.gold.threshold). A one-member family is one operator at a threshold, and this is its plan, executed
    like every optimized plan; its bounds are 1 by definition (the guarantees are relative to the gold operator)."""
    cascades = tuple(Cascade.gold_only(op.template.text, family.gold_identity) for op in query.operators)
    nan = float("nan")
    exact = "exact: the gold operator alone (the guarantees are relative to it)"
    return PhysicalPlan(cascades, 1.0, 1.0, nan, nan, system="none", certified=True, bounds=exact)
