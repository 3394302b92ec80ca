"""Checks of a composed config that need no model and no data, run before any work by every `stretto` command.

Bad input then fails in seconds with a message naming the setting (the CLI prints it on stderr and exits 2),
never as a traceback after a model loaded or after the job ran: a missing `dataset.path`, a number that is
not one, a store folder that is a file, a backend the command cannot use, a setting of a config group that
moved (operators, kv, backend=vllm: `moved_override`, checked on the command line before Hydra composes), an
empty or unknown system list, plotting without tracking, and a tracking server that does not answer.
"""

from __future__ import annotations

import urllib.error
import urllib.request
from numbers import Real
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from omegaconf import DictConfig, OmegaConf

from stretto.errors import QueryError, StrettoError

READS_DATA = ("run", "compare", "pipeline", "cache build")
TRACKED = ("run", "compare", "pipeline", "plot")
REACH_SECONDS = 5.0  # how long a tracking server may take to answer the up-front check


class ConfigError(StrettoError, ValueError):
    """A setting is missing, has the wrong type, or points at something unusable (a file where a folder
    belongs, a tracking server that does not answer, a backend the command cannot use)."""


def preflight(cfg: DictConfig, command: str) -> None:
    """Raise ConfigError for the first setting of `cfg` that `stretto <command>` cannot use."""
    if command in READS_DATA:
        check_dataset(cfg.dataset)
    check_numbers(cfg)
    check_backend(cfg, command)
    check_folders(cfg, command)
    if command == "compare":
        check_systems(cfg.compare.systems, cfg.profiling.get("labels", "gold"))
    if command == "plot" and not cfg.tracking.enabled:
        raise ConfigError(
            "stretto plot draws the runs recorded in MLflow, but tracking is off (tracking=none): "
            "use tracking=mlflow with the tracking.uri and tracking.experiment the runs were logged to"
        )
    if command in TRACKED and cfg.tracking.enabled:
        check_reachable(str(cfg.tracking.uri))


def uses_optimizer(cfg: DictConfig, command: str) -> bool:
    return command in ("compare", "pipeline") or (command == "run" and cfg.optimizer.name != "none")


def check_dataset(dataset: DictConfig) -> None:
    if dataset.get("name"):
        return  # a bundled dataset: load_dataset names the known ones
    if "path" not in dataset or OmegaConf.is_missing(dataset, "path") or not dataset.path:
        raise ConfigError(
            "dataset.path is not set: dataset=custom reads your own table; give its CSV or Parquet file or a "
            "folder of .txt files, e.g. dataset.path=/data/tickets.csv"
        )
    if not Path(dataset.path).exists():
        raise ConfigError(f"dataset.path={dataset.path} does not exist")


def _whole(value: Any, name: str, low: int) -> None:
    if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < low):
        raise ConfigError(f"{name} must be a whole number >= {low} (or null), got {value!r}")


def _number(value: Any, name: str, what: str, ok) -> None:
    if isinstance(value, bool) or not isinstance(value, Real) or not ok(value):
        raise ConfigError(f"{name} must be {what}, got {value!r}")


def check_numbers(cfg: DictConfig) -> None:
    _whole(cfg.dataset.get("limit"), "dataset.limit", 1)
    _whole(cfg.get("seed"), "seed", 0)
    fraction = cfg.profiling.fraction
    if isinstance(fraction, bool) or not isinstance(fraction, Real) or not 0 < fraction <= 1:
        what = "is outside (0, 1]" if isinstance(fraction, Real) else "is not a number"
        raise ConfigError(f"profiling.fraction: sample fraction {fraction!r} {what}; e.g. profiling.fraction=0.15")
    _whole(cfg.profiling.get("size"), "profiling.size", 1)
    _whole(cfg.profiling.get("seed"), "profiling.seed", 0)
    from stretto.engine.label_source import check_label_source  # here: the engine imports the models' libraries

    try:
        check_label_source(cfg.profiling.get("labels", "gold"))
    except QueryError as err:
        raise ConfigError(str(err)) from None
    if cfg.paths.get("kv_budget_gb") is not None:
        _number(cfg.paths.kv_budget_gb, "paths.kv_budget_gb", "a positive number of GB (or null)", lambda v: v > 0)
    if cfg.backend.get("batch_size") is not None:
        _whole(cfg.backend.batch_size, "backend.batch_size", 1)


VLLM_MOVED = (
    "backend=vllm is gone: a vLLM server is the family's choice now. Run backend=transformers and name the models "
    "the server answers (their uncompressed operators), e.g. family.serve='{qwen-0.5b: \"http://127.0.0.1:8000/v1\"}' "
    "(with optimizer=none the one-member family's model: stretto run family.serve=...)"
)

# Spellings of the config groups folded into `family` and `paths`, and what to write instead.
MOVED = {
    "operators=": "family={value} (a one-member family is one operator: qwen_0_5b, qwen_1_5b, smollm2_135m)",
    "operators.model=": "family.model={value} (the one-member family's model)",
    "operators.threshold=": "family.threshold={value} (family.gold.threshold in a family of several models)",
    "kv=none": "family.stored=false (read every document from scratch)",
    "kv=stored": "family.stored=true (answer from stored KV caches)",
    "kv=frontier": "family=frontier (every press x ratio of Qwen 0.5B)",
    "kv=": "family=<name> with family.stored=true|false",
    "kv.variant.press=": "family.press={value} family.stored=true (the one-member family's KV variant)",
    "kv.variant.ratio=": "family.ratio={value} family.stored=true (the one-member family's KV variant)",
    "kv.variant=": "family.press=<press> family.ratio=<ratio> family.stored=true",
    "kv.store_dir=": "paths.kv_dir={value}",
    "kv.budget_gb=": "paths.kv_budget_gb={value}",
    "kv.cached=": "family.stored=true|false",
    "kv.build=": "a family whose models list the variants to build (family=frontier, or family.models=...)",
    "kv.": "family.* (conf/kv was folded into conf/family) or paths.kv_dir / paths.kv_budget_gb",
    "backend=vllm": "family.serve='{{<model>: \"<url>\"}}' with backend=transformers",
}


def moved_override(args: list[str]) -> str | None:
    """The message for the first command-line override spelled the way of the removed `operators` / `kv` config
    groups or `backend=vllm`, naming the new spelling; None when there is none."""
    for arg in args:
        bare = arg.lstrip("+~")
        for old, new in MOVED.items():
            if bare.startswith(old) and (old.endswith(("=", ".")) or bare == old or bare.startswith(old + ",")):
                value = bare.partition("=")[2]
                return f"{arg}: the '{old.rstrip('=.')}' setting moved: use {new.format(value=value)}"
    return None


def check_backend(cfg: DictConfig, command: str) -> None:
    name = cfg.backend.name
    if name == "vllm" and command not in ("plot", "cache info"):
        raise ConfigError(VLLM_MOVED)
    if command == "cache build" and name != "transformers":
        raise ConfigError(f"stretto cache build stores KV caches with transformers: use backend=transformers, "
                          f"not backend={name}")  # fmt: skip


def check_folder(name: str, value: Any) -> None:
    """A folder that will be created or read: neither it nor any folder above it may be a file."""
    path = Path(str(value)).expanduser()
    for p in (path, *path.parents):
        if p.exists():
            if not p.is_dir():
                where = "is a file" if p == path else f"is under {p}, which is a file"
                raise ConfigError(f"{name}={value} {where}, not a folder: point it at a folder (or a new path)")
            return


def check_folders(cfg: DictConfig, command: str) -> None:
    live = cfg.backend.name != "replay"
    if command.startswith("cache"):
        check_folder("paths.kv_dir", cfg.paths.kv_dir)
    if live and command != "cache info" and command != "plot":
        check_folder("paths.cache_dir", cfg.paths.cache_dir)
        if uses_optimizer(cfg, command):
            check_folder("profiling.store_dir", cfg.profiling.store_dir)
        if cfg.family.get("stored", True):
            check_folder("paths.kv_dir", cfg.paths.kv_dir)
    if command in TRACKED and cfg.tracking.enabled:
        uri = str(cfg.tracking.uri)
        if uri.startswith("sqlite:///"):
            check_folder("tracking.uri", Path(uri.removeprefix("sqlite:///")).parent)
        check_folder("tracking.artifact_location", cfg.tracking.artifact_location)


# Systems that take no profiling sample: with labels from another source they have nothing to use them on.
UNSAMPLED = ("lotus", "bargain", "gold_only")


def check_systems(systems: Any, labels: str = "gold") -> None:
    """Every system of a comparison, checked before the first one runs."""
    from stretto.systems import SYSTEMS

    known = list(SYSTEMS)
    names = list(systems) if OmegaConf.is_list(systems) or isinstance(systems, list | tuple) else [systems]
    if not names:
        raise ConfigError(f"compare.systems is empty: name the systems to compare, e.g. compare.systems=[stretto,"
                          f"lotus,gold_only]; known: {known}")  # fmt: skip
    unknown = [s for s in names if s not in known]
    if unknown:
        raise ConfigError(f"compare.systems: unknown system(s) {unknown}; choose from {known}")
    twice = sorted({s for s in names if names.count(s) > 1})
    if twice:
        raise ConfigError(f"compare.systems names {twice} more than once")
    unsampled = [s for s in names if s in UNSAMPLED]
    if labels != "gold" and unsampled:
        raise ConfigError(
            f"profiling.labels={labels}: {unsampled} take no profiling sample, so they cannot use those labels; "
            f"compare the sampling systems, e.g. compare.systems=[stretto,local,abacus]"
        )


def check_reachable(uri: str) -> None:
    """A tracking server must answer (any HTTP status) within seconds; file and database stores need none."""
    if urlparse(uri).scheme not in ("http", "https"):
        return
    try:
        urllib.request.urlopen(uri, timeout=REACH_SECONDS).close()
    except urllib.error.HTTPError:
        return  # it answered, if only with an error status: it is there
    except (urllib.error.URLError, OSError, ValueError) as err:
        reason = getattr(err, "reason", err)
        raise ConfigError(
            f"tracking.uri={uri} does not answer ({reason}): start the MLflow server (mlflow server ...), point "
            "tracking.uri at a running one, or run without tracking (tracking=none)"
        ) from None
