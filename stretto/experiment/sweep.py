"""Sweeps in MLflow: a parent run per sweep, a child run per cell, finished cells skipped when a sweep reruns.

A cell is one configured run (dataset, query, targets, system, seed, ...). Its key hashes every config choice
except where things land and how they are shown (paths, tracking, progress), so rerunning a sweep after a
crash, with the same sweep name, finds the cells that finished and runs only the rest. Parallel jobs (the
joblib launcher) agree on one parent run through a lock file beside the store.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import logging
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from omegaconf import DictConfig

from stretto.experiment.tracking import config_params, experiment_id

log = logging.getLogger(__name__)

SWEEP_TAG, CELL_TAG, ROLE_TAG, SYSTEM_TAG = "stretto.sweep", "stretto.cell", "stretto.role", "stretto.system"


def cell_key(cfg: DictConfig) -> str:
    params = config_params(cfg)
    for key in ("tracking", "progress"):
        params.pop(key, None)
    return hashlib.sha256(json.dumps(params, sort_keys=True, default=str).encode()).hexdigest()[:16]


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


def parent_run(tracking: Mapping[str, Any], sweep: str) -> str:
    """The sweep's parent run id, created on first use."""
    import mlflow

    with _locked(tracking):
        exp = experiment_id(tracking)
        found = mlflow.search_runs(
            [exp],
            filter_string=f"tags.`{SWEEP_TAG}` = '{sweep}' and tags.`{ROLE_TAG}` = 'parent'",
            output_format="list",
        )
        if found:
            return found[0].info.run_id
        with mlflow.start_run(experiment_id=exp, run_name=sweep, tags={SWEEP_TAG: sweep, ROLE_TAG: "parent"}) as run:
            return run.info.run_id


def finished_cell(tracking: Mapping[str, Any], parent: str, key: str) -> str | None:
    """The id of a finished child run of `parent` for this cell, if there is one."""
    import mlflow

    found = mlflow.search_runs(
        [experiment_id(tracking)],
        filter_string=(
            f"tags.`{CELL_TAG}` = '{key}' and tags.`mlflow.parentRunId` = '{parent}' and attributes.status = 'FINISHED'"
        ),
        output_format="list",
    )
    return found[0].info.run_id if found else None


def run_cell(cfg: DictConfig, job: Callable[..., dict[str, Any]], system: str) -> dict[str, Any]:
    """Run `job(cfg, parent_run_id=, tags=)` unless this sweep already finished the cell."""
    sweep = sweep_name(cfg)
    if sweep is None:
        return job(cfg, tags={SYSTEM_TAG: system} if cfg.tracking.enabled else None)
    parent, key = parent_run(cfg.tracking, sweep), cell_key(cfg)
    done = finished_cell(cfg.tracking, parent, key)
    if done is not None:
        import mlflow

        log.debug("cell %s of sweep '%s' finished before (run %s): skipped", key, sweep, done)
        return {"skipped": done, "cell": key, "sweep": sweep, "metrics": mlflow.get_run(done).data.metrics}
    return job(cfg, parent_run_id=parent, tags={SWEEP_TAG: sweep, CELL_TAG: key, SYSTEM_TAG: system})
