"""MLflow recording of one run: every config choice as a param, figures as metrics, tables as artifacts."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)


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


def log_run(
    tracking: Mapping[str, Any],
    params: Mapping[str, Any],
    metrics: Mapping[str, float],
    artifacts: list[Path],
) -> str:
    """Record one finished run in the configured MLflow store and return its run id."""
    import mlflow  # the engine never imports MLflow; only the harness does, and only when tracking

    mlflow.set_tracking_uri(tracking["uri"])
    name = tracking["experiment"]
    experiment = mlflow.get_experiment_by_name(name)
    if experiment is None:
        location = Path(tracking["artifact_location"]).resolve().as_uri()
        experiment_id = mlflow.create_experiment(name, artifact_location=location)
    else:
        experiment_id = experiment.experiment_id
    with mlflow.start_run(experiment_id=experiment_id, run_name=tracking.get("run_name")) as run:
        mlflow.log_params({k: ("null" if v is None else v) for k, v in flatten(params).items()})
        mlflow.log_metrics({k: float(v) for k, v in metrics.items()})
        for path in artifacts:
            mlflow.log_artifact(str(path))
        return run.info.run_id


def log_config_run(cfg: Any, metrics: Mapping[str, float], artifacts: list[Path]) -> str:
    """log_run with every config choice (the Hydra config, resolved, without machine paths) as params."""
    from omegaconf import OmegaConf

    params = OmegaConf.to_container(cfg, resolve=True)
    params.pop("paths", None)
    return log_run(cfg.tracking, params, metrics, artifacts)
