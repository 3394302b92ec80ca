"""Sweeps in MLflow: a parent run per sweep, a child run per cell, each cell run once however often the sweep runs.

A cell is one configured run (dataset, query, targets, system, family, backend, profiling, seed, ...). Its key
(`cell_key`) hashes the config choices that determine its result and nothing else: not where things land
(`paths` and everything interpolated from them, e.g. `plot.out`, the stores' folders), nor how they are recorded
or shown (`tracking`, `plot`, `compare`, `progress`, Hydra's own settings). Rerunning a sweep with the same name
therefore finds the cells that finished, whatever output folder the rerun gets, and runs only the rest.

A cell is claimed atomically: under a lock file beside the MLflow store, the sweep looks for a child run of the
cell and, when there is none that finished or is running, creates one (status RUNNING, tagged with the cell key
and its owner: host, pid and the pid's start time) before any work starts. So two sweeps of one name started
at once (or the joblib launcher's workers) never run a cell twice. A claimed cell whose owner is gone is run
again by the next sweep: one that failed or was interrupted (Ctrl-C) is marked FAILED / KILLED on the way out;
one whose process was killed outright stays RUNNING, and is marked KILLED when its owner's pid no longer runs
on this host. A RUNNING cell owned by another host is taken as running: the lock is a local file, so a sweep is
coordinated across the processes of one machine that share the store.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import logging
import os
import socket
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from stretto.experiment.result import JobResult, Skipped
from stretto.experiment.tracking import experiment_id

log = logging.getLogger(__name__)

SWEEP_TAG, CELL_TAG, ROLE_TAG, SYSTEM_TAG = "stretto.sweep", "stretto.cell", "stretto.role", "stretto.system"
OWNER_TAG = "stretto.owner"
PARENT_TAG = "mlflow.parentRunId"
# Where things land and how they are recorded or shown: no part of a cell's result.
NOT_RESULT = ("hydra", "paths", "tracking", "plot", "compare", "progress")
WAIT_SECONDS = 2.0  # how often a sweep that waits for another process's cell looks again


def cell_params(cfg: DictConfig) -> dict[str, Any]:
    """The config choices that determine a cell's result, resolved with every path as a placeholder.

    A value interpolated from `paths` (`plot.out`, `profiling.store_dir`, `backend.recording`) becomes
    location-free (`<paths.cache_dir>/profiles`), so a rerun in a new output folder or another checkout is the
    same cell; a path the user gave directly (`dataset.path`) names data and stays in the key.
    """
    tree = OmegaConf.to_container(cfg, resolve=False)
    tree.pop("hydra", None)
    tree["paths"] = {name: f"<paths.{name}>" for name in tree.get("paths") or {}}
    params = OmegaConf.to_container(OmegaConf.create(tree), resolve=True)
    for key in NOT_RESULT:
        params.pop(key, None)
    return params


def cell_key(cfg: DictConfig) -> str:
    return hashlib.sha256(json.dumps(cell_params(cfg), sort_keys=True, default=str).encode()).hexdigest()[:16]


def sweep_name(cfg: DictConfig) -> str | None:
    """The configured sweep (tracking.sweep); a Hydra multirun without one is named after its sweep folder."""
    if not cfg.tracking.enabled:
        return None
    if cfg.tracking.get("sweep"):
        return str(cfg.tracking.sweep)
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode

    if HydraConfig.initialized() and HydraConfig.get().mode == RunMode.MULTIRUN:
        return Path(HydraConfig.get().sweep.dir).name
    return None


@contextmanager
def _locked(tracking: Mapping[str, Any]) -> Iterator[None]:
    lock = Path(tracking["artifact_location"]).parent / ".sweep.lock"
    lock.parent.mkdir(parents=True, exist_ok=True)
    with lock.open("w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _runs(experiment: str, where: str) -> list:
    """The MLflow runs of an experiment that match an MLflow filter string."""
    import mlflow

    return mlflow.search_runs([experiment], filter_string=where, output_format="list")


def parent_run(tracking: Mapping[str, Any], sweep: str) -> str:
    """The sweep's parent run id, created on first use."""
    import mlflow

    with _locked(tracking):
        exp = experiment_id(tracking)
        found = _runs(exp, f"tags.`{SWEEP_TAG}` = '{sweep}' and tags.`{ROLE_TAG}` = 'parent'")
        if found:
            return found[0].info.run_id
        with mlflow.start_run(experiment_id=exp, run_name=sweep, tags={SWEEP_TAG: sweep, ROLE_TAG: "parent"}) as run:
            return run.info.run_id


def _started(pid: int) -> str:
    """When a process started (clock ticks since boot, Linux), so a reused pid is not taken for its owner."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError):
        return "?"


def this_owner() -> str:
    pid = os.getpid()
    return f"{socket.gethostname()}:{pid}:{_started(pid)}"


def owner_alive(owner: str | None) -> bool:
    """Whether the process that claimed a cell still runs (a cell on another host is taken as running)."""
    if not owner:
        return False  # not claimed by a sweep (a run logged by hand, or by an older version): nobody will finish it
    host, pid, started = owner.rsplit(":", 2)
    if host != socket.gethostname():
        return True
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # it exists, under another user
    return started == "?" or _started(int(pid)) in (started, "?")


def claim_cell(tracking: Mapping[str, Any], parent: str, tags: Mapping[str, str]) -> tuple[str, str]:
    """Under the sweep's lock: ("finished", run) when the cell finished before, ("running", run) when a live
    process is running it, else ("claimed", run) with a new RUNNING child run of `parent` that this process owns.
    """
    import mlflow

    client = mlflow.MlflowClient()
    key = tags[CELL_TAG]
    with _locked(tracking):
        exp = experiment_id(tracking)
        children = _runs(exp, f"tags.`{CELL_TAG}` = '{key}' and tags.`{PARENT_TAG}` = '{parent}'")
        for run in children:
            if run.info.status == "FINISHED":
                return "finished", run.info.run_id
        for run in children:
            if run.info.status != "RUNNING":
                continue
            owner = run.data.tags.get(OWNER_TAG)
            if owner_alive(owner):
                return "running", run.info.run_id
            log.warning("cell %s: the owner of its run %s (%s) is gone: run marked KILLED", key, run.info.run_id, owner)
            client.set_terminated(run.info.run_id, "KILLED")
        run = client.create_run(
            exp, tags={**tags, PARENT_TAG: parent, OWNER_TAG: this_owner()}, run_name=tracking.get("run_name")
        )
        return "claimed", run.info.run_id


def run_cell(cfg: DictConfig, job: Callable[..., JobResult], system: str | None, *, wait: bool = False) -> JobResult:
    """Run `job(cfg, parent_run_id=, run_id=, tags=)` unless this sweep finished the cell or is running it.

    A job logs into the claimed run `run_id` (tracking.log_run). A cell finished before returns its recorded
    metrics and `skipped`; one that another live process is running returns `skipped` (no metrics), or,
    with `wait`, is waited for (and claimed again if that process gives up).
    """
    sweep = sweep_name(cfg)
    if sweep is None:
        return job(cfg, tags={SYSTEM_TAG: system} if cfg.tracking.enabled and system else None)
    import mlflow

    parent, key = parent_run(cfg.tracking, sweep), cell_key(cfg)
    tags = {SWEEP_TAG: sweep, CELL_TAG: key} | ({SYSTEM_TAG: system} if system else {})
    while True:
        state, run_id = claim_cell(cfg.tracking, parent, tags)
        if state == "claimed":
            break
        if state == "finished":
            log.debug("cell %s of sweep '%s' finished before (run %s): skipped", key, sweep, run_id)
            metrics = dict(mlflow.MlflowClient().get_run(run_id).data.metrics)
            return JobResult(metrics, mlflow_run_id=run_id, skipped=Skipped(run_id, state, key, sweep))
        if not wait:
            return JobResult({}, mlflow_run_id=run_id, skipped=Skipped(run_id, state, key, sweep))
        time.sleep(WAIT_SECONDS)
    client = mlflow.MlflowClient()
    try:
        result = job(cfg, parent_run_id=parent, run_id=run_id, tags=tags)
    except BaseException as err:
        client.set_terminated(run_id, "KILLED" if isinstance(err, KeyboardInterrupt) else "FAILED")
        raise
    if client.get_run(run_id).info.status == "RUNNING":  # the job recorded nothing: the next sweep runs it again
        log.warning("cell %s of sweep '%s' recorded no result in its run %s: marked FAILED", key, sweep, run_id)
        client.set_terminated(run_id, "FAILED")
    return result
