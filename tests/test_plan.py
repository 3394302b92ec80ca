import pytest

from stretto.data.table import Table
from stretto.errors import QueryError
from stretto.plan.query import LabelSpec, Query, SemFilter
from stretto.plan.targets import Targets
from stretto.plan.template import Template


def test_template_derives_columns_and_claim():
    t = Template("{reviewtext} is clearly positive and {title} is named")
    assert t.columns == ("reviewtext", "title")
    assert t.claim() == "the reviewtext is clearly positive and the title is named"
    assert t.claim({"title": "the movie"}) == "the reviewtext is clearly positive and the movie is named"


@pytest.mark.parametrize("text", ["is clearly positive", "", "no braces at all"])
def test_template_without_column_is_refused(text):
    with pytest.raises(QueryError, match="names no column"):
        Template(text)


def test_template_malformed_placeholder():
    with pytest.raises(QueryError, match="malformed"):
        Template("{reviewtext} is {clearly positive")


def test_unknown_column_is_named():
    with pytest.raises(QueryError, match=r"\['review'\].*available columns"):
        Template("{review} is positive").check_columns(["reviewtext", "id"], "reviews")


@pytest.mark.parametrize("field,value", [("precision", 0.0), ("precision", 1.0), ("recall", 1.5), ("alpha", -0.1)])
def test_targets_outside_open_unit_interval(field, value):
    with pytest.raises(QueryError, match=f"target {field}="):
        Targets(**{field: value})


def test_targets_met():
    t = Targets(0.7, 0.8)
    assert t.met(0.7, 0.8) and not t.met(0.69, 0.9)


def _table():
    import pandas as pd

    df = pd.DataFrame({"reviewtext": ["good", "bad"], "sentiment": ["POSITIVE", "NEGATIVE"]})
    return Table("reviews", df, text_columns=("reviewtext",), label_columns=("sentiment",))


def test_query_checks_table_columns_and_labels():
    table = _table()
    label = {"column": "sentiment", "positive": "POSITIVE"}
    Query.of("reviews", [{"template": "{reviewtext} is good", "label": label}]).check(table)
    with pytest.raises(QueryError, match="label column 'stars'"):
        Query.of("reviews", [{"template": "{reviewtext} is good", "label": {"column": "stars"}}]).check(table)
    with pytest.raises(QueryError, match="refers to column"):
        Query.of("reviews", [{"template": "{body} is good"}]).check(table)
    with pytest.raises(QueryError, match="given table 'reviews'"):
        Query.of("emails", [{"template": "{reviewtext} is good"}]).check(table)
    with pytest.raises(QueryError, match="no semantic filter or extract"):
        Query("reviews", ())


def test_label_truth_is_case_insensitive_string_match():
    truth = LabelSpec("sentiment", "positive").truth(_table().df)
    assert truth.tolist() == [True, False]
    assert SemFilter.of("{reviewtext} x").label is None


def test_workload_conjunctions_and_bad_specs():
    from stretto.plan.workload import Workload

    w = Workload.of(
        {"dataset": "movie", "table": "reviews", "filters": [{"template": f"{{reviewtext}} is {x}"} for x in "abcd"]}
    )
    queries = w.conjunctions([2, 3])
    assert len(queries) == 6 + 4 and all(q.table == "reviews" for q in queries)
    assert len({tuple(f.template.text for f in q.filters) for q in queries}) == 10
    with pytest.raises(QueryError, match=r"filters per query \[5\] must lie in 0\.\.4"):
        w.conjunctions([5])
    with pytest.raises(QueryError, match="a workload needs 'table'"):
        Workload.of({"dataset": "movie", "filters": []})
