"""The backends' one batching-and-timing loop: sort order, batch limits, groups, shared seconds, input order."""

from __future__ import annotations

import itertools
from types import SimpleNamespace

import numpy as np

from stretto.backends import batching
from stretto.backends.batching import timed_batches
from stretto.progress import Progress


def _run(monkeypatch, n: int, **kwargs) -> tuple[list, np.ndarray, list[list[int]]]:
    clock = itertools.count()  # batch b takes b seconds
    ticks = iter(t for b in clock for t in (b * b, b * b + b))
    monkeypatch.setattr(batching, "time", SimpleNamespace(perf_counter=lambda: float(next(ticks))))
    batches: list[list[int]] = []

    def run(rows: list[int]) -> list[str]:
        batches.append(list(rows))
        return [f"row {i}" for i in rows]

    with Progress(n, "test", enabled=False) as bar:
        outputs, seconds = timed_batches(n, run, bar=bar, **kwargs)
        assert bar.n == n
    return outputs, seconds, batches


def test_rows_are_batched_in_sort_order_and_come_back_in_input_order(monkeypatch):
    lengths = [5, 1, 4, 1, 3, 2, 9]
    outputs, seconds, batches = _run(monkeypatch, len(lengths), batch_size=3, sort_key=lengths)
    assert batches == [[1, 3, 5], [4, 2, 0], [6]]  # stable: the two rows of length 1 keep their input order
    assert outputs == [f"row {i}" for i in range(len(lengths))]
    # batch b takes b seconds, shared by its rows
    expected = np.zeros(len(lengths))
    for b, rows in enumerate(batches):
        expected[rows] = b / len(rows)
    np.testing.assert_array_equal(seconds, expected)
    assert seconds.dtype == np.float64


def test_without_a_sort_key_rows_keep_input_order(monkeypatch):
    _, _, batches = _run(monkeypatch, 5, batch_size=2)
    assert batches == [[0, 1], [2, 3], [4]]


def test_a_batch_never_spans_two_groups_and_adds_to_seconds_already_spent(monkeypatch):
    questions = ["b", "a", "b", "a", "a", "b"]
    sizes = [1, 3, 2, 2, 1, 1]
    key = list(zip(questions, sizes, strict=True))
    spent = np.full(6, 10.0)
    _, seconds, batches = _run(monkeypatch, 6, batch_size=2, sort_key=key, group=questions, seconds=spent)
    assert batches == [[4, 3], [1], [0, 5], [2]]
    assert seconds is spent
    np.testing.assert_array_equal(seconds[[4, 3, 1, 0, 5, 2]], [10.0, 10.0, 11.0, 11.0, 11.0, 13.0])
