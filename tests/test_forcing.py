"""The executor's forcing draws: a plan's force_accept / force_discard fractions send that share of a cheap
operator's decisions to the gold operator, on fresh draws per seed (a scripted source, no model)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from stretto.data.table import Table
from stretto.execution.cascade_executor import execute_plan
from stretto.optimizer.physical_plan import Cascade, PhysicalPlan, Step
from stretto.plan.template import Template
from stretto.profiling.operator import ScoredRows

TEMPLATE = "{text} is one"
N = 4000


@dataclass
class Scripted:
    """Cheap: +1 on even rows, -1 on odd rows. Gold: yes on rows divisible by 3. Records what gold was asked."""

    template: Template
    identity: str
    asked: list[int]

    def score(self, rows: pd.DataFrame, *, progress: bool = True) -> ScoredRows:
        ids = rows["id"].to_numpy()
        if self.identity == "gold":
            self.asked += ids.tolist()
            scores = np.where(ids % 3 == 0, 1.0, -1.0)
        else:
            scores = np.where(ids % 2 == 0, 1.0, -1.0)
        n = len(ids)
        return ScoredRows(scores.astype(np.float32), np.full(n, 0.01), np.full(n, 5), 0)


class Source:
    def __init__(self) -> None:
        self.asked: list[int] = []

    def operator(self, template: Template, identity: str) -> Scripted:
        return Scripted(template, identity, self.asked)


def run(force_accept: float, force_discard: float, seed: int) -> tuple[np.ndarray, list[int]]:
    table = Table("t", pd.DataFrame({"id": np.arange(N), "text": [f"row {i}" for i in range(N)]}), ("text",))
    cascade = Cascade(TEMPLATE, (Step("cheap", 0.0, 0.0),), "gold", force_accept, force_discard)
    source = Source()
    plan = PhysicalPlan((cascade,), 0.0, 0.0, 0.0, 0.0)
    execution = execute_plan(table, plan, source, seed=seed, progress=False)
    return execution.kept, sorted(source.asked)


def test_no_forcing_sends_nothing_to_gold():
    kept, asked = run(0.0, 0.0, seed=0)
    assert asked == [] and kept.sum() == N // 2 and kept[::2].all()


@pytest.mark.parametrize(("force_accept", "force_discard"), [(0.25, 0.0), (0.0, 0.4), (0.1, 0.3)])
def test_forced_shares_go_to_gold_and_gold_decides_them(force_accept, force_discard):
    kept, asked = run(force_accept, force_discard, seed=1)
    asked = np.array(asked)
    accepted, discarded = asked[asked % 2 == 0], asked[asked % 2 == 1]
    for share, forced in ((force_accept, accepted), (force_discard, discarded)):
        # the number sent to gold is Binomial(N/2, share): a two-sided 1e-4 test, fails on a wrong share
        p = stats.binomtest(len(forced), N // 2, share).pvalue if share > 0 else float(len(forced) == 0)
        assert p > 1e-4, (share, len(forced))
    expected = np.arange(N) % 2 == 0
    expected[asked] = asked % 3 == 0  # rows sent to gold take gold's answer
    np.testing.assert_array_equal(kept, expected)


def test_each_seed_forces_other_rows():
    _, first = run(0.2, 0.2, seed=1)
    _, again = run(0.2, 0.2, seed=1)
    _, other = run(0.2, 0.2, seed=2)
    assert first == again and first != other
    overlap = len(set(first) & set(other)) / len(first)
    assert overlap < 0.4  # independent draws overlap in about 20% of the forced rows
