"""The optimizer loop on the committed recording of real model outputs (movie reviews), replayed without a model."""

from pathlib import Path

import numpy as np
import pytest
from omegaconf import OmegaConf

from stretto.data.datasets import load_dataset
from stretto.engine import run_query
from stretto.evaluation.plan_quality import check_targets, human_decisions
from stretto.execution.gold import gold_decisions, gold_only_seconds
from stretto.operators.family import FamilySpec, ReplayFamily
from stretto.optimizer.gradient import GradientOptimizer
from stretto.plan.query import Query
from stretto.plan.targets import Targets
from stretto.profiling.profile import Profile

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def movie():
    table = load_dataset("movie")["reviews"]
    spec = FamilySpec.of(OmegaConf.to_container(OmegaConf.load(ROOT / "conf" / "family" / "default.yaml")))
    return table, spec, ReplayFamily(spec, Profile.load(ROOT / "recordings" / "movie.parquet"))


def test_recording_covers_every_workload_predicate_and_operator(movie):
    table, spec, source = movie
    workload = OmegaConf.load(ROOT / "conf" / "workload" / "movie.yaml")
    recorded = source.recording.records
    assert set(recorded["template"]) == {f.template for f in [*workload.filters, *workload.extracts]}
    extracts = recorded[recorded["template"].isin([e.template for e in workload.extracts])]
    assert extracts["value"].notna().any() and recorded.loc[~recorded.index.isin(extracts.index), "value"].isna().all()
    assert set(recorded["operator"]) == set(spec.identities)
    assert recorded.groupby(["template", "operator"]).size().eq(table.df["reviewtext"].nunique()).all()
    assert (recorded["seconds"] > 0).all()


def test_optimized_query_on_real_recordings_is_cheaper_than_gold_and_accounts_for_every_tuple(movie):
    table, spec, source = movie
    query = Query.of(
        "reviews",
        [
            {
                "template": "{reviewtext} is clearly positive",
                "label": {"column": "scoresentiment", "positive": "POSITIVE"},
            },
            {"template": "{reviewtext} is a rave review"},
        ],
    )
    targets = Targets(0.5, 0.5, 0.95)
    run = run_query(table, query, source, spec, targets, GradientOptimizer(), seed=1, progress=False)
    gold = gold_decisions(table, query, source, spec)
    assert not run.plan.fallback
    assert run.execution.seconds < 0.7 * gold_only_seconds(table, query, source, spec, gold)
    first = [s for s in run.execution.stats if s.template == run.plan.cascades[0].template]
    assert first[0].tuples == len(table) - len(run.sample)
    assert sum(s.kept + s.discarded + s.to_gold for s in first[:-1]) + first[-1].tuples >= first[0].tuples
    check = check_targets(run.execution.kept, gold, human_decisions(table, query, gold), targets)
    assert check.human is not None and 0.0 < check.gold.f1 <= 1.0


def test_the_gold_operator_alone_reproduces_gold_decisions_exactly(movie):
    table, spec, source = movie
    query = Query.of("reviews", [{"template": "{reviewtext} mentions excellent acting"}])
    decisions = gold_decisions(table, query, source, spec)
    gold = source.operator(query.filters[0].template, spec.gold_identity).score(table.df, progress=False)
    np.testing.assert_array_equal(gold.scores > 0, decisions[0])
