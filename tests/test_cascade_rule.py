"""The cascade semantics' one home (physical_plan): the UNSURE flow, forcing drawn or expected, and gold's share."""

import numpy as np
import torch
from optimizer_fixtures import problem_for

from stretto.optimizer.certify import cascade_outcome
from stretto.optimizer.gradient import to_plan
from stretto.optimizer.physical_plan import Step, forcing_shares, gold_share, run_steps
from stretto.optimizer.relaxation import Params, SampleTensors, evaluate
from stretto.optimizer.simulate import run_cascade


def test_only_the_unsure_reach_the_next_step_and_nobody_is_scored_once_none_is_left():
    scores = [np.array([2.0, -2.0, 0.0, 0.5]), np.array([9.0, 9.0, 3.0, -3.0]), np.array([0.0] * 4)]
    asked = []

    def scores_of(k, rows):
        asked.append((k, rows.tolist()))
        return scores[k][rows]

    flow = run_steps([Step("a", -1.0, 1.0), Step("b", -1.0, 1.0), Step("c", 0.0, 0.0)], scores_of, np.ones(4, bool))
    assert asked == [(0, [0, 1, 2, 3]), (1, [2, 3])]  # step c never runs: nobody is left
    assert flow.accepted.tolist() == [True, False, True, False]
    assert flow.discarded.tolist() == [False, True, False, True]
    assert flow.decided_by.tolist() == [0, 0, 1, 1] and not flow.unsure.any()
    extract = run_steps([Step("a", -1.0, 1.0)], lambda k, rows: scores[0][rows], np.ones(4, bool), is_extract=True)
    assert not extract.discarded.any() and extract.unsure.tolist() == [False, True, True, True]


def test_drawn_forcing_averages_to_its_expected_form():
    accepted, discarded, unsure = np.array([1.0, 0, 0]), np.array([0, 1.0, 0]), np.array([0, 0, 1.0])
    label = np.array([0.0, 1.0, 1.0])
    draws = np.random.default_rng(0).random((2, 20000, 3))
    realised = [
        gold_share(accepted, discarded, unsure, label, *forcing_shares(0.3, 0.2, d))[0] for d in draws.swapaxes(0, 1)
    ]
    expected, to_gold, _ = gold_share(accepted, discarded, unsure, label, *forcing_shares(0.3, 0.2))
    np.testing.assert_allclose(np.mean(realised, axis=0), expected, atol=0.01)
    np.testing.assert_allclose(to_gold, [0.3, 0.2, 1.0])


def test_relaxation_hard_mode_is_the_one_hard_cascade_per_filter_and_tuple():
    problem, *_ = problem_for(n_filters=2, extract=True)
    t = SampleTensors.of(problem)
    params = Params.random(6, len(problem.operators), t.valid.shape[1], torch.Generator().manual_seed(2))
    params.force_accept.fill_(-40.0)
    params.force_discard.fill_(-40.0)
    hard = evaluate(t, params, hard=True)
    for job in range(6):
        plan = to_plan(t, problem, params, job, "test")
        by_template = {c.template: c for c in plan.cascades}
        for i, f in enumerate(problem.operators):
            keep, _, _ = run_cascade(f, by_template[f.template])
            np.testing.assert_array_equal(hard.keep[job, i].numpy(), keep)
            kept, _ = cascade_outcome(f, by_template[f.template], np.ones((2, len(f.labels))))
            np.testing.assert_array_equal(kept, keep > 0.5)
