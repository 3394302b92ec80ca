"""The distributed path, run on this machine (opt-in: `make cluster`, then `make cluster-test`).

A 4-cell sweep (2 systems x 2 targets, replayed from the recordings) goes through Hydra's submitit launcher
(submitit_local: one process per cell) and through the Ray launcher (a local Ray instance with two worker
processes). Each cell runs exactly once, in a launcher's worker (never the command's own process), into the one
MLflow store both share, and the same command run again in a new output folder runs nothing.
"""

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import mlflow
import pandas as pd
import pytest

pytestmark = pytest.mark.cluster

CELLS = ["experiment=optimized_movie", "optimizer=stretto,gold_only", "targets.precision=0.5,0.7"]
REPLAY = ["dataset.limit=100", "progress=false"]
LAUNCHERS = {
    "submitit": ("hydra_plugins.hydra_submitit_launcher", ["hydra/launcher=submitit_local"]),
    # address=local: a new Ray instance for this command, never a cluster found on the machine
    "ray": (
        "hydra_plugins.hydra_ray_launcher",
        [
            "hydra/launcher=ray",
            "hydra.launcher.ray.init.address=local",
            "+hydra.launcher.ray.init.num_cpus=2",
            "+hydra.launcher.ray.init.include_dashboard=false",
        ],
    ),
}
# Ray binds to the machine's outward address unless told otherwise; keep every port on the loopback.
ENV = {"RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0", "RAY_USAGE_STATS_ENABLED": "0"}


def sweep(tmp_path: Path, name: str, launcher: list[str], folder: str) -> int:
    """One multirun of the 4 cells through `launcher` in a new process; its pid."""
    argv = [*launcher, *CELLS, *REPLAY, f"tracking.sweep={name}", f"hydra.sweep.dir={tmp_path / folder}"]
    argv += [f"paths.mlflow_dir={tmp_path}/mlruns", f"paths.cache_dir={tmp_path}/cache"]
    proc = subprocess.Popen(
        [sys.executable, "-m", "stretto.experiment.cli", "run", "-m", *argv],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, **ENV},
    )
    out, err = proc.communicate(timeout=600)
    assert proc.returncode == 0, f"{out[-2000:]}\n{err[-4000:]}"
    return proc.pid


def children(tmp_path: Path, name: str) -> pd.DataFrame:
    mlflow.set_tracking_uri(f"sqlite:///{tmp_path}/mlruns/mlflow.db")
    runs = mlflow.search_runs(experiment_names=["optimized"], filter_string=f"tags.`stretto.sweep` = '{name}'")
    parents = runs[runs["tags.stretto.role"] == "parent"]
    assert len(parents) == 1
    return runs[runs["tags.mlflow.parentRunId"] == parents.run_id.iloc[0]]


@pytest.mark.parametrize("name", list(LAUNCHERS))
def test_a_sweep_through_a_launcher_runs_each_cell_once_and_resumes(tmp_path, name):
    module, launcher = LAUNCHERS[name]
    if importlib.util.find_spec("hydra_plugins") is None or importlib.util.find_spec(module) is None:
        pytest.skip(f"{module} is not installed (make cluster)")
    if name == "ray" and importlib.util.find_spec("ray") is None:
        pytest.skip("ray is not installed (make cluster)")

    driver = sweep(tmp_path, name, launcher, "first")
    kids = children(tmp_path, name)
    assert len(kids) == 4 and set(kids.status) == {"FINISHED"}
    assert kids["tags.stretto.cell"].nunique() == 4
    pids = {int(owner.split(":")[1]) for owner in kids["tags.stretto.owner"]}
    assert driver not in pids  # the cells ran in the launcher's workers
    # a process per cell (submitit_local), several Ray workers (ray)
    assert (len(pids) == 4) if name == "submitit" else (len(pids) >= 2)
    assert len(list((tmp_path / "first").glob("*/metrics.json"))) == 4

    sweep(tmp_path, name, launcher, "again")  # the same command, a new output folder
    again = children(tmp_path, name)
    assert sorted(again.run_id) == sorted(kids.run_id)  # nothing new ran
    assert not list((tmp_path / "again").glob("*/metrics.json"))
