"""Baselines: threshold procedures on worked examples, and the sampled systems' plans on the same profiles as
Stretto (LOTUS and BARGAIN label the whole table as they go: tests/test_whole_table_baselines.py)."""

import numpy as np
import pytest
from optimizer_fixtures import problem_for

from stretto.baselines.abacus import AbacusOptimizer
from stretto.baselines.bargain import BargainOptimizer
from stretto.baselines.gold_only import GoldOnlyOptimizer
from stretto.baselines.lotus import calibrate, learn_thresholds, quantile_edges, raw_thresholds
from stretto.engine.on_table import labels_as_it_goes
from stretto.errors import QueryError
from stretto.evaluation.metrics import quality
from stretto.evaluation.plan_quality import check_targets
from stretto.execution.cascade_executor import execute_plan
from stretto.execution.gold import gold_decisions
from stretto.experiment.systems import make_optimizer
from stretto.optimizer.gradient import GradientSettings
from stretto.optimizer.physical_plan import DISCARD, KEEP, UNSURE, decide
from stretto.optimizer.simulate import simulate
from stretto.plan.targets import Targets
from stretto.profiling.operator import OperatorId
from stretto.systems import OPTIMIZERS, optimizer_types

# A worked example, and what lotus-ai 1.2.4's own learn_cascade_thresholds / calibrate_llm_logprobs return on it
# (computed in a separate virtualenv with the real package, which cannot share ours: see stretto/baselines/lotus.py).
SCORES = [0.625, 0.897, 0.776, 0.225, 0.3, 0.874, 0.005, 0.821, 0.797, 0.468, 0.303, 0.278, 0.255, 0.445,
          0.505, 0.553, 0.996, 0.793, 0.622, 0.989, 0.215, 0.16, 0.613, 0.044, 0.036, 0.515, 0.466, 0.917,
          0.629, 0.514, 0.497, 0.248, 0.012, 0.192, 0.692, 0.201, 0.37, 0.004, 0.83, 0.154]  # fmt: skip
LABELS = [1, 1, 1, 0, 0, 1, 0, 1, 1, 0, 0, 0, 1, 1, 1, 1, 1, 1, 0, 1, 0, 0, 0, 0, 0, 1, 1, 1, 0, 1, 0, 0, 0, 0, 1,
          0, 0, 0, 1, 1]  # fmt: skip
CORRECTION = [0.692, 1.428, 1.052, 0.681, 1.384, 1.142, 1.07, 0.876, 0.911, 0.739, 0.538, 1.376, 0.968, 1.048,
              0.822, 1.251, 0.525, 0.872, 0.53, 0.623, 1.467, 1.158, 0.928, 1.024, 1.373, 0.844, 1.09, 1.184,
              0.855, 1.019, 1.265, 1.409, 0.651, 1.433, 0.505, 1.253, 1.311, 0.637, 0.919, 1.315]  # fmt: skip
CALIBRATED_10 = [0.6, 0.9, 0.7, 0.2, 0.3, 0.8, 0.0, 0.8, 0.8, 0.4, 0.3, 0.3, 0.3, 0.4, 0.5, 0.6, 1.0, 0.7, 0.6, 0.9,
                 0.2, 0.1, 0.6, 0.1, 0.0, 0.5, 0.4, 0.9, 0.7, 0.5, 0.5, 0.2, 0.0, 0.1, 0.7, 0.2, 0.4, 0.0, 0.8,
                 0.1]  # fmt: skip


@pytest.mark.parametrize(
    ("correction", "precision", "recall", "delta", "expected"),
    [
        (np.ones(40), 0.8, 0.8, 0.2, (0.692, 0.248)),
        (np.array(CORRECTION), 0.8, 0.8, 0.2, (0.692, 0.044)),
        (np.array(CORRECTION), 0.6, 0.9, 0.05, (0.625, 0.044)),
    ],
)
def test_lotus_thresholds_match_lotus_ai_on_the_worked_example(correction, precision, recall, delta, expected):
    got = learn_thresholds(np.array(SCORES), np.array(LABELS), correction, precision, recall, delta)
    assert got == pytest.approx(expected)


def test_lotus_calibration_matches_lotus_ai():
    scores = np.array(SCORES)
    np.testing.assert_allclose(calibrate(scores, quantile_edges(scores, 10)), CALIBRATED_10)


def test_lotus_raw_thresholds_reproduce_its_decisions_on_calibrated_scores():
    rng = np.random.default_rng(1)
    sample, table = rng.normal(size=150), rng.normal(size=2000)
    edges = quantile_edges(sample, 50)
    calibrated = calibrate(table, edges)
    for tau_pos, tau_neg in [(0.7, 0.3), (1.0, 0.0), (0.5, 0.5), (0.62, 0.62), (0.98, 0.02), (0.0, 0.3), (0.0, 0.0)]:
        lower, upper = raw_thresholds(edges, tau_pos, tau_neg)
        lotus = np.where(calibrated >= tau_pos, KEEP, np.where(calibrated <= tau_neg, DISCARD, UNSURE))
        np.testing.assert_array_equal(decide(table, lower, upper), lotus)


def test_abacus_meets_the_targets_as_point_estimates_on_the_sample():
    problem, *_ = problem_for(n_filters=2, targets=Targets(0.8, 0.8, 0.95))
    plan = AbacusOptimizer().optimize(problem)
    run = simulate(problem, plan)
    q = quality(run.keep.prod(axis=0), problem.labels)
    assert q.precision >= 0.8 and q.recall >= 0.8
    assert not plan.fallback and plan.cost_per_tuple < plan.gold_cost_per_tuple  # the fixture's proxies are useful
    # its bounds are predictions on the labels it was tuned on, and the plan says so
    assert not plan.certified and plan.bounds.startswith("in-sample") and "not certified: in-sample" in plan.describe()
    assert plan.to_dict()["precision_lower"] == plan.precision_lower and plan.to_dict()["certified"] is False


def test_every_system_runs_on_the_same_profile_and_gold_only_is_exact():
    problem, table, query, spec, source, sample, profile = problem_for(n_filters=2)
    gold = gold_decisions(table, query, source, spec)
    seconds = {}
    for name in OPTIMIZERS:
        settings = optimizer_types(name)[1]
        fast = {"jobs": 16, "steps": 40, "refine_steps": 20} if settings is GradientSettings else {}
        optimizer = make_optimizer({"name": name, **fast})
        if labels_as_it_goes(optimizer):  # LOTUS, BARGAIN: no sampled problem (tests/test_whole_table_baselines.py)
            continue
        plan = optimizer.optimize(problem)
        assert plan.system == name and len(plan.cascades) == 2
        run = execute_plan(table, plan, source, sample=sample, profile=profile, seed=0, progress=False)
        seconds[name] = run.seconds
        if name == "gold_only":
            check = check_targets(run.kept, gold, None, problem.targets)
            assert check.gold.precision == 1.0 and check.gold.recall == 1.0
    assert seconds["local"] < seconds["gold_only"] and seconds["stretto"] < seconds["gold_only"]


def test_gold_only_plan_costs_what_gold_costs():
    problem, *_ = problem_for(n_filters=3)
    plan = GoldOnlyOptimizer().optimize(problem)
    assert all(not c.steps for c in plan.cascades)
    assert plan.cost_per_tuple == pytest.approx(plan.gold_cost_per_tuple)


def test_unknown_system_or_setting_is_a_clear_error():
    with pytest.raises(QueryError, match="unknown optimizer 'lotsu'"):
        make_optimizer({"name": "lotsu"})
    with pytest.raises(QueryError, match=r"system 'bargain'.*windw"):
        make_optimizer({"name": "bargain", "windw": 3})
    assert isinstance(make_optimizer({"name": "bargain", "window": 30}), BargainOptimizer)


@pytest.mark.parametrize(
    "identity",
    ["qwen@abc/none@0.00", "org/name/knorm@0.50", "q@1/none@0.00+vllm", "q@1/none@0.00>1.5", "q@1/none@0.00+vllm>-2"],
)
def test_operator_identity_round_trips(identity):
    op = OperatorId.parse(identity)
    assert str(op) == identity and op.model in {"qwen@abc", "org/name", "q@1"}
    assert op.full_cache == identity.split("/")[-1].startswith("none@0.00")


@pytest.mark.parametrize("name", ["cheap", "m/none", "m/none@x", "/none@0.00", "m/none@0.5", "m/none@0.00>1.50"])
def test_operator_identity_rejects_other_names(name):
    assert OperatorId.maybe(name) is None
    with pytest.raises(ValueError, match="not an operator identity"):
        OperatorId.parse(name)
