"""One way to report long phases: a bar when asked for, log lines with the phase, n/N and a rate."""

import logging

import numpy as np
import pandas as pd

import stretto.progress
from stretto.plan.template import Template
from stretto.profiling.operator import ScoredRows
from stretto.profiling.sample import profile_rows
from stretto.progress import Progress, phase


def test_log_lines_name_the_phase_count_and_rate(caplog, capsys, monkeypatch):
    monkeypatch.setattr(stretto.progress, "LOG_EVERY_S", 0.0)
    monkeypatch.setattr(stretto.progress, "QUIET_S", 0.0)
    with (
        caplog.at_level(logging.INFO, logger="stretto.progress"),
        phase("executing op@1"),
        Progress(3, "scoring", unit="row", enabled=False) as bar,
    ):
        for _ in range(3):
            bar.update()
    lines = [r.getMessage() for r in caplog.records]
    assert [line.split(" in ")[0] for line in lines] == [f"executing op@1: scoring: {n}/3 rows" for n in (1, 2, 3)]
    assert all(line.endswith("rows/s)") for line in lines) and not capsys.readouterr().err
    with Progress(2, "scoring", enabled=True) as bar:  # the bar, on stderr
        bar.update(2)
    assert "scoring: 100%" in capsys.readouterr().err


def test_short_phases_stay_quiet_in_the_log(caplog):
    with caplog.at_level(logging.INFO, logger="stretto.progress"), Progress(5, "scoring", enabled=False) as bar:
        bar.update(5)
    assert not caplog.records  # under QUIET_S seconds, and no interval passed


def test_profiling_names_each_operator_and_its_position(caplog, monkeypatch):
    monkeypatch.setattr(stretto.progress, "QUIET_S", 0.0)

    class Op:
        template = Template("{text} is positive")

        def __init__(self, name):
            self.identity = name

        def score(self, rows, *, progress=True):
            with Progress(len(rows), self.template.text, enabled=progress) as bar:
                bar.update(len(rows))
            n = len(rows)
            return ScoredRows(np.zeros(n, np.float32), np.ones(n), np.ones(n, np.int64), 0)

    with caplog.at_level(logging.INFO, logger="stretto.progress"):
        profile_rows(pd.DataFrame({"text": ["a", "b"]}), [Op("small@1"), Op("gold@1")], progress=False)
    assert "profiling small@1 (1/2): {text} is positive: 2/2 rows" in caplog.text
    assert "profiling gold@1 (2/2): {text} is positive: 2/2 rows" in caplog.text
