"""The one executor's row flow for a single-operator run (a one-step plan per filter) with a scripted operator (no
model): short-circuiting and accounting."""

from dataclasses import dataclass

import numpy as np
import pandas as pd

from stretto.data.table import Table
from stretto.engine import one_operator_plan
from stretto.execution.cascade_executor import execute_plan
from stretto.operators.family import FamilySpec
from stretto.plan.query import Query
from stretto.plan.template import Template
from stretto.profiling.operator import ScoredRows


@dataclass
class ScriptedFilter:
    """Scores each row by a fixed lookup on its text, and records which rows it was asked about."""

    template: Template
    table: dict[str, float]
    threshold: float = 0.0
    identity: str = "scripted"

    def __post_init__(self):
        self.seen: list[str] = []

    def score(self, rows: pd.DataFrame, *, progress: bool = True) -> ScoredRows:
        texts = rows["text"].tolist()
        self.seen += texts
        n = len(texts)
        scores = np.array([self.table[t] - self.threshold for t in texts], dtype=np.float32)
        return ScoredRows(scores, np.full(n, 0.5), np.full(n, 10), 0)


class Scripted:
    """An operator source: each template's scripted operator, whatever identity is asked for."""

    def __init__(self, *operators: ScriptedFilter) -> None:
        self.by_template = {op.template.text: op for op in operators}

    def operator(self, template, identity):
        return self.by_template[template.text]


ONE = FamilySpec.of({"gold": {"model": "qwen-0.5b"}})  # one member: one operator, on every row


def run_one(table, query, *operators):
    return execute_plan(table, one_operator_plan(query, ONE), Scripted(*operators), progress=False)


def test_second_filter_sees_only_rows_the_first_kept():
    df = pd.DataFrame({"text": ["a", "b", "c", "d"]})
    table = Table("t", df, text_columns=("text",))
    query = Query.of("t", [{"template": "{text} is one"}, {"template": "{text} is two"}])
    first = ScriptedFilter(query.filters[0].template, {"a": 2.0, "b": -1.0, "c": 0.5, "d": 3.0})
    second = ScriptedFilter(query.filters[1].template, {"a": 1.0, "c": -0.2, "d": 0.1}, threshold=0.05)
    run = run_one(table, query, first, second)
    assert second.seen == ["a", "c", "d"]
    assert run.result["text"].tolist() == ["a", "d"]
    assert np.isnan(run.scores[1][1])  # "b" never reached the second filter
    assert [(s.tuples, s.kept) for s in run.stats] == [(4, 3), (3, 2)]
    assert run.stats[1].seconds == 1.5 and run.stats[1].tokens == 30


def test_no_rows_left_skips_later_filters():
    df = pd.DataFrame({"text": ["a", "b"]})
    table = Table("t", df, text_columns=("text",))
    query = Query.of("t", [{"template": "{text} x"}, {"template": "{text} y"}])
    first = ScriptedFilter(query.filters[0].template, {"a": -1.0, "b": -2.0})
    second = ScriptedFilter(query.filters[1].template, {})
    run = run_one(table, query, first, second)
    assert not run.kept.any() and second.seen == [] and len(run.stats) == 1  # the second never ran
    assert np.isnan(run.scores[1]).all()
