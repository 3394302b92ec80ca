"""Labels from another source than the gold operator (a labelled column, a CSV of rows a person labelled): the
gold operator becomes one more fallible operator, the certification holds against the labels, the sample's rows
are answered by them, and a query not even gold alone can meet is refused before it runs."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pandas as pd
import pytest
import torch
from optimizer_fixtures import problem_for, synthetic
from test_lazy_profiling import FAST, Recording

from stretto.data.table import Table
from stretto.engine import run_query
from stretto.engine.label_source import sample_truth
from stretto.engine.query import plan_problem
from stretto.errors import QueryError, UncertifiableTargets
from stretto.optimizer.certify import gold_alone, plan_counts
from stretto.optimizer.gradient import PAPER_RULE, GradientOptimizer, GradientSettings, path_kinds, to_plan
from stretto.optimizer.relaxation import Params, SampleTensors, evaluate
from stretto.optimizer.simulate import gold_only_plan, simulate
from stretto.plan.answers import same_answer
from stretto.plan.query import LabelSpec, Query, SemFilter
from stretto.plan.targets import Targets
from stretto.plan.template import parse_template
from stretto.profiling.profile import row_keys
from stretto.profiling.sample import profiling_sample


def with_truth(problem, flip: float, seed: int = 0):
    """The problem with labels that disagree with the gold operator on a `flip` share of each filter's tuples."""
    rng = np.random.default_rng(seed)
    operators = []
    for f in problem.operators:
        truth = np.where(rng.random(len(f.labels)) < flip, ~f.labels, f.labels)
        operators.append(replace(f, labels=truth, gold_says=f.labels))
    return replace(problem, operators=tuple(operators))


def assert_hard_relaxation_counts_as_simulated(problem, seed: int) -> None:
    """Random plans (no forcing): the relaxation's hard mode counts the TP / FP / FN the plan's simulation does."""
    t = SampleTensors.of(problem)
    params = Params.random(4, len(problem.operators), t.valid.shape[1], torch.Generator().manual_seed(seed))
    params.force_accept.fill_(-40.0)
    params.force_discard.fill_(-40.0)
    hard = evaluate(t, params, hard=True)
    for job in range(4):
        simulated = simulate(problem, to_plan(t, problem, params, job, "t"))
        assert (simulated.tp, simulated.fp, simulated.fn) == pytest.approx(
            (float(hard.tp[job]), float(hard.fp[job]), float(hard.fn[job]))
        )


def test_the_gold_operator_errs_like_any_operator_against_the_truth():
    problem, *_ = problem_for(n_filters=2, fraction=0.5)
    truthful = with_truth(problem, 0.2)
    assert truthful.against_truth and not problem.against_truth
    gold = gold_only_plan(truthful, "t")
    run = simulate(truthful, gold)
    says = np.logical_and.reduce([f.gold_says for f in truthful.operators])
    truth = truthful.labels
    assert (run.tp, run.fp, run.fn) == ((says & truth).sum(), (says & ~truth).sum(), (~says & truth).sum())
    assert run.fp > 0 and run.fn > 0  # gold alone is not exact against the truth
    assert plan_counts(truthful, gold).tp == run.tp
    # the relaxation's hard mode is the same cascade: gold's say decides what reaches the result
    assert_hard_relaxation_counts_as_simulated(truthful, seed=1)


def test_gold_alone_is_certified_against_the_truth_or_refused_with_its_figures():
    problem, *_ = problem_for(n_filters=1, fraction=0.5, targets=Targets(0.7, 0.7, 0.95))
    good = gold_alone(with_truth(problem, 0.02), "t")
    assert good.certified and good.fallback and 0.7 <= good.precision_lower < 1.0 and good.recall_lower < 1.0
    assert "tested against them" in good.bounds
    assert gold_alone(problem, "t").precision_lower == 1.0  # against its own answers: exact
    with pytest.raises(UncertifiableTargets, match=r"even the gold operator alone .* measured precision 0\.\d+ and "
                       r"recall 0\.\d+ .* certified only at precision >= 0\.\d+, recall >= 0\.\d+"):  # fmt: skip
        gold_alone(with_truth(problem, 0.3), "t")
    with pytest.raises(UncertifiableTargets):  # the optimizer refuses before it descends
        GradientOptimizer(GradientSettings(jobs=8, steps=20, refine_steps=10)).optimize(with_truth(problem, 0.3))
    with pytest.raises(Exception, match="Learn-then-Test only"):
        GradientOptimizer(GradientSettings(**PAPER_RULE)).optimize(with_truth(problem, 0.02))


def labelled(n_flip: float, seed: int = 0):
    """The synthetic table with a label column per filter that disagrees with gold on a `n_flip` share of rows."""
    table, query, spec, source, _ = synthetic()
    rng = np.random.default_rng(seed)
    df = table.df.copy()
    for i, f in enumerate(query.filters):
        said = source.operator(f.template, spec.gold_identity).score(table.df, progress=False).scores > 0
        df[f"truth{i}"] = np.where(rng.random(len(df)) < n_flip, ~said, said).astype(int)
    filters = [replace(f, label=LabelSpec(f"truth{i}", 1)) for i, f in enumerate(query.filters)]
    return Table("docs", df, text_columns=["text"]), Query(query.table, tuple(filters), ()), spec, source


def test_a_labelled_column_certifies_against_the_truth_and_answers_the_sample():
    table, query, spec, source = labelled(0.03)
    recording = Recording(source)
    targets = Targets(0.6, 0.6, 0.9)
    run = run_query(table, query, recording, spec, targets, GradientOptimizer(GradientSettings(**FAST)),
                    sample_fraction=0.5, progress=False, labels="column")  # fmt: skip
    truth = np.logical_and.reduce([f.label.truth(table.df).to_numpy() for f in query.filters])
    # the sample's rows are answered by their labels, not by the gold operator
    np.testing.assert_array_equal(run.execution.kept[run.sample], truth[run.sample])
    # the gold operator answered every sample row of every filter (a fallible operator to measure), charged
    gold = spec.gold_identity
    for f in query.filters:
        asked = {i for t, op, i in recording.asked if t == f.template.text and op == gold}
        assert set(run.sample.tolist()) <= asked
    assert run.plan.certified and run.plan.notes["label_source"] == "column"
    assert run.problem.against_truth
    # the default path against labels from another source adds the ladder (no embeddings here: no learned path)
    assert run.plan.notes["path"] == "ladder+scores"
    assert path_kinds("auto") == ["learned", "scores"] and path_kinds("auto", against_truth=True)[0] == "ladder"


def test_a_query_gold_alone_cannot_meet_against_the_labels_is_refused_before_it_runs():
    table, query, spec, source = labelled(0.35)
    recording = Recording(source)
    with pytest.raises(UncertifiableTargets, match="even the gold operator alone"):
        run_query(table, query, recording, spec, Targets(0.8, 0.8, 0.95), GradientOptimizer(GradientSettings(**FAST)),
                  sample_fraction=0.3, progress=False, labels="column")  # fmt: skip
    sample = set(profiling_sample(len(table), 0.3, 0).tolist())
    assert {i for _, _, i in recording.asked} <= sample  # nothing outside the sample was asked: nothing executed


def test_a_labels_file_makes_its_rows_the_sample(tmp_path):
    table, query, spec, source = labelled(0.0)
    rows = np.sort(np.random.default_rng(5).choice(len(table), 160, replace=False))
    labels = table.df.iloc[rows][[f.label.column for f in query.filters]].assign(row=rows)
    path = tmp_path / "mine.csv"
    labels.to_csv(path, index=False)
    truth = sample_truth(table, query, str(path))
    assert np.isnan(truth[query.filters[0].template.text]).sum() == len(table) - 160
    run = run_query(table, query, source, spec, Targets(0.6, 0.6, 0.9), GradientOptimizer(GradientSettings(**FAST)),
                    progress=False, labels=str(path))  # fmt: skip
    np.testing.assert_array_equal(run.sample, rows)
    with pytest.raises(QueryError, match="no 'row' column"):
        pd.DataFrame({"id": [1]}).to_csv(tmp_path / "bad.csv", index=False)
        sample_truth(table, query, str(tmp_path / "bad.csv"))
    with pytest.raises(QueryError, match=r"profiling\.labels='colum'"):
        sample_truth(table, query, "colum")


def test_systems_without_a_sample_refuse_labels_from_another_source():
    from stretto.baselines.gold_only import GoldOnlyOptimizer
    from stretto.baselines.lotus import LotusOptimizer

    table, query, spec, source = labelled(0.0)
    for optimizer in (LotusOptimizer(), GoldOnlyOptimizer()):
        with pytest.raises(QueryError, match="cannot use labels from another source"):
            run_query(table, query, source, spec, Targets(0.6, 0.6, 0.9), optimizer, progress=False, labels="column")


def test_a_comparison_with_labels_from_another_source_names_the_systems_that_cannot_use_them():
    from stretto.experiment.preflight import ConfigError, check_systems

    check_systems(["stretto", "abacus"], "column")
    with pytest.raises(ConfigError, match=r"\['lotus', 'gold_only'\] take no profiling sample"):
        check_systems(["stretto", "lotus", "gold_only"], "column")


def test_coverage_against_the_truth_with_a_fallible_gold_operator():
    """Seeded simulation with known truth: the cheap operator's score is N(2, 1) on true positives, N(0, 1) on
    negatives; the gold operator says yes on 92% of positives and 3% of negatives (independently). Every plan's
    population precision and recall against the truth are closed-form. Certified runs (against the sampled
    truth labels, gold alone tested on its own share of 1 - alpha) miss a target in <= 1 - alpha of runs within a
    Clopper-Pearson interval; a query whose targets nothing can reach is refused in (nearly) every run."""
    from scipy import stats

    from stretto.optimizer.problem import OperatorSample, PlanProblem

    rng = np.random.default_rng(7)
    mu, pi, g1, g0, n, runs = 2.0, 0.3, 0.92, 0.03, 300, 200
    sf = stats.norm.sf

    def population(lower: float) -> tuple[float, float]:
        """Discard scores below `lower`, gold decides the rest: precision and recall against the truth."""
        kept_pos, kept_neg = pi * sf(lower - mu) * g1, (1 - pi) * sf(lower) * g0
        return kept_pos / (kept_pos + kept_neg), sf(lower - mu) * g1

    def certify(targets: Targets) -> tuple[int, int, int]:
        certified = misses = refused = 0
        optimizer = GradientOptimizer(GradientSettings(path="scores", learned=False))
        for _ in range(runs):
            truth = rng.random(n) < pi
            says = np.where(truth, rng.random(n) < g1, rng.random(n) < g0)
            scores = rng.normal(size=n) + mu * truth
            f = OperatorSample("{t} x", ("cheap",), scores[None], np.array([0.02]), "gold", 0.1, truth,
                               gold_says=says)  # fmt: skip
            try:
                plan = optimizer.optimize(PlanProblem((f,), targets, 0.1))
            except UncertifiableTargets:
                refused += 1
                continue
            steps = plan.cascades[0].steps
            p, r = population(steps[0].lower if steps else -np.inf)
            certified += 1
            misses += p < targets.precision or r < targets.recall
        return certified, misses, refused

    certified, misses, refused = certify(Targets(0.8, 0.8, 0.95))
    assert certified > runs * 0.8 and refused < runs * 0.2  # 172 and 28 of 200
    lower = 0.0 if misses == 0 else float(stats.beta.ppf(0.005, misses, certified - misses + 1))
    assert lower <= 0.05, f"{misses} misses of {certified} certified runs"
    _, _, refused = certify(Targets(0.8, 0.95, 0.95))  # gold's own recall is .92: nothing can reach .95
    assert refused >= runs * 0.95


# ------------------------------------------------------------------------------ extracts against their truth
def labelled_with_extract(gold_wrong: float, seed: int = 0):
    """`labelled(0)` plus the extract, with a column of its true animals on which the gold operator's value is
    wrong on a `gold_wrong` share of rows (and the truth is "no value" on a few rows gold answers); the replay
    source, the gold operator's values and the recording."""
    from optimizer_fixtures import ANIMALS, EXTRACT, synthetic

    table, query, spec, source = labelled(0.0)
    _, with_extract, _, source, recording = synthetic(extract=True)
    rng = np.random.default_rng(seed)
    gold = recording.lookup(row_keys(table.df, parse_template(EXTRACT)), parse_template(EXTRACT), spec.gold_identity)[
        "value"
    ].to_numpy(object)
    wrong = rng.random(len(gold)) < gold_wrong
    truth = np.where(wrong, ANIMALS[(np.searchsorted(ANIMALS, gold.astype(str)) + 1) % 3], gold).astype(object)
    truth[rng.random(len(gold)) < 0.02] = None  # the document does not say
    df = table.df.assign(animal_truth=[None if t is None else t.upper() for t in truth])  # case is not judged
    extracts = tuple(replace(e, label="animal_truth") for e in with_extract.extracts)
    table = Table("docs", df, text_columns=["text"])
    return table, Query(query.table, query.filters, extracts), spec, source, gold, recording


def test_an_extracts_truth_judges_every_value_the_gold_operators_too():
    table, query, spec, _, gold, recording = labelled_with_extract(0.1)
    truth = sample_truth(table, query, "column")
    values = truth[query.extracts[0].template.text]
    assert values.dtype == object and set(values) - {None} <= {"cat", "dog", "bird"}  # stored as answers are
    sample = np.arange(len(table))
    problem = plan_problem(table, query, spec, recording, sample, Targets(0.6, 0.6, 0.9), truth=truth)
    f = problem.operators[-1]
    assert f.is_extract and problem.against_truth and f.gold_says is None
    expected = np.array([same_answer(g, t) for g, t in zip(gold, values, strict=True)])
    np.testing.assert_array_equal(f.gold_correct, expected)
    assert 0.85 < f.gold_correct.mean() < 0.95
    # gold alone is charged its wrong values: every tuple it keeps with a wrong value is a false positive
    run = simulate(problem, gold_only_plan(problem, "t"))
    kept = np.logical_and.reduce([g.gold_decisions for g in problem.operators[:-1]])
    belongs = problem.labels
    assert run.tp == (kept & belongs & f.gold_correct).sum() and run.fp == (kept & ~(belongs & f.gold_correct)).sum()
    assert plan_counts(problem, gold_only_plan(problem, "t")).tp == run.tp  # the certification counts the same
    assert_hard_relaxation_counts_as_simulated(problem, seed=2)  # the relaxation's hard mode counts the same


def test_a_query_with_an_extract_runs_against_its_truth_and_answers_the_sample_with_it():
    table, query, spec, source, *_ = labelled_with_extract(0.02)
    run = run_query(table, query, source, spec, Targets(0.6, 0.6, 0.9), GradientOptimizer(GradientSettings(**FAST)),
                    sample_fraction=0.5, progress=False, labels="column")  # fmt: skip
    assert run.plan.certified and run.problem.against_truth and run.plan.notes["label_source"] == "column"
    truth = sample_truth(table, query, "column")[query.extracts[0].template.text]
    output = query.extracts[0].template.output
    kept = run.sample[run.execution.kept[run.sample]]
    assert len(kept) > 30  # 3 filters passing .5 x .6 x .7 of 200 sample rows
    values = run.execution.result.loc[kept, output].to_numpy(object)
    np.testing.assert_array_equal(values, truth[kept])  # the sample's rows carry their true values
    table, query, spec, source, *_ = labelled_with_extract(0.4)  # gold's values wrong on 40% of rows
    with pytest.raises(UncertifiableTargets, match="even the gold operator alone"):
        run_query(table, query, source, spec, Targets(0.8, 0.8, 0.95), GradientOptimizer(GradientSettings(**FAST)),
                  sample_fraction=0.5, progress=False, labels="column")  # fmt: skip


def test_truth_for_extracts_needs_their_label_columns_and_comes_from_columns_only(tmp_path):
    table, query, *_ = labelled_with_extract(0.0)
    bare = Query(query.table, query.filters, tuple(replace(e, label=None) for e in query.extracts))
    with pytest.raises(QueryError, match="needs a label column for every extract"):
        sample_truth(table, bare, "column")
    path = tmp_path / "mine.csv"
    table.df.assign(row=np.arange(len(table))).to_csv(path, index=False)
    with pytest.raises(QueryError, match="a labels file is for filters only"):
        sample_truth(table, query, str(path))


def test_an_empty_label_cell_leaves_the_row_unlabelled_and_out_of_the_sample():
    table, query, spec, source = labelled(0.0)
    column = query.filters[0].label.column
    blank = np.random.default_rng(3).random(len(table)) < 0.25
    df = table.df.assign(**{column: table.df[column].astype(float).where(~blank)})
    table = Table("docs", df, text_columns=["text"])
    truth = sample_truth(table, query, "column")
    assert np.isnan(truth[query.filters[0].template.text]).sum() == blank.sum()
    run = run_query(table, query, source, spec, Targets(0.6, 0.6, 0.9), GradientOptimizer(GradientSettings(**FAST)),
                    sample_fraction=0.5, progress=False, labels="column")  # fmt: skip
    drawn = profiling_sample(len(table), 0.5, 0)  # the sample is drawn as usual; its unlabelled rows are left out
    np.testing.assert_array_equal(run.sample, drawn[~blank[drawn]])


def test_a_label_above_a_number_labels_every_row_of_the_sample():
    """An `above` label's empty cell is a known "no" (the document gives no number), so no row is unlabelled."""
    points = pd.array([25, None, 3, None, 40], dtype="Int64")
    table = Table("pairs", pd.DataFrame({"text": list("abcde"), "points": points}), text_columns=["text"])
    query = Query("pairs", (SemFilter.of("{text} scored more than 20", {"column": "points", "above": 20}),))
    truth = sample_truth(table, query, "column")
    assert truth["{text} scored more than 20"].tolist() == [1.0, 0.0, 0.0, 0.0, 1.0]
