"""Semantic extract: templates, answer normalisation, and extracts in the optimizer, simulator and executor."""

import numpy as np
import pytest
import torch
from optimizer_fixtures import EXTRACT, problem_for, whole_result_quality

from stretto.errors import QueryError
from stretto.evaluation.metrics import quality
from stretto.execution.cascade_executor import execute_plan
from stretto.optimizer.gradient import GradientOptimizer, GradientSettings, to_plan
from stretto.optimizer.physical_plan import Cascade, PhysicalPlan, Step
from stretto.optimizer.relaxation import Params, SampleTensors, evaluate
from stretto.optimizer.simulate import simulate
from stretto.plan.answers import normalize_answer, same_answer
from stretto.plan.query import Query, SemExtract
from stretto.plan.targets import Targets
from stretto.plan.template import ExtractTemplate, Template, parse_template


def test_templates_name_their_output_and_choices():
    t = parse_template("the [sentiment] (positive/negative) of {reviewtext}")
    assert isinstance(t, ExtractTemplate) and t.output == "sentiment" and t.choices == ("positive", "negative")
    assert t.request({"reviewtext": "the text"}) == "the sentiment of the text"
    assert parse_template("the movie [title] mentioned in {reviewtext}").choices == ()
    assert type(parse_template("{reviewtext} is positive")) is Template
    with pytest.raises(QueryError, match="exactly one output"):
        ExtractTemplate("the [a] and [b] of {text}")
    with pytest.raises(QueryError, match="names no output"):
        SemExtract.of("{text} is positive")
    with pytest.raises(QueryError, match="reads"):
        ExtractTemplate("the [text] of {text}")


@pytest.mark.parametrize(
    ("raw", "choices", "expected"),
    [
        ("  The Matrix.\nIt is a film", (), "The Matrix"),
        ('"Inception"', (), "Inception"),
        ("Title: Heat", (), "Heat"),
        ("None", (), None),
        ("null.", (), None),
        ("N/A", ("yes", "no"), None),
        ("", (), None),
        ("Positive", ("positive", "negative"), "positive"),
        ("positive review", ("positive", "negative"), "positive"),
        ("It is negative.", ("positive", "negative"), "negative"),
        ("mixed", ("positive", "negative"), "mixed"),  # no class forced: counts as wrong against gold
        ("positive and negative", ("positive", "negative"), "positive"),  # starts with one choice
    ],
)
def test_answers_are_normalised(raw, choices, expected):
    assert normalize_answer(raw, choices, label="title") == expected


def test_values_agree_ignoring_case_and_spacing_and_none_only_matches_none():
    assert same_answer("The  Matrix", "the matrix")
    assert same_answer(None, None)
    assert not same_answer(None, "none at all") and not same_answer("Heat", None)


def test_query_checks_extract_columns_and_outputs(tmp_path):
    import pandas as pd

    from stretto.data.table import Table

    table = Table("reviews", pd.DataFrame({"text": ["a"], "title": ["t"]}), text_columns=["text"])
    with pytest.raises(QueryError, match="overwrite column 'title'"):
        Query.of("reviews", [], [{"template": "the [title] of {text}"}]).check(table)
    with pytest.raises(QueryError, match=r"column\(s\) \['body'\]"):
        Query.of("reviews", [], [{"template": "the [name] of {body}"}]).check(table)
    with pytest.raises(QueryError, match="same output twice"):
        Query.of("reviews", [], [{"template": "the [x] of {text}"}, {"template": "one [x] in {text}"}])
    with pytest.raises(QueryError, match="no semantic filter or extract"):
        Query.of("reviews", [])


def test_a_wrong_value_is_a_false_positive_and_a_false_negative():
    kept, truth = np.array([1, 1, 1, 0], bool), np.array([1, 1, 0, 1], bool)
    q = quality(kept, truth, right=np.array([1, 0, 1, 1], bool))
    assert (q.precision, q.recall) == (pytest.approx(1 / 3), pytest.approx(1 / 3))


def test_extract_relaxation_is_the_hard_cascade_the_simulator_and_the_executor():
    problem, table, _query, _spec, source, sample, _ = problem_for(n_filters=1, extract=True)
    assert [f.is_extract for f in problem.operators] == [False, True]
    assert problem.operators[1].labels.all() and problem.operators[1].correct.mean() < 1.0
    t = SampleTensors.of(problem)
    params = Params.random(6, 2, t.valid.shape[1], torch.Generator().manual_seed(1))
    params.force_accept.fill_(-40.0)
    params.force_discard.fill_(-40.0)
    soft, hard = evaluate(t, params, tau_pick=1e-5, tau=1e-5), evaluate(t, params, hard=True)
    for a, b in [(soft.tp, hard.tp), (soft.fp, hard.fp), (soft.fn, hard.fn), (soft.cost, hard.cost)]:
        torch.testing.assert_close(a, b, atol=1e-3, rtol=1e-4)
    assert torch.all(hard.keep[:, 1] == 1.0)  # an extract never drops a tuple
    sample_table = table.sample(len(sample), seed=0)
    sample_table.df = table.df.iloc[sample]
    gold = source.operator(parse_template(EXTRACT), problem.operators[1].gold).score(sample_table.df, progress=False)
    for job in range(6):
        plan = to_plan(t, problem, params, job, "test")
        assert plan.cascades[-1].template == EXTRACT  # nothing to gain from extracting before filtering
        assert all(s.lower == -np.inf for s in plan.cascades[-1].steps)
        run = simulate(problem, plan)
        assert (run.tp, run.fp, run.fn) == pytest.approx(
            (float(hard.tp[job]), float(hard.fp[job]), float(hard.fn[job]))
        )
        executed = execute_plan(sample_table, plan, source, progress=False)
        kept, right = executed.kept, np.zeros(len(sample), dtype=bool)
        truth = np.array(gold.values, dtype=object)[kept]
        right[kept] = [same_answer(v, g) for v, g in zip(executed.result["animal"], truth, strict=True)]
        q = quality(kept, problem.labels, right)
        hits = q.support * q.recall
        assert (hits, q.predicted - hits, q.support - hits) == pytest.approx((run.tp, run.fp, run.fn))


def test_gold_only_extract_is_always_right_and_a_cheap_one_costs_its_errors():
    problem, *_ = problem_for(n_filters=1, extract=True)
    f, e = problem.operators
    gold = PhysicalPlan((Cascade.gold_only(f.template, f.gold), Cascade.gold_only(e.template, e.gold)), 0, 0, 0, 0)
    run = simulate(problem, gold)
    assert run.fp == 0 and run.fn == 0
    cheap = Cascade(e.template, (Step(e.candidates[0], -np.inf, -np.inf),), e.gold)  # accept every cheap value
    run = simulate(problem, PhysicalPlan((gold.cascades[0], cheap), 0, 0, 0, 0))
    wrong = int((~e.correct[0] & problem.labels).sum())
    assert run.fp == pytest.approx(wrong) and run.fn == pytest.approx(wrong)


def test_optimizer_plans_filter_plus_extract_that_meets_the_targets_on_held_out_tuples():
    targets = Targets(0.75, 0.75, 0.9)
    problem, table, query, spec, source, sample, _ = problem_for(
        n_filters=1, extract=True, targets=targets, fraction=0.5
    )
    # the ladder path (the descent) is the one that may give an extract a cheap extractor; the band paths leave
    # extracts to the gold operator
    settings = GradientSettings(jobs=32, steps=80, refine_steps=40, path="ladder+scores")
    plan = GradientOptimizer(settings).optimize(problem)
    assert not plan.fallback and plan.cost_per_tuple < plan.gold_cost_per_tuple
    # the truth: gold on the sample, the plan on the other half, against the gold operator's decisions and values
    precision, recall = whole_result_quality(plan, table, query, spec, source, sample, targets)
    assert precision >= 0.75 and recall >= 0.75
    assert any(c.steps for c in plan.cascades if c.template == EXTRACT)  # a cheap extractor earns its place
