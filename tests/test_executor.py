"""The executor's row flow with a scripted operator (no model): short-circuiting and accounting."""

from dataclasses import dataclass

import numpy as np
import pandas as pd

from stretto.data.table import Table
from stretto.execution.filter_executor import execute_filters
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
        scores = np.array([self.table[t] for t in texts], dtype=np.float32)
        return ScoredRows(scores, np.full(n, 0.5), np.full(n, 10), 0)


def test_second_filter_sees_only_rows_the_first_kept():
    df = pd.DataFrame({"text": ["a", "b", "c", "d"]})
    table = Table("t", df, text_columns=("text",))
    query = Query.of("t", [{"template": "{text} is one"}, {"template": "{text} is two"}])
    first = ScriptedFilter(query.filters[0].template, {"a": 2.0, "b": -1.0, "c": 0.5, "d": 3.0})
    second = ScriptedFilter(query.filters[1].template, {"a": 1.0, "c": -0.2, "d": 0.1}, threshold=0.05)
    run = execute_filters(table, query, [first, second], progress=False)
    assert second.seen == ["a", "c", "d"]
    assert run.result["text"].tolist() == ["a", "d"]
    assert np.isnan(run.scores["score_1"].iloc[1])  # "b" never reached the second filter
    assert [(s.rows_seen, s.rows_kept) for s in run.stats] == [(4, 3), (3, 2)]
    assert run.stats[1].seconds == 1.5 and run.stats[1].tokens == 30


def test_no_rows_left_skips_later_filters():
    df = pd.DataFrame({"text": ["a", "b"]})
    table = Table("t", df, text_columns=("text",))
    query = Query.of("t", [{"template": "{text} x"}, {"template": "{text} y"}])
    first = ScriptedFilter(query.filters[0].template, {"a": -1.0, "b": -2.0})
    second = ScriptedFilter(query.filters[1].template, {})
    run = execute_filters(table, query, [first, second], progress=False)
    assert run.rows_out == 0 and second.seen == [] and run.stats[1].rows_seen == 0
