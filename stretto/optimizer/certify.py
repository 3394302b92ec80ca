"""Learn-then-Test certification: exact binomial p-values and fixed-sequence testing over a path of plans.

Angelopoulos, Bates, Candes, Jordan and Lei (2021), "Learn then Test: Calibrating Predictive Algorithms to
Achieve Risk Control". A path of candidate plans is built from data the test does not see, ordered from the
most conservative (the gold operator alone: always valid, never tested) to the cheapest. Each plan's null
hypothesis "precision < T_P or recall < T_R" gets an exact binomial p-value from its hard counts on the
certification labels (the max of the two one-sided p-values: an intersection-union test). The plans are
tested in path order at level delta = 1 - alpha and testing stops at the first plan that is not certified;
all plans before it are certified simultaneously, and the cheapest of them runs (the last one when the path
is ordered by cost). Fixed-sequence testing keeps the family-wise error <= delta with no correction
(LTT, section 3), so the plan that runs misses a target with probability <= delta, whichever it is.

What is certified: the plan's precision and recall on tuples drawn like the sample, i.e. on the rows outside
the sample that the plan answers. The sample's rows are answered by the gold operator itself (precision and
recall 1 there), so a result whose rest clears both targets clears them on the whole table: precision of a
union with a perfect part is >= the rest's, and recall = (P_S + TP_R) / (P_S + P_R) >= TP_R / P_R. No blend
with the sample's share is needed (or claimed). A blocking step upstream whose recall is bounded below by u
(at its own confidence) makes the plan's recall target T_R / u.

Two paths may share the error (path=both): each is tested at delta / 2 (Bonferroni) and the cheaper winner
runs. What the binomial model assumes: the sample is a uniform draw of the table's rows, so a plan's outcomes
on its rows are draws from the same population as on the rest (without replacement: the binomial is the
usual, slightly conservative, stand-in for the hypergeometric); a plan's forcing fractions are realised by
independent draws on the certification tuples, as the executor draws them on the rest; the label-free path's
thresholds are the sample's score quantiles (they see the certification tuples' scores, never their labels).
The coverage test (tests/test_certify.py) measures the whole rule's miss rate on synthetic data with known
truth.

Pure functions (numpy and scipy), in the style of ppi_py: no model, no optimizer state.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace

import numpy as np
from scipy import stats

from stretto.errors import UncertifiableTargets
from stretto.optimizer.physical_plan import Cascade, PhysicalPlan, Step, forcing_shares, gold_share
from stretto.optimizer.problem import OperatorSample, PlanProblem
from stretto.optimizer.simulate import exact_gold_fallback, gold_only_plan, plan_on_sample, steps_on_sample
from stretto.plan.targets import Targets

log = logging.getLogger(__name__)

CERTIFY_RULES = ("ltt", "paper")
PATHS = ("ladder", "learned", "scores", "both", "auto")


@dataclass(frozen=True)
class Counts:
    """A plan's hard outcome on labelled tuples (rows = tuples with their extracted values)."""

    tp: int  # kept, belongs in the result, every value right
    fp: int  # kept but not a right row
    fn: int  # a right row missing (discarded or a wrong value)

    @property
    def kept(self) -> int:
        return self.tp + self.fp

    @property
    def positives(self) -> int:
        return self.tp + self.fn


def binomial_p_value(successes: int, trials: int, target: float) -> float:
    """Exact p-value of H0 "rate < target" after `successes` of `trials`: P(Binomial(trials, target) >= successes).

    Super-uniform under H0 for every rate < target (the binomial tail is increasing in the rate); p <= delta
    exactly when the one-sided Clopper-Pearson lower bound at confidence 1 - delta is >= target. No trial
    (nothing kept, or no positive among the labels) gives p = 1: nothing is learnt.
    """
    if trials < 0 or not 0 <= successes <= trials:
        raise ValueError(f"need 0 <= successes <= trials, got {successes} of {trials}")
    if target <= 0.0:
        return 0.0
    if target > 1.0 or trials == 0:
        return 1.0
    return float(stats.binom.sf(successes - 1, trials, target))


def plan_p_value(counts: Counts, targets: Targets, upstream_recall: float = 1.0) -> float:
    """p-value of H0 "precision < T_P or recall < T_R / upstream_recall" of one fixed plan: the max of the two.

    Precision: given the k kept tuples, TP ~ Binomial(k, precision). Recall: given the m positives, TP ~
    Binomial(m, recall). Both conditional tests are exact, so the max is a valid p-value of the union null.
    When recall must hold at a higher confidence than precision (targets.recall_alpha: a blocking step upstream
    spent part of recall's error), recall's p-value is divided by targets.recall_share <= 1, so a test of the max
    at level delta tests precision at delta and recall at delta * recall_share.
    """
    recall_target = targets.recall / upstream_recall if upstream_recall > 0 else np.inf
    return max(
        binomial_p_value(counts.tp, counts.kept, targets.precision),
        min(1.0, binomial_p_value(counts.tp, counts.positives, recall_target) / targets.recall_share),
    )


def fixed_sequence(p_values: Iterable[float], delta: float) -> int:
    """How many hypotheses fixed-sequence testing rejects: the length of the leading run of p-values <= delta.

    The caller's path has the gold operator alone before them (always valid, never tested): 0 means run gold
    alone, k means run the k-th tested plan. Lazy: p-values after the first failure are never computed.
    """
    if not 0.0 < delta < 1.0:
        raise ValueError(f"level delta={delta} is outside (0, 1)")
    rejected = 0
    for p in p_values:
        if not p <= delta:
            break
        rejected += 1
    return rejected


def min_positives(target: float, delta: float) -> int:
    """The fewest positives among the certification labels with which even a perfect plan (m hits of m)
    certifies a rate >= target at level delta: target^m <= delta."""
    if target <= 0.0:
        return 0
    return int(np.ceil(np.log(delta) / np.log(target) - 1e-12))


def could_certify(problem: PlanProblem, delta: float | None = None) -> bool:
    """Whether any plan but gold alone could be certified on these labels (at level delta, default 1 - alpha):
    a perfect cascade's p-value."""
    delta = 1.0 - problem.targets.alpha if delta is None else delta
    positives = int(problem.labels.sum())
    return plan_p_value(Counts(positives, 0, 0), problem.targets, problem.upstream_recall) <= delta


def cascade_outcome(
    f: OperatorSample, cascade: Cascade, draws: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """(kept, value right) per tuple of one cascade with hard decisions; `draws` (2, tuples) uniforms realise
    its forcing fractions like the executor does (a forced accept or discard goes to the gold operator)."""
    n = len(f.labels)
    if draws is None:
        if cascade.force_accept or cascade.force_discard:
            raise ValueError(f"cascade '{cascade.template}' forces a fraction to gold: pass draws to realise it")
        draws = np.ones((2, n))
    flow = steps_on_sample(f, cascade)
    accepted, discarded, unsure = (x.astype(float) for x in (flow.accepted, flow.discarded, flow.unsure))
    keep, _, value_ok = gold_share(
        accepted,
        discarded,
        unsure,
        f.gold_decisions,
        *forcing_shares(cascade.force_accept, cascade.force_discard, draws),
        flow.right.astype(float),
        f.gold_right,
    )
    return keep > 0.5, value_ok > 0.5 if f.is_extract else np.ones(n, bool)


def plan_counts(problem: PlanProblem, plan: PhysicalPlan, rng: np.random.Generator | None = None) -> Counts:
    """The plan's hard TP / FP / FN on the problem's tuples (forcing realised with `rng`, as in execution)."""
    by_template = {c.template: c for c in plan.cascades}
    kept = np.ones(problem.n_tuples, bool)
    right = np.ones(problem.n_tuples, bool)
    for f in problem.operators:
        c = by_template[f.template]
        forcing = c.force_accept > 0 or c.force_discard > 0
        draws = rng.random((2, problem.n_tuples)) if forcing and rng is not None else None
        k, v = cascade_outcome(f, c, draws)
        kept &= k
        right &= v
    belongs = problem.labels
    return Counts(
        tp=int((kept & belongs & right).sum()),
        fp=int((kept & ~(belongs & right)).sum()),
        fn=int((belongs & ~(kept & right)).sum()),
    )


def clopper_pearson_lower(successes: int, trials: int, confidence: float) -> float:
    """One-sided exact lower bound (0 with no success; 0 with no trial: nothing is learnt)."""
    if successes == 0 or trials == 0:
        return 0.0
    return float(stats.beta.ppf(1.0 - confidence, successes, trials - successes + 1))


@dataclass(frozen=True)
class Certification:
    """Which plan of the path fixed-sequence testing certified, and the evidence."""

    plan: PhysicalPlan  # the plan to run: path[index], the cheapest certified one
    index: int  # 0: the gold operator alone
    certified: int  # how many plans past gold alone were certified: path[1 : certified + 1]
    p_values: tuple[float, ...]  # of the tested plans, in path order, up to and including the first failure
    counts: Counts | None  # the certified plan's counts on the certification labels (None for gold alone)


def certify_path(
    path: Sequence[PhysicalPlan],
    problem: PlanProblem,
    rng: np.random.Generator | None = None,
    counts_of: Callable[[PhysicalPlan], Counts] | None = None,
    delta: float | None = None,
    gold_valid: bool = True,
) -> Certification:
    """Fixed-sequence test of path[1:] on `problem`'s labels at level 1 - alpha; path[0] is gold alone.

    The path must not depend on these labels (it may depend on the tuples' scores). Fixed-sequence testing
    certifies path[1 : k + 1] simultaneously (LTT: with probability >= alpha none of them misses a target), so
    the cheapest of gold alone and those k plans runs, whatever else its choice looks at; with the path ordered
    by cost that is the last certified one. Returns it with its Clopper-Pearson lower bounds (confidence alpha)
    on precision and recall in place of the optimizer's predictions: the recall bound is on the rows the plan
    answers, a lower bound for the whole result's (see the module's docstring). `delta`: the level, 1 - alpha
    unless several paths split it (Bonferroni). `gold_valid=False` (labels from another source, against which gold
    alone failed its own test): path[0] never runs; index 0 then means nothing was certified.
    """
    targets = problem.targets
    delta = 1.0 - targets.alpha if delta is None else delta  # lower when several paths share the error
    counts_of = counts_of or (lambda plan: plan_counts(problem, plan, rng))
    p_values: list[float] = []
    counts: list[Counts] = []

    def tested():
        for plan in path[1:]:
            c = counts_of(plan)
            counts.append(c)
            p_values.append(plan_p_value(c, targets, problem.upstream_recall))
            yield p_values[-1]

    k = fixed_sequence(tested(), delta)
    # Every plan up to path[k] is certified at once (the family-wise error is controlled), so any of them may
    # run: the cheapest by its predicted cost (gold alone included).
    runnable = range(0 if gold_valid else 1, k + 1)
    best = min(runnable, key=lambda j: (path[j].cost_per_tuple, -j)) if runnable else 0
    if best == 0:
        return Certification(path[0], 0, k, tuple(p_values), None)
    c = counts[best - 1]
    upstream = problem.upstream_recall
    plan = path[best]
    plan = replace(
        plan,
        precision_lower=clopper_pearson_lower(c.tp, c.kept, targets.alpha),
        recall_lower=clopper_pearson_lower(c.tp, c.positives, targets.recall_confidence) * upstream,
        fallback=False,
        certified=True,
        bounds=f"Learn-then-Test: Clopper-Pearson lower bounds on {problem.n_tuples} labels the path did not see",
    )
    return Certification(plan, best, k, tuple(p_values), c)


def quantile_thresholds(scores: np.ndarray, shares: Sequence[float]) -> np.ndarray:
    """Thresholds below which about `share` of these scores lie (midway between neighbouring order statistics,
    so a tie never splits): the discard threshold of a band that leaves that share to the cheap operator."""
    ordered = np.sort(scores)
    n = len(ordered)
    out = []
    for share in shares:
        k = int(np.floor(share * n))
        if k <= 0:
            out.append(-np.inf)
        elif k >= n:
            out.append(np.inf)
        else:
            out.append(0.5 * (ordered[k - 1] + ordered[k]))
    return np.array(out)


def scores_path(
    problem: PlanProblem,
    system: str,
    steps: int = 40,
    gold_plan: PhysicalPlan | None = None,
    fitted: bool = False,
    accept: float = 0.0,
) -> list[PhysicalPlan]:
    """A path from the operators' scores alone (no label is read, so every sample label can certify).

    Per filter one cheap operator (the costliest candidate not fitted on the sample's labels: the least compressed,
    the family's best guess at the most accurate); plan j discards the share j / steps of the sample's tuples with
    its lowest scores and sends the rest to the gold operator, for every filter at once. Keeping nothing, the plans'
    precision is gold's; only recall is at risk, and the discard sets grow nested, so along the path the counts
    (hence the p-values) are monotone and fixed-sequence testing loses nothing to the grid's fineness. Extracts are
    left to the gold operator. (The thresholds are the sample's score quantiles: they depend on the certification
    tuples' scores, not on their labels; a band edge moves by one tuple per tuple, a small effect the coverage test
    measures.) Costs are the plans' expected seconds per tuple on the sample, in the DP's filter order.

    `fitted=True` builds the same band from the cheapest candidate fitted on the tuning labels (a learned
    operator over the stored embeddings, nearly free): it must then be certified on the held-out tuples only.

    `accept` (in [0, 1]): the band shrinks from both ends instead; of the share j / steps it decides, that part is
    accepted (the highest scores) and the rest discarded, so precision is at risk too. The learned path passes the
    result's rate on the tuning tuples (labels the test does not see); 0: discards only.
    """
    shares = [j / steps for j in range(1, steps)]
    per_filter: list[tuple[OperatorSample, str, np.ndarray] | None] = []
    for f in problem.operators:
        usable = [i for i, c in enumerate(f.candidates) if (c in f.fitted) == fitted]
        if f.is_extract or not usable:
            per_filter.append(None)
            continue
        i = min(usable, key=lambda j: f.costs[j]) if fitted else max(usable, key=lambda j: f.costs[j])
        lowers = quantile_thresholds(f.scores[i], [(1.0 - accept) * share for share in shares])
        uppers = quantile_thresholds(f.scores[i], [1.0 - accept * share for share in shares])
        per_filter.append((f, f.candidates[i], np.vstack([lowers, uppers])))
    path = [gold_plan or gold_only_plan(problem, system)]
    if all(x is None for x in per_filter):
        return path
    for j in range(len(shares)):
        cascades = []
        for f, chosen in zip(problem.operators, per_filter, strict=True):
            if chosen is None:
                cascades.append(Cascade.gold_only(f.template, f.gold))
            else:
                _, op, band = chosen
                cascades.append(Cascade(f.template, (Step(op, float(band[0, j]), float(band[1, j])),), f.gold))
        path.append(plan_on_sample(problem, cascades, system, notes={"discard_share": shares[j]}))
    return path


def gold_alone(problem: PlanProblem, system: str, delta: float | None = None) -> PhysicalPlan:
    """The gold operator alone: every system's fallback. Against the gold operator's own answers its bounds are
    exact (the guarantees are relative to it). Against labels from another source (problem.against_truth) it is
    one more fallible plan, fixed before any label is seen: certified by its exact p-value on all the sample's
    labels at level `delta` (default 1 - alpha), or refused before anything runs (UncertifiableTargets), with its
    measured precision and recall against the labels and the targets it could certify."""
    if not problem.against_truth:
        return exact_gold_fallback(problem, system)
    targets, upstream = problem.targets, problem.upstream_recall
    delta = 1.0 - targets.alpha if delta is None else delta
    plan = gold_only_plan(problem, system, fallback=True)
    c = plan_counts(problem, plan)
    # p <= delta exactly when both Clopper-Pearson lower bounds at confidence 1 - delta clear the targets
    could_p = clopper_pearson_lower(c.tp, c.kept, 1.0 - delta)
    could_r = clopper_pearson_lower(c.tp, c.positives, 1.0 - delta * targets.recall_share) * upstream
    if plan_p_value(c, targets, upstream) > delta:
        measured_p = c.tp / c.kept if c.kept else float("nan")
        measured_r = c.tp / c.positives if c.positives else float("nan")
        raise UncertifiableTargets(
            f"no plan can be certified at precision >= {targets.precision}, recall >= {targets.recall} "
            f"(alpha {targets.alpha}) against the {problem.n_tuples} labelled sample rows: even the gold operator "
            f"alone on every row measured precision {measured_p:.3f} and recall {measured_r:.3f} against them "
            f"({c.positives} positives), and can be certified only at precision >= {could_p:.3f}, "
            f"recall >= {could_r:.3f}; lower the targets, label more rows, or use a better gold model"
        )
    return replace(
        plan,
        precision_lower=clopper_pearson_lower(c.tp, c.kept, targets.alpha),
        recall_lower=clopper_pearson_lower(c.tp, c.positives, targets.recall_confidence) * upstream,
        certified=True,
        bounds=f"Clopper-Pearson lower bounds on {problem.n_tuples} labels: the gold operator alone, tested "
        "against them",
    )


__all__ = [
    "CERTIFY_RULES",
    "PATHS",
    "Certification",
    "Counts",
    "binomial_p_value",
    "certify_path",
    "clopper_pearson_lower",
    "could_certify",
    "fixed_sequence",
    "gold_alone",
    "min_positives",
    "plan_counts",
    "plan_p_value",
    "quantile_thresholds",
    "scores_path",
]
