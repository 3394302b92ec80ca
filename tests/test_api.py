"""The front door: `stretto.query(...)` and `df.stretto`, on the bundled movie reviews replayed from recordings."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import stretto
from stretto.data.datasets import load_dataset
from stretto.errors import QueryError
from stretto.operators.learned import is_learned

README = Path(__file__).resolve().parents[1] / "README.md"
FAST = {"jobs": 8, "steps": 40, "refine_steps": 20}  # a quick optimizer: these tests check the plumbing
POSITIVE = "{reviewtext} is clearly positive"


def readme_snippet() -> str:
    section = README.read_text().split("### From Python", 1)[1]
    return re.search(r"```python\n(.*?)```", section, re.S).group(1)


def test_the_readme_snippet_runs_and_answers_within_its_targets(capsys):
    code = readme_snippet()
    assert len(code.strip().splitlines()) <= 5  # the guarantee path in at most five lines
    namespace: dict = {}
    exec(compile(code, str(README), "exec"), namespace)
    answer = namespace["answer"]
    out = capsys.readouterr().out
    assert "stretto plan: predicted precision >=" in out and "Costs(" in out
    vs_gold = answer.quality("gold")
    assert len(answer.result) == answer.kept.sum() > 0
    if not answer.plan.fallback:  # a certified cascade: the rows it kept meet the targets against gold
        assert vs_gold.precision >= 0.7 and vs_gold.recall >= 0.7
    assert answer.costs.total_seconds == pytest.approx(
        answer.costs.profile_seconds + answer.costs.optimize_seconds + answer.costs.execution_seconds
    )


def test_a_dataframe_and_the_accessor_give_the_query_its_table_and_the_same_answer():
    reviews = load_dataset("movie")["reviews"]
    recording = Path(__file__).resolve().parents[1] / "recordings" / "movie.parquet"
    options = dict(precision=0.7, recall=0.7, backend="replay", recording=recording, settings=FAST, progress=False)
    direct = stretto.query(reviews.df, [POSITIVE], **options)
    chained = reviews.df.stretto.sem_filter(POSITIVE).run(**options)
    assert direct.table.text_columns == ("reviewtext",) and len(direct.table) == len(reviews)
    np.testing.assert_array_equal(direct.kept, chained.kept)
    assert direct.plan.cascades == chained.plan.cascades
    truth = (reviews.df.scoresentiment == "POSITIVE").to_numpy()
    assert direct.quality(truth) == direct.quality({"column": "scoresentiment", "positive": "POSITIVE"})


def test_systems_run_by_name_on_the_same_profile():
    options = dict(precision=0.7, recall=0.7, backend="replay", progress=False)
    gold = stretto.query("movie", [POSITIVE], system="gold_only", **options)
    lotus = stretto.query("movie", [POSITIVE], system="lotus", **options)
    assert gold.plan.system != lotus.plan.system
    assert gold.quality("gold").precision == 1.0 and gold.quality("gold").recall == 1.0
    # each is charged what it needs: gold alone takes no sample; LOTUS labels its importance sample of the table
    assert gold.costs.profile_seconds == 0.0 and len(gold.run.sample) == 0 and gold.run.problem is None
    assert lotus.costs.profile_seconds > 0.0 and set(lotus.run.profile.records.operator) == {lotus.family.gold_identity}
    assert len(lotus.run.sample) == lotus.plan.notes["labels"] > 0
    family = {**FAST, "profile": "family"}  # the LLM operators profiled, not the learned ones alone
    ablation = stretto.query("movie", [POSITIVE], system="no_compression", settings=family, **options)
    # every LLM operator it may use is uncompressed (a learned operator names the LLM operator it reads, if any)
    candidates = ablation.run.problem.operators[0].candidates
    assert candidates and all("@0.00" in c for c in candidates if not is_learned(c) or "+" in c)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"system": "lotsu"}, "unknown system 'lotsu'"),
        ({"family": "nosuch"}, "unknown family 'nosuch'"),
        ({"backend": "tpu"}, "unknown backend 'tpu'"),
        ({"precision": 1.5}, "outside the open interval"),
        ({"settings": {"jobz": 3}}, "system 'stretto'"),
    ],
)
def test_bad_arguments_are_refused_by_name_before_any_work(kwargs, message):
    with pytest.raises(QueryError, match=message):
        stretto.query("movie", [POSITIVE], **{"backend": "replay", **kwargs})


def test_quality_refuses_labels_it_cannot_use():
    answer = stretto.query("movie", [POSITIVE], system="gold_only", backend="replay", progress=False)
    with pytest.raises(QueryError, match="declare none"):
        answer.quality()
    with pytest.raises(QueryError, match="one per row"):
        answer.quality(np.ones(3, bool))
    with pytest.raises(QueryError, match="never occurs"):
        answer.quality({"column": "scoresentiment", "positive": "POSITIV"})
    assert isinstance(answer.result, pd.DataFrame)
