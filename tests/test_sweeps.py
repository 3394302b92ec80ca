"""Named sweeps resume: each cell runs once, whatever output folder a rerun gets, after Ctrl-C or a killed process,
and with two sweeps of one name running at once. The jobs are replayed from the bundled recordings (seconds)."""

import multiprocessing
import signal
import socket
import subprocess
import sys
import time

import mlflow
import numpy as np
import pandas as pd
import pytest
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra

import stretto.experiment.run as run_module
from stretto.experiment import cli
from stretto.experiment.plots import runs_frame
from stretto.experiment.result import JobResult, Skipped
from stretto.experiment.sweep import CELL_TAG, OWNER_TAG, PARENT_TAG, cell_key, parent_run, run_cell, this_owner
from stretto.experiment.tracking import experiment_id, log_run
from stretto.profiling.operator import ScoredRows

REPLAY = ["experiment=optimized_movie", "dataset.limit=100", "progress=false"]


def stretto(capsys, *args: str) -> str:
    """`stretto ARGS` in this process (the imports are paid once); its stdout."""
    GlobalHydra.instance().clear()
    capsys.readouterr()  # what an interrupted command printed before
    argv = sys.argv
    sys.argv = ["stretto", *args]
    try:
        cli.main()
    finally:
        sys.argv = argv
        GlobalHydra.instance().clear()
    return capsys.readouterr().out


def ran(out: str) -> int:
    """How many cells a command's output says it ran and logged."""
    return out.count("  MLflow run        ")


def children(tmp_path, experiment: str, sweep: str) -> pd.DataFrame:
    """The sweep's runs: exactly one parent, and its children."""
    mlflow.set_tracking_uri(f"sqlite:///{tmp_path}/mlruns/mlflow.db")
    runs = mlflow.search_runs(experiment_names=[experiment], filter_string=f"tags.`stretto.sweep` = '{sweep}'")
    parents = runs[runs["tags.stretto.role"] == "parent"]
    assert len(parents) == 1
    return runs[runs[f"tags.{PARENT_TAG}"] == parents.run_id.iloc[0]]


def once_each(kids: pd.DataFrame, cells: int) -> None:
    finished = kids[kids.status == "FINISHED"]
    assert len(finished) == cells and finished[f"tags.{CELL_TAG}"].nunique() == cells


def composed(*overrides: str):
    with initialize_config_dir(str(cli.CONF_DIR), version_base="1.3"):
        return compose("config", overrides=[*REPLAY, *overrides])


def test_cell_key_is_what_determines_the_result(tmp_path):
    base = composed("paths.output_dir=/a", "tracking.sweep=s")
    same = [
        "paths.output_dir=/b",  # plot.out follows it
        "plot.out=/c",
        f"paths.mlflow_dir={tmp_path}",
        "paths.cache_dir=/elsewhere",  # profiling.store_dir, kv.store_dir follow it
        "paths.root_dir=/another/checkout",  # backend.recording follows it
        "tracking.experiment=other",
        "tracking.sweep=other",
        "progress=true",
        "compare.systems=[lotus]",
    ]
    for override in same:
        assert cell_key(composed("paths.output_dir=/a", override)) == cell_key(base), override
    differ = [
        "seed=1",
        "targets.precision=0.9",
        "dataset.limit=50",
        "optimizer=lotus",
        "family=no_compression",
        "profiling.fraction=0.2",
        "query=generated",
        "backend=transformers",
    ]
    for override in differ:
        assert cell_key(composed("paths.output_dir=/a", override)) != cell_key(base), override


def test_rerun_in_new_output_folders_skips_every_finished_cell(tmp_path, capsys):
    sweep = ["-m", *REPLAY, "optimizer=lotus,gold_only", "tracking.sweep=s1", f"paths.mlflow_dir={tmp_path}/mlruns"]
    first = stretto(capsys, "run", *sweep, f"hydra.sweep.dir={tmp_path}/first")
    assert ran(first) == 2 and "skipped" not in first
    again = stretto(capsys, "run", *sweep, f"hydra.sweep.dir={tmp_path}/again")
    assert again.count("finished before") == 2
    kids = children(tmp_path, "optimized", "s1")
    assert len(kids) == 2
    once_each(kids, 2)


def test_interrupted_sweep_keeps_its_finished_cells_and_the_next_runs_the_rest(tmp_path, capsys, monkeypatch):
    sweep = ["-m", *REPLAY, "optimizer=lotus", "targets.precision=0.5,0.7,0.9", "tracking.sweep=s2"]
    sweep.append(f"paths.mlflow_dir={tmp_path}/mlruns")
    real = run_module.run_job

    def ctrl_c_in_the_second_cell(cfg, **kwargs):
        if cfg.targets.precision == 0.7:
            signal.raise_signal(signal.SIGINT)  # the user's Ctrl-C, half-way through the sweep
        return real(cfg, **kwargs)

    monkeypatch.setattr(run_module, "run_job", ctrl_c_in_the_second_cell)
    with pytest.raises((KeyboardInterrupt, SystemExit)):
        stretto(capsys, "run", *sweep, f"hydra.sweep.dir={tmp_path}/first")
    kids = children(tmp_path, "optimized", "s2")
    assert sorted(kids.status) == ["FINISHED", "KILLED"]  # the third cell never started

    monkeypatch.setattr(run_module, "run_job", real)
    again = stretto(capsys, "run", *sweep, f"hydra.sweep.dir={tmp_path}/again")
    assert again.count("finished before") == 1 and ran(again) == 2
    kids = children(tmp_path, "optimized", "s2")
    assert sorted(kids.status) == ["FINISHED", "FINISHED", "FINISHED", "KILLED"]
    once_each(kids, 3)


def test_a_cell_whose_owner_died_runs_again_and_a_live_one_is_left_alone(tmp_path):
    cfg = composed("optimizer=lotus", "tracking.sweep=s3", f"paths.mlflow_dir={tmp_path}/mlruns")
    parent, key = parent_run(cfg.tracking, "s3"), cell_key(cfg)
    dead = subprocess.Popen(["true"])
    dead.wait()
    client = mlflow.MlflowClient()
    exp = experiment_id(cfg.tracking)
    tags = {"stretto.sweep": "s3", CELL_TAG: key, PARENT_TAG: parent}
    killed = client.create_run(exp, tags={**tags, OWNER_TAG: f"{socket.gethostname()}:{dead.pid}:1"}).info.run_id
    ran = []

    def job(cfg, **kwargs):
        ran.append(kwargs["run_id"])
        return JobResult({"x": 1.0}, mlflow_run_id=log_run(cfg.tracking, {}, {"x": 1.0}, [], run_id=kwargs["run_id"]))

    first = run_cell(cfg, job, "lotus")  # the SIGKILLed owner's cell (RUNNING, its pid gone) runs again
    assert first.mlflow_run_id == ran[0] != killed and client.get_run(killed).info.status == "KILLED"
    assert run_cell(cfg, job, "lotus").skipped.status == "finished" and len(ran) == 1

    other = composed("optimizer=lotus", "seed=7", "tracking.sweep=s3", f"paths.mlflow_dir={tmp_path}/mlruns")
    live = {**tags, CELL_TAG: cell_key(other), OWNER_TAG: this_owner()}  # claimed by a process that still runs
    running = client.create_run(exp, tags=live).info.run_id
    skipped = run_cell(other, job, "lotus")
    assert skipped.skipped == Skipped(running, "running", cell_key(other), "s3") and skipped.metrics == {}
    assert len(ran) == 1


class FakeOperator:
    """optimizer=none's one operator without a model: a fixed score per row."""

    def __init__(self, template, identity):
        self.template, self.identity = template, identity

    def score(self, rows, *, progress=False) -> ScoredRows:
        n = len(rows)
        scores = np.array([len(t) % 7 - 3 for t in rows["reviewtext"]], dtype=np.float32)
        return ScoredRows(scores, np.full(n, 0.01), np.ones(n, dtype=np.int64), 0)


class FakeSource:
    def operator(self, template, identity):
        return FakeOperator(template, identity)


def test_sweep_without_optimizer_has_a_parent_and_resumes(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(run_module, "configured_source", lambda cfg, spec: FakeSource())
    sweep = ["-m", "dataset.limit=20", "progress=false", "family.threshold=-1,1", "tracking.sweep=n1"]
    sweep.append(f"paths.mlflow_dir={tmp_path}/mlruns")
    first = stretto(capsys, "run", *sweep, f"hydra.sweep.dir={tmp_path}/first")
    assert first.count("rows in / out     20 /") == 2
    again = stretto(capsys, "run", *sweep, f"hydra.sweep.dir={tmp_path}/again")
    assert again.count("finished before") == 2 and "rows in / out" not in again
    kids = children(tmp_path, "stretto", "n1")
    assert len(kids) == 2
    once_each(kids, 2)


def test_compare_twice_runs_each_system_once_and_plot_counts_them(tmp_path, capsys):
    args = ["compare", "experiment=main", "dataset.limit=100", "progress=false", "tracking.sweep=c1"]
    args.append(f"paths.mlflow_dir={tmp_path}/mlruns")
    first = stretto(capsys, *args, f"hydra.run.dir={tmp_path}/first")
    again = stretto(capsys, *args, f"hydra.run.dir={tmp_path}/again")
    table = [line.split()[:4] for line in first.splitlines() if line.split()[:1] in (["stretto"], ["lotus"])]
    assert table == [line.split()[:4] for line in again.splitlines() if line.split()[:1] in (["stretto"], ["lotus"])]
    kids = children(tmp_path, "main", "c1")
    assert len(kids) == 3
    once_each(kids, 3)
    tracking = {"uri": f"sqlite:///{tmp_path}/mlruns/mlflow.db", "experiment": "main"}
    assert len(runs_frame(tracking, "c1")) == 3  # what `stretto plot` counts


def _sweep_process(argv: list[str]) -> None:
    GlobalHydra.instance().clear()
    sys.argv = ["stretto", *argv]
    cli.main()


def test_two_sweeps_of_one_name_at_once_run_every_cell_once(tmp_path, monkeypatch):
    create_run = mlflow.MlflowClient.create_run

    def slow_create_run(self, *args, **kwargs):  # widens the window between looking for a cell and claiming it
        time.sleep(0.5)
        return create_run(self, *args, **kwargs)

    monkeypatch.setattr(mlflow.MlflowClient, "create_run", slow_create_run)
    sweep = ["run", "-m", *REPLAY, "optimizer=lotus,gold_only", "targets.precision=0.5,0.9", "tracking.sweep=s4"]
    sweep += [f"paths.mlflow_dir={tmp_path}/mlruns", "hydra/launcher=joblib", "hydra.launcher.n_jobs=1"]
    # two processes started at once (forked: the imports are paid once), each walking the same cells in order
    fork = multiprocessing.get_context("fork")
    procs = [fork.Process(target=_sweep_process, args=([*sweep, f"hydra.sweep.dir={tmp_path}/{i}"],)) for i in range(2)]
    for proc in procs:
        proc.start()
    for proc in procs:
        proc.join(timeout=300)
        assert proc.exitcode == 0
    kids = children(tmp_path, "optimized", "s4")
    assert len(kids) == 4  # a cell another process is running is skipped, not run again
    once_each(kids, 4)
    assert kids[f"tags.{OWNER_TAG}"].nunique() == 2  # both sweeps ran cells
