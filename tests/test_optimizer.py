import itertools
import logging

import numpy as np
import pandas as pd
import pytest
import torch
from optimizer_fixtures import problem_for, synthetic

from stretto.engine import run_query
from stretto.engine.query import PILOT_MIN
from stretto.errors import OptimizerError, ProfileError, QueryError
from stretto.evaluation.plan_quality import check_targets
from stretto.execution.cascade_executor import execute_plan
from stretto.execution.gold import gold_decisions
from stretto.operators.family import FamilySpec
from stretto.optimizer.ablations import LocalOptimizer, ShiftBudgetOptimizer
from stretto.optimizer.gradient import GradientOptimizer, GradientSettings, streams, to_plan
from stretto.optimizer.guarantees import lower_bound
from stretto.optimizer.problem import OperatorSample, PlanProblem, operator_sample
from stretto.optimizer.relaxation import Params, SampleTensors, evaluate
from stretto.optimizer.reorder import best_order
from stretto.optimizer.simulate import simulate
from stretto.plan.query import Query
from stretto.plan.targets import Targets
from stretto.profiling.sample import profiling_sample

FAST = GradientSettings(jobs=32, steps=80, refine_steps=40)


def test_relaxation_at_zero_temperature_is_the_hard_cascade_and_the_executor():
    problem, table, _query, _spec, source, sample, _ = problem_for(n_filters=3)
    t = SampleTensors.of(problem)
    params = Params.random(6, 3, t.valid.shape[1], torch.Generator().manual_seed(3))
    params.force_accept.fill_(-40.0)  # no forcing: the executor's draws would make it random
    params.force_discard.fill_(-40.0)
    soft = evaluate(t, params, tau_pick=1e-5, tau=1e-5)
    hard = evaluate(t, params, hard=True)
    torch.testing.assert_close(soft.keep, hard.keep, atol=1e-4, rtol=0)
    for a, b in [(soft.tp, hard.tp), (soft.fp, hard.fp), (soft.fn, hard.fn), (soft.cost, hard.cost)]:
        torch.testing.assert_close(a, b, atol=1e-3, rtol=1e-4)

    sample_table = table.sample(len(sample), seed=0)
    sample_table.df = table.df.iloc[sample]
    for job in range(6):
        plan = to_plan(t, problem, params, job, "test")
        run = simulate(problem, plan)
        np.testing.assert_allclose(run.keep, hard.keep[job].numpy(), atol=1e-6)
        executed = execute_plan(sample_table, plan, source, progress=False)
        in_result = hard.keep[job].prod(dim=0).numpy() > 0.5
        np.testing.assert_array_equal(executed.kept, in_result)
        assert executed.seconds == pytest.approx(plan.cost_per_tuple * len(sample), rel=1e-5)
        assert plan.cost_per_tuple <= float(hard.cost[job]) + 1e-9  # the DP order is never worse


def test_paper_rule_is_deterministic_and_its_bounds_come_from_the_held_out_tuples():
    """The paper's rule (`certify=paper`, `bound=beta`): the cheapest job passing on the held-out half, with
    the Beta bounds and the row-share recall blend recomputed here from that half (split by its own stream)."""
    problem, *_ = problem_for(fraction=0.5)
    paper = GradientSettings(jobs=32, steps=80, refine_steps=40, certify="paper", bound="beta", certify_fraction=0.5)
    a = GradientOptimizer(paper).optimize(problem)
    b = GradientOptimizer(paper).optimize(problem)
    assert a.cascades == b.cascades and a.notes["certify"] == "paper"
    assert not a.fallback and a.cost_per_tuple < 0.8 * a.gold_cost_per_tuple
    tune, certify = problem.split(paper.certify_fraction, streams(paper.seed)[0])
    assert tune.n_tuples + certify.n_tuples == problem.n_tuples == 200 and certify.n_tuples == 100
    run = simulate(certify, a)
    precision = float(lower_bound(torch.tensor(run.tp), torch.tensor(run.fp), 0.95))
    recall = problem.sample_fraction + (1 - problem.sample_fraction) * float(
        lower_bound(torch.tensor(run.tp), torch.tensor(run.fn), 0.95)
    )
    assert precision == pytest.approx(a.precision_lower, abs=1e-5)
    assert recall == pytest.approx(a.recall_lower, abs=1e-5)
    with pytest.raises(OptimizerError, match=r"certify fraction 1\.5"):
        problem.split(1.5, 0)


def test_infeasible_targets_fall_back_to_gold_with_a_clear_log_line(caplog):
    problem, *_ = problem_for(targets=Targets(0.995, 0.995, 0.95))
    with caplog.at_level(logging.WARNING):
        plan = GradientOptimizer(GradientSettings(jobs=8, steps=10, refine_steps=5, retries=1)).optimize(problem)
    assert plan.fallback and all(not c.steps for c in plan.cascades)
    assert plan.cost_per_tuple == plan.gold_cost_per_tuple
    assert (
        "cannot be certified by any cascade on the" in caplog.text
        and "falling back to the gold operator alone" in caplog.text
    )


def test_bad_inputs_give_specific_errors():
    with pytest.raises(QueryError, match=r"precision=1\.2"):
        Targets(1.2, 0.5)
    with pytest.raises(OptimizerError, match="sample fraction 0"):
        profiling_sample(100, 0, 0)
    with pytest.raises(OptimizerError, match="empty table"):
        profiling_sample(0, 0.1, 0)
    empty = OperatorSample("{t} x", ("a",), np.zeros((1, 0)), np.ones(1), "gold", 1.0, np.zeros(0, bool))
    with pytest.raises(OptimizerError, match="sample is empty"):
        PlanProblem((empty,), Targets(), 0.1)
    with pytest.raises(OptimizerError, match="names no gold operator"):
        FamilySpec.of({"models": [{"model": "qwen-0.5b", "variants": [{}]}]})
    _problem, _table, query, spec, _source, _sample, profile = problem_for()
    keys = ["nope"]
    with pytest.raises(OptimizerError, match="names no gold"):
        operator_sample(profile, query.filters[0].template, keys, spec.identities, "")
    with pytest.raises(ProfileError, match="never answered"):
        operator_sample(profile, query.filters[0].template, keys, spec.identities, spec.gold_identity)
    with pytest.raises(ProfileError, match=r"no recorded answers of operator 'm@x/none@0\.00'"):
        operator_sample(profile, query.filters[0].template, keys, spec.identities, "m@x/none@0.00")


def test_reorder_dp_matches_brute_force():
    rng = np.random.default_rng(1)
    keep = (rng.random((4, 300)) < rng.random((4, 1))).astype(float)
    seconds = rng.random((4, 300)) * rng.random((4, 1))
    order, cost = best_order(keep, seconds)

    def cost_of(perm):
        reach, total = np.ones(300), 0.0
        for f in perm:
            total += float((reach * seconds[f]).mean())
            reach = reach * keep[f]
        return total

    brute = min(itertools.permutations(range(4)), key=cost_of)
    assert cost == pytest.approx(cost_of(brute)) and cost == pytest.approx(cost_of(order))


def test_local_and_shift_budget_ablations_cover_every_filter_and_shift_never_costs_more():
    problem, *_ = problem_for()
    local = LocalOptimizer(FAST).optimize(problem)
    shifted = ShiftBudgetOptimizer(FAST).optimize(problem)
    for plan in (local, shifted):
        assert sorted(c.template for c in plan.cascades) == sorted(f.template for f in problem.operators)
    assert shifted.cost_per_tuple <= local.cost_per_tuple + 1e-12


def test_engine_on_replay_reuses_sample_answers_and_reports_quality():
    table, query, spec, source, _recording = synthetic()
    query = Query(query.table, query.filters[:2])
    targets = Targets(0.7, 0.7, 0.95)
    run = run_query(table, query, source, spec, targets, GradientOptimizer(FAST), seed=4, progress=False)
    assert run.execution.sample_rows == len(run.sample) == 60
    first = run.execution.stats[0]
    assert first.tuples == len(table) - len(run.sample)  # sample tuples are never scored again
    gold = gold_decisions(table, query, source, spec)
    check = check_targets(run.execution.kept, gold, None, targets)
    assert check.human is None and check.gold.support > 0
    in_sample = np.zeros(len(table), bool)
    in_sample[run.sample] = True
    truth = gold.all(axis=0)
    np.testing.assert_array_equal(run.execution.kept[in_sample], truth[in_sample])  # gold answers the sample
    # the cheap operators on every sample row; gold labels on the first filter of the labels' order everywhere, on
    # the second only where the first's is yes (and on the pilot's rows: engine.query.gold_labels)
    labels = int((run.profile.records["operator"] == spec.gold_identity).sum())
    assert run.profile_seconds == pytest.approx(60 * 2 * (0.010 + 0.006) + labels * 0.100)
    yes = [int(g[run.sample].sum()) for g in gold]
    assert 60 + min(yes) <= labels <= 60 + max(yes) + PILOT_MIN < 120
    assert run.execution.seconds == pytest.approx(sum(s.seconds for s in run.execution.stats))


def test_replay_refuses_an_operator_it_never_recorded():
    from stretto.operators.family import ReplayFamily

    *_, recording = synthetic(n=20)
    spec = FamilySpec.of(
        {
            "models": [{"model": "qwen-0.5b", "variants": [{"press": "tova", "ratio": 0.5}]}],
            "gold": {"model": "qwen-1.5b"},
        }
    )
    with pytest.raises(OptimizerError, match=r"tova@0\.50"):
        ReplayFamily(spec, recording)


def test_profile_store_reuses_answers_and_reprofiles_a_corrupt_file(tmp_path):
    from stretto.profiling.profile import ProfileStore

    table, query, spec, source, _ = synthetic(n=30)
    calls = []

    class Counting:
        def __init__(self, inner):
            self.inner, self.template = inner, inner.template

        @property
        def identity(self):
            return self.inner.identity

        def score(self, rows, progress=True):
            calls.append(len(rows))
            return self.inner.score(rows, progress=progress)

    op = Counting(source.operator(query.filters[0].template, spec.gold_identity))
    store = ProfileStore(tmp_path)
    first = store.scores(table.df, op, progress=False)
    again = store.scores(table.df, op, progress=False)
    pd.testing.assert_frame_equal(first.records, again.records)
    assert calls == [30]
    path = next(tmp_path.glob("*.parquet"))
    path.write_bytes(b"not parquet")
    store.scores(table.df, op, progress=False)
    assert calls == [30, 30]
