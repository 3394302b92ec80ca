"""Multi-table pipelines: relational steps, semantic joins with blocking, and clear errors for bad specs."""

import hashlib

import numpy as np
import pandas as pd
import pytest

from stretto.data.table import Table
from stretto.engine.pipeline import join_candidates, run_pipeline
from stretto.errors import QueryError
from stretto.operators.blocking import clustered_recall_lower
from stretto.operators.family import FamilySpec
from stretto.optimizer.gradient import GradientOptimizer, GradientSettings
from stretto.plan.pipeline import Pipeline, scan
from stretto.plan.relational import Join, Limit, Project, Where
from stretto.plan.targets import Targets
from stretto.plan.template import Template
from stretto.profiling.operator import OperatorId, ScoredRows
from stretto.profiling.sample import profiling_sample

FAMILY = FamilySpec.of(
    {
        "models": [{"model": "qwen-0.5b", "variants": [{"press": "none", "ratio": 0.0}]}],
        "gold": {"model": "qwen-1.5b", "press": "none", "ratio": 0.0},
    }
)
FAST = GradientSettings(jobs=32, steps=60, refine_steps=30)


class Answers:
    """An operator answering from a rule: gold is the rule; the cheap one is the rule plus seeded noise."""

    def __init__(self, template, identity, rule, cheap):
        self.template, self.identity, self.rule, self.cheap = template, identity, rule, cheap

    def score(self, rows, *, progress=True):
        truth = np.array([self.rule(self.template.text, r) for r in rows.to_dict("records")], dtype=bool)
        sign = np.where(truth, 1.0, -1.0)
        if self.cheap:
            noise = np.array([int(hashlib.sha1(str(r).encode()).hexdigest()[:6], 16) / 16**6 for r in rows.index])
            score, seconds = sign * 1.5 + (noise - 0.5) * 2.0, 0.01
        else:
            score, seconds = sign * 2.0, 0.1
        n = len(rows)
        return ScoredRows(score.astype(np.float32), np.full(n, seconds), np.full(n, 10), 0)


class RuleSource:
    def __init__(self, rule):
        self.rule = rule

    def operator(self, template, identity):
        return Answers(template, identity, self.rule, identity != FAMILY.gold_identity)


def people_tables():
    rng = np.random.default_rng(0)
    n = 300
    notes = pd.DataFrame(
        {
            "note_id": range(n),
            "person_id": rng.integers(0, 100, n),
            "text": [f"note {i} {'stomach ache' if i % 3 == 0 else 'fine'}" for i in range(n)],
        }
    )
    people = pd.DataFrame({"person_id": range(100), "age": rng.integers(20, 80, 100)})
    return {"notes": Table("notes", notes, text_columns=["text"]), "people": Table("people", people, text_columns=())}


def test_relational_steps_run_around_the_semantic_block():
    tables = people_tables()
    pipeline = (
        scan("notes")
        .sem_filter("{text} describes a digestive problem")
        .join("people", on="person_id")
        .where("age", ">=", 50)
        .project("note_id", "age")
        .limit(10)
    )
    assert pipeline.check({n: list(t.df.columns) for n, t in tables.items()}) == ["note_id", "age"]
    run = run_pipeline(
        pipeline, tables, RuleSource(lambda _t, r: "stomach" in r["text"]), FAMILY, Targets(0.8, 0.8, 0.9),
        GradientOptimizer(FAST), sample_fraction=0.3, progress=False,
    )  # fmt: skip
    assert list(run.result.columns) == ["note_id", "age"] and len(run.result) == 10
    joined = tables["notes"].df.merge(tables["people"].df, on="person_id")
    assert len(run.relation) == int((joined["age"] >= 50).sum())  # filtered before any model ran
    expected = set(joined.loc[(joined["age"] >= 50) & (joined["note_id"] % 3 == 0), "note_id"])
    kept = set(run.run.execution.result["note_id"])
    assert len(kept & expected) / len(expected) >= 0.8 and len(kept & expected) / len(kept) >= 0.8


def test_relational_operators_on_their_own():
    df = pd.DataFrame({"a": [1, 2, 3, None], "b": ["x", "y", "z", "w"]})
    assert Where("a", ">", 1).apply(df, {})["b"].tolist() == ["y", "z"]  # a missing value never passes
    assert Where("b", "in", ["x", "w"]).apply(df, {})["b"].tolist() == ["x", "w"]
    assert Project(("b",)).apply(Limit(2).apply(df, {}), {}).columns.tolist() == ["b"]
    other = pd.DataFrame({"key": [1, 3], "b": ["one", "three"]})
    joined = Join("other", "a", "key").apply(df, {"other": other})
    assert joined[["b", "b_other"]].values.tolist() == [["x", "one"], ["z", "three"]]
    with pytest.raises(QueryError, match="unknown comparison"):
        Where("a", "~", 1)
    with pytest.raises(QueryError, match=r"column\(s\) \['c'\]"):
        Where("c", "==", 1).apply(df, {})
    with pytest.raises(QueryError, match="unknown table 'nope'"):
        Join("nope", "a", "key").apply(df, {"other": other})


class Vectors:
    """A stand-in embedder: a record's vector is one-hot on its restaurant id, blurred for near neighbours."""

    def encode(self, texts, progress=False):
        ids = np.array([int(t.split("#")[1].split(",")[0]) for t in texts])
        vectors = np.zeros((len(texts), 64))
        for i, k in enumerate(ids):
            vectors[i, k % 64] = 1.0
            vectors[i, (k + 1) % 64] = 0.5 + 0.01 * (k % 7)  # neighbours share a little
        return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


def restaurant_tables():
    left = pd.DataFrame({"record": [f"place #{i}, street {i}" for i in range(60)]})
    right = pd.DataFrame({"record": [f"place #{i}, avenue {i}" for i in range(0, 80, 1)]})
    return {"a": Table("a", left, text_columns=["record"]), "b": Table("b", right, text_columns=["record"])}


def same_place(_template, row):
    return row["a.record"].split(",")[0] == row["b.record"].split(",")[0]


def restaurant_join(targets: Targets):
    """(tables, pipeline, run): the two restaurant tables joined on "same place" (k=2, window=6, half the left
    rows audited)."""
    tables = restaurant_tables()
    pipeline = scan("a").sem_join("b", "{a.record} and {b.record} are the same place", k=2, window=6)
    run = run_pipeline(
        pipeline, tables, RuleSource(same_place), FAMILY, targets, GradientOptimizer(FAST),
        sample_fraction=0.5, embedder=Vectors(), progress=False,
    )  # fmt: skip
    return tables, pipeline, run


def test_semantic_join_blocks_audits_and_charges_blocking_recall_to_the_recall_bound():
    tables, pipeline, run = restaurant_join(Targets(0.7, 0.7, 0.9))
    report = run.blocking
    assert report.candidates == 60 * 2 and report.all_pairs == 60 * 80
    assert report.audited_rows == 30 and report.found == 30 and report.missed == 0  # every match ranks first
    assert 0.9 < report.recall_lower < 1.0  # a bound from 30 found, 0 missed, at confidence 1 - 0.1 / 2
    plan = run.run.plan
    assert plan.recall_lower <= report.recall_lower + 1e-9  # blocking's bound caps the plan's
    assert run.run.problem.upstream_recall == report.recall_lower
    # recall's error is split with blocking's bound; precision, which blocking cannot lower, keeps alpha
    assert run.run.problem.targets.alpha == pytest.approx(0.9)
    assert run.run.problem.targets.recall_confidence == pytest.approx(0.95)
    pairs = run.run.execution.result
    found = {(int(lft), int(rgt)) for lft, rgt in zip(pairs["_left"], pairs["_right"], strict=True)}
    truth = {(i, i) for i in range(60)}
    assert len(found & truth) / len(truth) >= 0.7 and len(found & truth) / max(1, len(found)) >= 0.7
    candidates = join_candidates(pipeline.sem_join_step, tables["a"], tables["b"], Vectors(), progress=False)
    pd.testing.assert_frame_equal(candidates, run.relation.df[candidates.columns])  # what the block ran on


def test_relational_blocking_key_is_exact():
    left = pd.DataFrame({"id": [1, 2, 3], "text": ["a", "b", "c"]})
    right = pd.DataFrame({"rid": [1, 1, 3], "note": ["x", "y", "z"]})
    tables = {"l": Table("l", left, text_columns=["text"]), "r": Table("r", right, text_columns=["note"])}
    pipeline = scan("l").sem_join("r", "{l.text} fits {r.note}", on=["id", "rid"])
    run = run_pipeline(
        pipeline, tables, RuleSource(lambda _t, r: r["r.note"] != "y"), FAMILY, Targets(0.5, 0.5, 0.9),
        GradientOptimizer(FAST), sample_fraction=1.0, progress=False,
    )  # fmt: skip
    assert run.blocking.candidates == 3 and run.blocking.recall_lower == 1.0
    assert sorted(run.result["r.note"]) == ["x", "z"]
    candidates = join_candidates(pipeline.sem_join_step, tables["l"], tables["r"])
    assert list(zip(candidates["l.text"], candidates["r.note"], strict=True)) == [("a", "x"), ("a", "y"), ("c", "z")]


COLUMNS = {"fodors": ["name", "addr"], "zagats": ["name", "city"], "reviews": ["text", "id"]}


@pytest.mark.parametrize(
    ("pipeline", "message"),
    [
        (scan("fodors").sem_join("yelp", "{fodors.name} is {yelp.name}"), "unknown table 'yelp'"),
        (scan("fodors").sem_join("zagats", "{fodors.name} is {zagats.phone}"), r"refers to \['zagats.phone'\]"),
        (scan("fodors").sem_join("zagats", "{name} is {zagats.name}"), r"refers to \['name'\]"),
        (scan("nope").sem_filter("{text} is good"), "unknown table 'nope'"),
        (scan("reviews").sem_filter("{body} is good"), r"column\(s\) \['body'\]"),
        (
            scan("reviews").sem_filter("{reviews.text} is ok").sem_join("zagats", "{reviews.text} {zagats.name}"),
            "before",
        ),
        (scan("reviews").sem_extract("the [mood] of {text}").where("mood", "==", "happy"), "extracted column 'mood'"),
        (scan("reviews").join("fodors", on="id"), "key not found"),
        (scan("reviews").where("id", ">", 3), "no semantic step"),
    ],
)
def test_bad_specs_fail_before_any_model_runs(pipeline, message):
    with pytest.raises(QueryError, match=message):
        pipeline.check(COLUMNS)


def test_self_join_needs_aliases_and_yaml_specs_build_the_same_pipeline():
    with pytest.raises(QueryError, match="two different aliases"):
        scan("reviews").sem_join("reviews", "{reviews.text} contradicts {reviews.text}")
    aliased = scan("reviews", alias="a").sem_join("reviews", "{a.text} contradicts {b.text}", right_alias="b")
    aliased.check(COLUMNS)
    spec = {
        "table": "reviews",
        "alias": "a",
        "steps": [{"sem_join": {"right": "reviews", "template": "{a.text} contradicts {b.text}", "right_alias": "b"}}],
    }
    assert Pipeline.of(spec) == aliased
    with pytest.raises(QueryError, match="unknown pipeline step 'sem_sort'"):
        Pipeline.of({"table": "reviews", "steps": [{"sem_sort": "{text}"}]})
    with pytest.raises(QueryError, match="pipeline step 'where'"):
        Pipeline.of({"table": "reviews", "steps": [{"where": {"column": "id"}}]})


def test_the_configured_pipelines_check_against_their_datasets():
    from omegaconf import OmegaConf

    from stretto.data.datasets import load_dataset

    for name, dataset in [("restaurants_match", "restaurants"), ("medical_digestive_patients", "medical")]:
        spec = OmegaConf.to_container(OmegaConf.load(f"conf/pipeline/{name}.yaml"))
        columns = {n: list(t.df.columns) for n, t in load_dataset(dataset).items()}
        assert Pipeline.of(spec).check(columns)
    with pytest.raises(QueryError, match="read as true"):
        Pipeline.of({"table": "symptoms", "steps": [{"join": {"table": "patients", True: "patient_id"}}]})


def test_a_gold_threshold_moves_the_gold_decision_and_renames_the_operator():
    from stretto.operators.family import ThresholdedGold

    config = {
        "models": [{"model": "qwen-0.5b", "variants": [{"press": "none", "ratio": 0.0}]}],
        "gold": {"model": "qwen-1.5b", "press": "none", "ratio": 0.0, "threshold": 1.5},
    }
    spec = FamilySpec.of(config)
    assert spec.gold_threshold == 1.5 and OperatorId.parse(spec.gold_identity).threshold == 1.5
    assert spec.gold_identity in spec.identities and FAMILY.gold_identity not in spec.identities
    inner = RuleSource(lambda _t, r: "stomach" in r["text"]).operator(Template("{text} hurts"), FAMILY.gold_identity)
    gold = ThresholdedGold(inner, 1.5, spec.gold_identity)
    rows = pd.DataFrame({"text": ["stomach ache", "fine"]})
    np.testing.assert_allclose(gold.score(rows).scores, inner.score(rows).scores - 1.5)


def test_a_join_whose_blocking_caps_recall_below_the_target_says_its_result_is_not_certified():
    # 30 audited rows, every match found: B is about .93, below a recall target of .97
    _, _, run = restaurant_join(Targets(0.7, 0.97, 0.9))
    plan = run.run.plan
    assert run.blocking.recall_lower < 0.97 and plan.fallback
    assert not plan.certified and plan.bounds.startswith("NOT certified: blocking's recall is bounded only by")
    assert "not certified" in plan.describe()
    assert run.blocking.assumption.startswith("pairs ranked beyond the top 6 of each left row are taken as non-match")


def test_blocking_says_when_matched_pairs_share_a_left_row():
    """The recall bound counts matched pairs as draws when each audited left row holds at most one match (the
    restaurants); when several share one (sampled in clusters) it counts rows, and the report says so."""
    tables = restaurant_tables()
    twice = pd.DataFrame({"record": [f"place #{i}, {way} {i}" for i in range(40) for way in ("avenue", "road")]})
    tables["b"] = Table("b", twice, text_columns=["record"])
    pipeline = scan("a").sem_join("b", "{a.record} and {b.record} are the same place", k=2, window=6)
    run = run_pipeline(
        pipeline, tables, RuleSource(same_place), FAMILY, Targets(0.7, 0.7, 0.9), GradientOptimizer(FAST),
        sample_fraction=0.5, embedder=Vectors(), progress=False,
    )  # fmt: skip
    audited = profiling_sample(60, 0.5, 0)
    assert run.blocking.audited_rows == len(audited)
    assert run.blocking.shared_rows == int((audited < 40).sum()) > 0  # places 0-39 have two records each
    assert run.blocking.found + run.blocking.missed == 2 * run.blocking.shared_rows
    assert f"{run.blocking.shared_rows} audited left rows hold several matches" in run.blocking.assumption
    assert "counts rows, not pairs" in run.blocking.assumption
    assert run.blocking.missed == 0  # both records of each place rank in its top 2: counted per row
    both = np.where(audited < 40, 2, 0)
    confidence = 1.0 - (1.0 - 0.9) / 2
    assert run.blocking.recall_lower == clustered_recall_lower(both, both, 60, confidence, 6, seed=0)
    _, _, one_each = restaurant_join(Targets(0.7, 0.7, 0.9))
    assert one_each.blocking.shared_rows == 0 and "counts rows" not in one_each.blocking.assumption
