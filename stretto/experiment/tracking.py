"""MLflow recording of one run: every config choice as a param, figures as metrics, tables as artifacts."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from stretto.errors import StrettoError

log = logging.getLogger(__name__)
# Why runs that finished could not be recorded (the server went away, a full disk): the CLI prints the run's
# summary first, then these, and exits 2, so a finished run's figures are never lost to a logging error.
UNRECORDED: list[str] = []


class TrackingError(StrettoError):
    """A finished run could not be recorded in MLflow."""


def flatten(tree: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """{"a": {"b": 1}} -> {"a.b": 1}; lists are stringified (MLflow params are strings)."""
    flat: dict[str, Any] = {}
    for key, value in tree.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            flat.update(flatten(value, f"{name}."))
        else:
            flat[name] = value if isinstance(value, int | float | str | bool) or value is None else str(value)
    return flat


def experiment_id(tracking: Mapping[str, Any]) -> str:
    """The configured MLflow experiment (created on first use, artifacts beside the store)."""
    import mlflow  # the engine never imports MLflow; only the harness does, and only when tracking

    mlflow.set_tracking_uri(tracking["uri"])
    name = tracking["experiment"]
    experiment = mlflow.get_experiment_by_name(name)
    if experiment is not None:
        return experiment.experiment_id
    location = Path(tracking["artifact_location"]).resolve().as_uri()
    try:
        return mlflow.create_experiment(name, artifact_location=location)
    except mlflow.exceptions.MlflowException:  # a parallel job created it first
        return mlflow.get_experiment_by_name(name).experiment_id


def log_run(
    tracking: Mapping[str, Any],
    params: Mapping[str, Any],
    metrics: Mapping[str, float],
    artifacts: list[Path],
    *,
    parent_run_id: str | None = None,
    run_id: str | None = None,
    tags: Mapping[str, str] | None = None,
) -> str:
    """Record one finished run in the configured MLflow store and return its run id; `run_id` is a run created
    before (a sweep's claimed cell) to record into, else a new run is started."""
    import mlflow

    exp = experiment_id(tracking)
    if run_id is not None:
        started = mlflow.start_run(run_id=run_id, tags=dict(tags or {}))
    else:
        started = mlflow.start_run(
            experiment_id=exp, run_name=tracking.get("run_name"), parent_run_id=parent_run_id, tags=dict(tags or {})
        )
    with started as run:
        mlflow.log_params({k: ("null" if v is None else v) for k, v in flatten(params).items()})
        mlflow.log_metrics({k: float(v) for k, v in metrics.items()})
        for path in artifacts:
            mlflow.log_artifact(str(path))
        return run.info.run_id


def config_params(cfg: Any) -> dict[str, Any]:
    """Every config choice of a run (resolved), without machine paths and Hydra's own settings."""
    from omegaconf import OmegaConf

    params = OmegaConf.to_container(cfg, resolve=True)
    for key in ("paths", "hydra"):
        params.pop(key, None)
    return params


def log_config_run(
    cfg: Any,
    metrics: Mapping[str, float],
    artifacts: list[Path],
    *,
    parent_run_id: str | None = None,
    run_id: str | None = None,
    tags: Mapping[str, str] | None = None,
) -> str | None:
    """log_run with every config choice as params; None (and the reason in UNRECORDED) if MLflow failed."""
    from mlflow.exceptions import MlflowException

    try:
        return log_run(
            cfg.tracking, config_params(cfg), metrics, artifacts, parent_run_id=parent_run_id, run_id=run_id, tags=tags
        )
    except (MlflowException, OSError) as err:  # requests' errors are OSErrors
        UNRECORDED.append(f"tracking.uri={cfg.tracking.uri}: {type(err).__name__}: {err}")
        return None
