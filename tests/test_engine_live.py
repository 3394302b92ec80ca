"""The optimizer's whole loop on real models: profile a sample live, optimize, execute on stored KV caches."""

import numpy as np
import pytest

from stretto.data.datasets import load_dataset
from stretto.engine import run_query
from stretto.operators.family import FamilySpec, LiveFamily
from stretto.optimizer.gradient import GradientOptimizer, GradientSettings
from stretto.plan.query import Query
from stretto.plan.targets import Targets
from stretto.profiling.profile import ProfileStore


@pytest.mark.model
def test_live_family_profiles_optimizes_and_executes_on_real_models(tmp_path, qwen05):
    table = load_dataset("movie", limit=24)["reviews"]
    query = Query.of("reviews", [{"template": "{reviewtext} is clearly positive"}])
    spec = FamilySpec.of(
        {
            "models": [{"model": "qwen-0.5b", "variants": [{"press": "knorm", "ratio": 0.5}]}],
            "gold": {"model": "qwen-0.5b", "press": "none", "ratio": 0.0},  # a cheap stand-in gold for speed
        }
    )
    family = LiveFamily(spec, cache_dir=tmp_path, loaded={"qwen-0.5b": qwen05})  # the session's model
    store = ProfileStore(tmp_path / "profiles")
    settings = GradientSettings(jobs=16, steps=40, refine_steps=20)

    def answer(source=family, profiles=store):
        return run_query(
            table,
            query,
            source,
            spec,
            Targets(0.3, 0.3),  # low enough that the 12-row sample could certify a plan: every operator is profiled
            GradientOptimizer(settings),
            sample_fraction=0.5,
            store=profiles,
            progress=False,
        )

    # A fresh table: a query builds no cache. The compressed operator (which exists only as a stored cache) is
    # left out, and the uncompressed gold reads every row from scratch.
    cold = answer(LiveFamily(spec, cache_dir=tmp_path / "cold", loaded={"qwen-0.5b": qwen05}), None)
    knorm = spec.identities[0]
    assert cold.plan.notes["left_out_without_stored_caches"] == [knorm] and not cold.problem.operators[0].candidates
    assert not list((tmp_path / "cold" / "kv").rglob("*.*"))  # nothing stored
    # `stretto cache build`'s builder prepares the table; every operator is then a candidate
    (built,) = family.build_caches([query.filters[0].template], table.df, progress=False)
    assert built[2].documents == 24 and built[2].built == 24
    run = answer()
    assert "left_out_without_stored_caches" not in run.plan.notes
    assert len(run.sample) == 12 and run.profile_seconds > 0
    # the 12 unsampled rows were scored live; the sample's answers came from the profile
    assert sum(s.tuples for s in run.execution.stats if s.operator == run.plan.cascades[0].gold) <= 12
    assert run.execution.stats[0].tuples == 12 and run.execution.seconds > 0
    again = answer()
    np.testing.assert_array_equal(run.execution.kept, again.execution.kept)  # profiles and caches reused
    assert len(list((tmp_path / "profiles").glob("*.parquet"))) == 2
