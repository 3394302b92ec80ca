"""Learn-then-Test certification: p-values, fixed-sequence testing, its coverage over seeds, the optimizer."""

import logging
from dataclasses import replace

import numpy as np
import pytest
from optimizer_fixtures import problem_for, synthetic, whole_result_quality
from scipy import stats

from stretto.engine import plan_problem, profile_query
from stretto.optimizer.certify import (
    Counts,
    binomial_p_value,
    certify_path,
    clopper_pearson_lower,
    fixed_sequence,
    min_positives,
    plan_counts,
    plan_p_value,
    quantile_thresholds,
    scores_path,
)
from stretto.optimizer.gradient import GradientOptimizer, GradientSettings
from stretto.optimizer.physical_plan import Cascade, PhysicalPlan, Step
from stretto.optimizer.problem import OperatorSample, PlanProblem
from stretto.plan.query import Query
from stretto.plan.targets import Targets

FAST = GradientSettings(jobs=32, steps=80, refine_steps=40)


def test_p_values_are_the_exact_binomial_tail():
    # Hand-computed: 10 hits of 10 at .7 is .7^10; 9 of 10 adds 10 * .7^9 * .3.
    assert binomial_p_value(10, 10, 0.7) == pytest.approx(0.0282475249, abs=1e-10)
    assert binomial_p_value(9, 10, 0.7) == pytest.approx(0.1493083459, abs=1e-9)
    assert binomial_p_value(0, 0, 0.7) == 1.0  # nothing kept: nothing learnt
    for k, n, target in [(9, 10, 0.7), (28, 29, 0.9), (45, 60, 0.6), (3, 3, 0.5), (0, 4, 0.2)]:
        scipy_p = stats.binomtest(k, n, target, alternative="greater").pvalue
        assert binomial_p_value(k, n, target) == pytest.approx(scipy_p, rel=1e-9)
        # p <= delta exactly when the one-sided Clopper-Pearson bound at confidence 1 - delta clears the target
        for delta in (0.05, 0.1, 0.2):
            assert (binomial_p_value(k, n, target) <= delta) == (clopper_pearson_lower(k, n, 1 - delta) >= target)
    # precision 9/9 (p = .7^9 = .0404) passes, recall 9/10 (p = .149) fails: the max decides
    counts = Counts(tp=9, fp=0, fn=1)
    assert plan_p_value(counts, Targets(0.7, 0.7, 0.95)) == pytest.approx(0.1493083459, abs=1e-9)
    assert plan_p_value(Counts(9, 0, 0), Targets(0.7, 0.7, 0.95)) == pytest.approx(0.7**9)
    assert plan_p_value(Counts(9, 0, 0), Targets(0.7, 0.7, 0.95), upstream_recall=0.6) == 1.0  # T_R / u > 1
    # Recall at a higher confidence than precision (a blocking step upstream spent half of recall's error):
    # recall's p-value counts twice, precision's once. 15 of 16 kept (p = .0261) passes precision at .05, which
    # splitting both targets' error (level .025) would have refused.
    join = Targets(0.7, 0.7, 0.95, recall_alpha=0.975)
    assert plan_p_value(Counts(9, 0, 0), join) == pytest.approx(2 * 0.7**9)
    assert (
        plan_p_value(Counts(15, 1, 0), join)
        == pytest.approx(binomial_p_value(15, 16, 0.7))
        == pytest.approx(0.7**16 + 16 * 0.7**15 * 0.3)
    )
    assert 0.025 < plan_p_value(Counts(15, 1, 0), join) <= 0.05
    assert join.split(2) == Targets(0.7, 0.7, 0.975, recall_alpha=0.9875)
    # the fewest positives with which a perfect plan certifies: .7^9 = .040 <= .05 < .7^8; .9^29 = .047 < .9^28
    assert min_positives(0.7, 0.05) == 9 and min_positives(0.9, 0.05) == 29


def _plan(cost: float, name: str) -> PhysicalPlan:
    return PhysicalPlan((Cascade(name, (), "gold"),), 0.0, 0.0, cost, 1.0, notes={"name": name})


def test_fixed_sequence_stops_at_the_first_failure():
    assert fixed_sequence([0.01, 0.02, 0.5, 0.001], 0.05) == 2
    assert fixed_sequence([0.2, 0.001], 0.05) == 0
    assert fixed_sequence([], 0.05) == 0
    # plan 2 fails, plan 3 would pass: plan 1 runs, and plan 3 is never counted
    problem, *_ = problem_for(n_filters=1)
    counts = {"p1": Counts(20, 0, 0), "p2": Counts(5, 5, 5), "p3": Counts(40, 0, 0)}
    seen = []

    def counts_of(plan):
        seen.append(plan.notes["name"])
        return counts[plan.notes["name"]]

    path = [_plan(1.0, "gold"), _plan(0.8, "p1"), _plan(0.5, "p2"), _plan(0.2, "p3")]
    result = certify_path(path, problem, counts_of=counts_of)
    assert result.plan.notes["name"] == "p1" and result.index == 1 and result.certified == 1
    assert seen == ["p1", "p2"] and len(result.p_values) == 2
    assert result.plan.precision_lower == pytest.approx(0.05 ** (1 / 20))  # Clopper-Pearson of 20/20
    # everything up to the first failure is certified at once: the cheapest of them runs, gold alone included
    path = [_plan(1.0, "gold"), _plan(1.4, "p1"), _plan(0.5, "p2")]
    assert certify_path(path, problem, counts_of=counts_of).index == 0


def test_plan_counts_realise_forcing_and_match_the_expected_counts():
    problem, *_ = problem_for(n_filters=2, fraction=0.5)
    f0, f1 = problem.operators
    plan = PhysicalPlan(
        (
            Cascade(f0.template, (Step(f0.candidates[0], -0.5, 0.5),), f0.gold, 0.5, 0.0),
            Cascade(f1.template, (Step(f1.candidates[1], -1.0, 1.0),), f1.gold),
        ),
        0.0, 0.0, 0.0, 0.0,
    )  # fmt: skip
    from stretto.optimizer.simulate import simulate

    expected = simulate(problem, plan)
    draws = [plan_counts(problem, plan, np.random.default_rng(s)) for s in range(300)]
    assert np.mean([c.fp for c in draws]) == pytest.approx(expected.fp, rel=0.05)
    assert np.mean([c.fn for c in draws]) == pytest.approx(expected.fn, rel=0.05)
    with pytest.raises(ValueError, match="forces a fraction"):
        plan_counts(problem, plan)


def _population_problem(scores: np.ndarray, labels: np.ndarray, targets: Targets) -> PlanProblem:
    f = OperatorSample("{t} x", ("cheap",), scores[None], np.array([0.02]), "gold", 0.1, labels)
    return PlanProblem((f,), targets, 0.1)


def test_coverage_over_seeds_with_known_truth():
    """Seeded simulation: a cheap operator's score is N(mu, 1) on positives and N(0, 1) on negatives, so every
    plan's true precision and recall are known in closed form. Draw many samples, certify, and count how often
    the certified plan misses a target on the population: <= 1 - alpha within a Clopper-Pearson interval.
    Three paths: the label-free scores path (discards only: recall at risk), a tuned two-sided path (keep
    and discard thresholds fit on a tuning half at inflated targets, certified on the other: precision at risk
    too), and the band that shrinks from both ends (the learned path's where it accepts). A point-estimate rule
    on the same draws misses far more often, so the simulation can tell."""
    rng = np.random.default_rng(2021)
    mu, pi, n, runs, delta = 2.0, 0.3, 240, 300, 0.05
    targets = Targets(0.8, 0.8, 1 - delta)
    sf = stats.norm.sf

    def truth(lower: float, upper: float) -> tuple[float, float]:
        """Population precision and recall of: keep above upper, discard below lower, gold in between."""
        kept_pos = pi * sf(lower - mu)  # every positive above lower is kept (by the operator or by gold)
        kept_neg = (1 - pi) * sf(upper)  # negatives the operator keeps
        return kept_pos / (kept_pos + kept_neg), sf(lower - mu)

    scores_misses = point_misses = tuned_misses = accept_misses = 0
    scores_certified = tuned_certified = accept_certified = 0
    for _ in range(runs):
        labels = rng.random(n) < pi
        scores = rng.normal(size=n) + mu * labels
        problem = _population_problem(scores, labels, targets)
        # (1) the label-free path, certified on every label
        path = scores_path(problem, "sim", steps=30)
        result = certify_path(path, problem)
        lower = result.plan.cascades[0].steps[0].lower if result.index else -np.inf
        scores_certified += result.index > 0
        scores_misses += min(truth(lower, np.inf)) < targets.recall
        # a point-estimate rule on the same path: the cheapest plan whose sample recall clears the target
        recall = [plan_counts(problem, p).tp / labels.sum() for p in path]
        best = max(j for j in range(len(path)) if recall[j] >= targets.recall)
        lower = path[best].cascades[0].steps[0].lower if best else -np.inf
        point_misses += min(truth(lower, np.inf)) < targets.recall
        # (2) a two-sided path tuned on half the sample at inflated targets, certified on the other half
        order = rng.permutation(n)
        tune, cert = order[: n // 2], order[n // 2 :]
        ts, tl = scores[tune], labels[tune]
        by_score = np.argsort(-ts)
        top_precision = np.cumsum(tl[by_score]) / np.arange(1, len(ts) + 1)  # keeping the top k
        positives = np.sort(ts[tl])
        path = [_plan(1.0, "gold")]
        for rung in (0.98, 0.95, 0.92, 0.9, 0.88, 0.86, 0.84, 0.82, 0.8, 0.78, 0.76, 0.74, 0.72, 0.7):
            lo = positives[int(np.floor((1 - rung) * len(positives) + 1e-9))]  # tuning recall >= rung
            k = int(np.flatnonzero(top_precision >= rung).max(initial=-1)) + 1  # the most kept at precision >= rung
            up = np.inf if k == 0 else ts[by_score[k]] if k < len(ts) else -np.inf
            cascade = Cascade("{t} x", (Step("cheap", lo, max(lo, up)),), "gold")
            path.append(PhysicalPlan((cascade,), 0, 0, 1.0 - rung, 1.0))
        result = certify_path(path, _population_problem(scores[cert], labels[cert], targets))
        tuned_certified += result.index > 0
        if result.index:
            step = result.plan.cascades[0].steps[0]
            tuned_misses += min(truth(step.lower, step.upper)) < targets.precision
        # (3) the band shrinking from both ends (the learned path where it accepts): thresholds from every sample
        # score, the accepted part of the decided share the tuning half's positive rate, certified on the other
        path = scores_path(problem, "sim", steps=30, accept=float(labels[tune].mean()))
        result = certify_path(path, problem.subset(cert))
        accept_certified += result.index > 0
        if result.index:
            step = result.plan.cascades[0].steps[0]
            assert step.upper < np.inf  # it accepts
            accept_misses += min(truth(step.lower, step.upper)) < targets.precision

    def cp_lower(k: int, total: int) -> float:  # two-sided 99% interval's lower end
        return 0.0 if k == 0 else float(stats.beta.ppf(0.005, k, total - k + 1))

    assert scores_certified > runs / 2 and tuned_certified > runs / 4  # the rules certify: misses are possible
    assert accept_certified > runs / 4, accept_certified
    assert cp_lower(accept_misses, runs) <= delta, f"accepting band: {accept_misses} misses of {runs}"
    assert cp_lower(scores_misses, runs) <= delta, f"scores path: {scores_misses} misses of {runs}"
    assert cp_lower(tuned_misses, runs) <= delta, f"tuned path: {tuned_misses} misses of {runs}"
    assert point_misses / runs > 0.25  # without the bound the same path misses: the setting is tight


def test_quantile_thresholds_discard_the_share():
    scores = np.array([3.0, 1.0, 2.0, 5.0, 4.0])
    lowers = quantile_thresholds(scores, [0.0, 0.2, 0.6, 1.0])
    assert lowers[0] == -np.inf and lowers[3] == np.inf
    assert [(scores < lo).sum() for lo in lowers] == [0, 1, 3, 5]


def test_the_accepting_band_splits_the_decided_share_by_the_rate():
    scores = np.random.default_rng(3).normal(size=200)
    problem = _population_problem(scores, scores > 0.5, Targets(0.8, 0.8, 0.95))
    for rate in (0.0, 0.25):
        path = scores_path(problem, "sim", steps=10, accept=rate)
        assert len(path) == 10  # gold alone, then shares 1/10 .. 9/10 decided
        for j, plan in enumerate(path[1:], 1):
            step = plan.cascades[0].steps[0]
            share = j / 10
            assert (scores < step.lower).sum() == int(np.floor((1 - rate) * share * 200))
            assert (scores > step.upper).sum() == 200 - int(np.floor((1 - rate * share) * 200))
            assert (step.upper == np.inf) == (rate == 0.0)


@pytest.mark.parametrize("path", ["ladder", "scores"])
def test_optimizer_certifies_a_cheaper_plan_that_meets_the_targets_on_the_whole_table(path):
    targets = Targets(0.7, 0.7, 0.95)
    problem, table, query, spec, source, sample, _ = problem_for(fraction=0.5, targets=targets)
    settings = GradientSettings(jobs=32, steps=80, refine_steps=40, path=path)
    plan = GradientOptimizer(settings).optimize(problem)
    again = GradientOptimizer(settings).optimize(problem)  # seeded
    assert plan.cascades == again.cascades and plan.cost_per_tuple == again.cost_per_tuple
    assert not plan.fallback and plan.cost_per_tuple < plan.gold_cost_per_tuple
    assert plan.notes["certify"] == "ltt" and plan.notes["path"] == path
    assert (
        plan.certified and "Learn-then-Test" in plan.bounds and "bounds certified: Learn-then-Test" in plan.describe()
    )
    # the truth: gold on the sample, the plan on the other 200 rows, against the gold operator on every row
    precision, recall = whole_result_quality(plan, table, query, spec, source, sample, targets)
    assert precision >= 0.7 and recall >= 0.7


def test_a_sample_too_small_to_split_or_certify_says_so(caplog):
    table, query, spec, source, _ = synthetic(n=400)
    query = Query(query.table, query.filters[:1])
    tiny = np.arange(3)
    problem = plan_problem(table, query, spec, profile_query(table, query, source, spec, sample=tiny,
                                                             progress=False), tiny, Targets(0.7, 0.7))  # fmt: skip
    with caplog.at_level(logging.WARNING):  # the ladder must split the sample; this one cannot be split
        plan = GradientOptimizer(replace(FAST, path="ladder+scores")).optimize(problem)
    assert "too small to split" in caplog.text and "scores path" in caplog.text
    assert "needs >= 9" in caplog.text and plan.fallback and plan.notes["path"] == "scores"
    assert plan.certified and plan.bounds.startswith("exact") and plan.precision_lower == 1.0
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        problem.split(0.1, 0)  # the paper's rule: certified on the tuning tuples, and it says so
    assert "too small to hold out 10%" in caplog.text
    with pytest.raises(ValueError, match="unknown certify rule 'bonferroni'"):
        GradientSettings(certify="bonferroni")
