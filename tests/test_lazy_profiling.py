"""Lazy profiling (gold labels first; the cheap operators only when a plan could be certified) and the
count-based sample (profiling.size)."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest
from optimizer_fixtures import synthetic

from stretto.engine import run_query
from stretto.engine.query import PILOT_MIN
from stretto.errors import OptimizerError
from stretto.optimizer.gradient import PAPER_RULE, GradientOptimizer, GradientSettings
from stretto.plan.targets import Targets
from stretto.profiling.sample import profiling_sample

FAST = {"jobs": 8, "steps": 20, "refine_steps": 10, "retries": 0}


class Recording:
    """An operator source that counts the rows each operator identity is asked to score."""

    def __init__(self, inner) -> None:
        self.inner = inner
        self.rows: Counter[str] = Counter()
        self.asked: Counter[tuple[str, str, int]] = Counter()  # (template, identity, row index) -> times

    def operator(self, template, identity):
        op = self.inner.operator(template, identity)
        outer = self

        class Counted:
            def __init__(self) -> None:
                self.template = op.template

            @property
            def identity(self) -> str:
                return op.identity

            def score(self, rows, *, progress=True):
                outer.rows[identity] += len(rows)
                outer.asked.update((template.text, identity, int(i)) for i in rows.index)
                return op.score(rows, progress=progress)

        return Counted()


def _run(targets, fraction=0.1, settings=None, optimizer=None, rates=(0.5, 0.6, 0.7), **kw):
    table, query, spec, source, _ = synthetic(rates=rates)
    recording = Recording(source)
    optimizer = optimizer or GradientOptimizer(GradientSettings(**FAST, **(settings or {})))
    run = run_query(table, query, recording, spec, targets, optimizer, sample_fraction=fraction, progress=False, **kw)
    return run, recording, table, query, spec, source


@pytest.mark.parametrize("settings", [{}, PAPER_RULE], ids=["ltt", "paper"])
def test_too_few_gold_positives_skip_the_cheap_operators(settings, caplog):
    # 40 sample rows, about 8 of them in the result (0.5 * 0.6 * 0.7): recall 0.97 at alpha 0.95 needs ~99.
    targets = Targets(0.9, 0.97, 0.95)
    with caplog.at_level("WARNING"):
        run, recording, table, query, spec, source = _run(targets, settings=settings)
    gold = spec.gold_identity
    cheap = [i for i in spec.identities if i != gold]
    assert all(recording.rows[c] == 0 for c in cheap)  # never asked, on the sample or the table
    assert "the cheap operators were not profiled" in caplog.text
    assert run.plan.notes.get("lazy") is True and run.plan.certified
    assert all(c.steps == () and c.gold == gold for c in run.plan.cascades)
    assert set(run.profile.records["operator"]) == {gold}
    # Labels only where they matter (under the paper's rule too: it certifies the conjunction's counts as well):
    # each (filter, sample row) asked at most once and fewer than all, every sample row of gold's result asked on
    # every filter (its label is exact), and profiling charged the labels asked, nothing else.
    alone = np.logical_and.reduce(
        [source.operator(f.template, gold).score(table.df, progress=False).scores > 0.0 for f in query.operators]
    )
    sample_asks = np.array([[recording.asked[(f.template.text, gold, int(i))] for i in run.sample]
                            for f in query.operators])  # fmt: skip
    assert sample_asks.max() == 1 and 0 < sample_asks.sum() < 0.9 * sample_asks.size
    assert (sample_asks[:, alone[run.sample]] == 1).all()
    assert run.profile_seconds == pytest.approx(0.100 * sample_asks.sum())  # gold costs 0.1 s a row
    # The result equals gold alone's, and the sample's rows reuse their gold labels (the executor asks none).
    assert np.array_equal(run.execution.kept, alone)
    assert recording.rows[gold] == pytest.approx(sample_asks.sum() + run.execution.seconds / 0.100)


def test_labels_and_a_fallback_run_the_filters_most_selective_first_whatever_the_query_order():
    # The query lists its filters least selective first (90%, 60%, 15% pass): gold alone in that order asks about
    # 1 + .9 + .54 rows per row; most selective first, about 1 + .15 + .09.
    targets = Targets(0.9, 0.97, 0.95)
    run, recording, table, query, spec, source = _run(targets, fraction=0.2, rates=(0.9, 0.6, 0.15))
    gold = spec.gold_identity
    assert run.plan.notes.get("lazy") is True
    said = [source.operator(f.template, gold).score(table.df, progress=False).scores > 0.0 for f in query.operators]
    pilot = [i for i in run.sample if all(recording.asked[(f.template.text, gold, int(i))] for f in query.operators)]
    assert PILOT_MIN <= len(pilot) < len(run.sample) * 0.3  # the pilot, and the rows gold keeps
    rarest = query.operators[2].template.text
    assert all(recording.asked[(rarest, gold, int(i))] == 1 for i in run.sample)  # labelled first, on every row
    assert run.plan.cascades[0].template == rarest  # and run first by the fallback
    rest = np.setdiff1d(np.arange(len(table)), run.sample)
    in_query_order = len(rest) + said[0][rest].sum() + (said[0] & said[1])[rest].sum()
    assert run.execution.seconds < 0.100 * in_query_order * 0.6  # 0.54 here
    assert np.array_equal(run.execution.kept, np.logical_and.reduce(said))


def test_a_certifiable_query_profiles_every_operator():
    run, recording, _, query, spec, _ = _run(Targets(0.6, 0.6, 0.9), fraction=0.5)
    assert "lazy" not in run.plan.notes
    for identity in spec.identities:  # the cheap ones on every sample row; gold's labels only where they matter
        wanted = len(run.sample) * (1 if identity == spec.gold_identity else len(query.operators))
        assert recording.rows[identity] >= wanted
    assert set(run.profile.records["operator"]) == set(spec.identities)
    assert run.problem.operators[0].candidates  # the optimizer saw the cheap operators


def test_systems_without_the_check_profile_everything():
    class Plain:
        name = "plain"

        def __init__(self) -> None:
            self.inner = GradientOptimizer(GradientSettings(**FAST))

        def optimize(self, problem):
            return self.inner.optimize(problem)

    run, recording, _, query, spec, _ = _run(Targets(0.9, 0.97, 0.95), optimizer=Plain())
    assert all(recording.rows[i] >= len(run.sample) * len(query.operators) for i in spec.identities)
    assert run.plan.fallback


def test_needs_candidates_agrees_with_optimize():
    """Where the check says no, optimize() on the fully profiled sample falls back to gold alone too."""
    from optimizer_fixtures import problem_for

    for targets, fraction, needed in [(Targets(0.9, 0.97, 0.95), 0.1, False), (Targets(0.6, 0.6, 0.9), 0.5, True)]:
        problem = problem_for(targets=targets, fraction=fraction)[0]
        optimizer = GradientOptimizer(GradientSettings(**FAST))
        assert optimizer.needs_candidates(problem) is needed
        if not needed:
            assert optimizer.optimize(problem).fallback


def test_sample_size_gives_that_many_rows():
    assert len(profiling_sample(400, 0.15, 0, size=37)) == 37
    assert len(profiling_sample(400, 0.15, 0, size=400)) == 400
    assert len(profiling_sample(400, 0.15, 0)) == 60
    run, *_ = _run(Targets(0.6, 0.6, 0.9), fraction=0.5, sample_size=37)
    assert len(run.sample) == 37 == run.problem.n_tuples


@pytest.mark.parametrize("size", [401, 0, -3, 2.5, True])
def test_a_bad_sample_size_is_a_clear_error(size):
    with pytest.raises(OptimizerError, match="sample size"):
        profiling_sample(400, 0.15, 0, size=size)


def test_gold_only_takes_no_sample_and_pays_gold_on_every_row():
    from stretto.baselines.gold_only import GoldOnlyOptimizer

    run, recording, table, query, spec, source = _run(Targets(0.7, 0.7, 0.95), optimizer=GoldOnlyOptimizer())
    gold = spec.gold_identity
    assert run.profile_seconds == 0.0 and run.optimize_seconds == 0.0
    assert len(run.sample) == 0 and run.problem is None and run.profile.records.empty
    assert all(recording.rows[i] == 0 for i in spec.identities if i != gold)
    # gold on every row, filters in query order, each asked only on the rows the earlier ones kept
    alive, expected = np.ones(len(table), dtype=bool), 0.0
    for f in query.operators:
        scored = source.operator(f.template, gold).score(table.df, progress=False)
        expected += float(scored.seconds[alive].sum())
        alive &= scored.scores > 0.0
    assert run.execution.seconds == pytest.approx(expected)
    assert run.total_seconds == pytest.approx(expected)
    assert np.array_equal(run.execution.kept, alive)
    assert run.plan.system == "gold_only" and all(c.steps == () for c in run.plan.cascades)


def test_unasked_later_labels_keep_recall_counts_exact_and_precision_counts_pessimistic():
    from stretto.engine import plan_problem, profile_query
    from stretto.engine.query import gold_labels
    from stretto.optimizer.certify import plan_counts
    from stretto.optimizer.physical_plan import Cascade, Step
    from stretto.optimizer.simulate import plan_on_sample
    from stretto.profiling.profile import Profile

    table, query, spec, source, _ = synthetic()
    sample, gold = profiling_sample(len(table), 0.25, 3), spec.gold_identity
    cheap = [i for i in spec.identities if i != gold]
    full = profile_query(table, query, source, spec, sample=sample, progress=False)
    where = Profile.concat([
        gold_labels(table, query, source, gold, sample=sample, progress=False),
        profile_query(table, query, source, spec, sample=sample, progress=False, identities=cheap),
    ])  # fmt: skip
    asked = (where.records.operator == gold).sum()
    assert asked < (full.records.operator == gold).sum()  # fewer labels ...
    targets = Targets(0.7, 0.7, 0.95)
    p_full, p_where = (plan_problem(table, query, spec, p, sample, targets) for p in (full, where))
    np.testing.assert_array_equal(p_full.labels, p_where.labels)  # ... the same answer set
    rng = np.random.default_rng(0)
    worse = 0
    for _ in range(200):  # random cascades with accepts and discards: the same TP and FN, FP never fewer
        cascades = []
        for f in p_full.operators:
            i = int(rng.integers(len(f.candidates)))
            low, high = np.sort(rng.choice(f.scores[i], 2))
            cascades.append(Cascade(f.template, (Step(f.candidates[i], float(low), float(high)),), f.gold))
        plan = plan_on_sample(p_full, cascades, "t")
        exact, counted = plan_counts(p_full, plan), plan_counts(p_where, plan)
        assert (counted.tp, counted.fn) == (exact.tp, exact.fn) and counted.fp >= exact.fp
        worse += counted.fp > exact.fp
    assert 0 < worse < 200  # unasked labels do cost precision counts sometimes (not always)


def test_the_sample_grows_only_while_it_certifies_nothing_and_no_label_is_asked_twice():
    targets = Targets(0.6, 0.6, 0.9)
    run, recording, _, query, spec, _ = _run(targets, fraction=0.05, sample_growth=3)
    sizes, looks = run.plan.notes["sample_sizes"], run.plan.notes["sample_looks"]
    assert sizes == [20, 40, 80, 160] and 1 < looks <= 4 and len(run.sample) == sizes[looks - 1]
    assert not run.plan.fallback and run.plan.certified  # a larger sample certified what 20 rows could not
    assert run.problem.targets.alpha == pytest.approx(1 - 0.1 / 4)  # each look at (1 - alpha) / looks
    gold = spec.gold_identity
    asked = [recording.asked[(f.template.text, gold, int(i))] for f in query.operators for i in run.sample]
    assert max(asked) == 1  # a row labelled at an earlier look is not asked again (by profiling or execution)
    # the same query without growth: the 20-row sample certifies nothing
    small, *_ = _run(targets, fraction=0.05)
    assert small.plan.fallback or small.plan.notes.get("lazy")
