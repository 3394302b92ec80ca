"""The `stretto` command: `stretto run [hydra overrides]` runs the configured job."""

from __future__ import annotations

import functools
import logging
import os
import signal
import sys
import time
from pathlib import Path

import hydra
from hydra.errors import CompactHydraException
from hydra.experimental.callback import Callback
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import MissingMandatoryValue, OmegaConfBaseException

from stretto.errors import StrettoError

ROOT = Path(__file__).resolve().parents[2]
CONF_DIR = ROOT / "conf"
OmegaConf.register_new_resolver("stretto_root", lambda: str(ROOT), replace=True)


def config_file(group: str, name: str) -> dict:
    """One file of a config group (conf/<group>/<name>.yaml) as plain data, for scripts outside Hydra."""
    return OmegaConf.to_container(OmegaConf.load(CONF_DIR / group / f"{name}.yaml"), resolve=True)


USAGE = """usage: stretto COMMAND [hydra overrides ...]

commands:
  run     run the configured query (default config: conf/config.yaml), e.g.
            stretto run dataset.limit=100 family=qwen_1_5b     # one operator on every row (optimizer=none)
            stretto run --cfg job        # print the composed config
            stretto run -m family=qwen_0_5b,smollm2_135m   # a multirun sweep
            stretto run family.stored=true family.press=knorm family.ratio=0.5  # on stored KV caches
            stretto run backend=replay   # the same job answered from the recordings (no model)
            stretto run experiment=optimized_movie   # Stretto's optimizer at targets, replayed from recordings
            stretto run optimizer=stretto targets.precision=0.7 targets.recall=0.7   # same, real models
  compare  the configured query answered by several systems on the same profiles (compare.systems), one table
           and the frontier plot, e.g.  stretto compare compare.systems=[stretto,lotus,bargain,gold_only]
  plot     comparison plots (PNG + CSV) from the MLflow runs of an experiment or sweep, e.g.
             stretto plot tracking.experiment=paper_reproduction plot.sweep=paper_reproduction plot.out=results
  pipeline  a multi-table pipeline (conf/pipeline/: semantic joins, relational steps), e.g.
              stretto pipeline experiment=restaurants_join targets.precision=0.9 targets.recall=0.9
  cache build   store the KV caches of every operator of the configured family for the query's rows, e.g.
                  stretto cache build family=frontier dataset=enron query=enron_fraud
  cache info    entries and sizes per (model, variant) in the KV cache store (paths.kv_dir)
"""

log = logging.getLogger("stretto")
BAD_CELL = "bad_cell.txt"  # in a multirun cell's output folder: why that cell was refused


def _checked(command: str):
    """The app behind `stretto <command>`, preceded by the checks that need no model (preflight.py); bad input
    is reported on stderr with exit code 2, or, in a multirun, reported and the sweep goes on (see BadCells)."""

    def wrap(app):
        @functools.wraps(app)
        def task(cfg: DictConfig) -> None:
            from stretto.experiment.preflight import preflight

            try:
                preflight(cfg, command)
                app(cfg)
            except (StrettoError, MissingMandatoryValue) as err:
                _failed(err)

        return task

    return wrap


def _message(err: Exception) -> str:
    if isinstance(err, MissingMandatoryValue):
        return f"{err.full_key} is not set: give it on the command line ({err.full_key}=...)"
    return f"{type(err).__name__}: {err}"


def _failed(err: Exception) -> None:
    """Report bad input on stderr: exit 2, or in a multirun mark the cell bad and let the sweep go on."""
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode

    if HydraConfig.initialized() and HydraConfig.get().mode == RunMode.MULTIRUN:
        hc = HydraConfig.get()
        cell = f"cell {hc.job.num} ({' '.join(hc.overrides.task) or 'no overrides'})"
        print(f"stretto: {cell} refused: {_message(err)}", file=sys.stderr, flush=True)
        out = Path(hc.runtime.output_dir)
        out.mkdir(parents=True, exist_ok=True)
        (out / BAD_CELL).write_text(f"{cell}: {_message(err)}\n")
        return
    print(f"stretto: {_message(err)}", file=sys.stderr, flush=True)
    raise SystemExit(2) from None


class BadCells(Callback):
    """At the end of a multirun, the cells refused on bad input (the others ran), and exit code 2 if any.
    Registered in conf/hydra/default.yaml."""

    def on_multirun_start(self, config: DictConfig, **kwargs) -> None:
        self.began = time.time() - 1.0  # file times are coarse on some file systems

    def on_multirun_end(self, config: DictConfig, **kwargs) -> None:
        sweep = Path(str(config.hydra.sweep.dir))
        began = getattr(self, "began", 0.0)
        bad = [p for p in sweep.rglob(BAD_CELL) if p.stat().st_mtime >= began] if sweep.is_dir() else []
        if bad:
            lines = sorted((p.read_text().strip() for p in bad), key=lambda line: int(line.split()[1]))
            print(f"stretto: {len(bad)} cell(s) of the sweep were refused (the others ran):", file=sys.stderr)
            print("\n".join(f"  {line}" for line in lines), file=sys.stderr, flush=True)
            raise SystemExit(2)


@hydra.main(config_path=str(CONF_DIR), config_name="config", version_base="1.3")
@_checked("run")
def run_app(cfg: DictConfig) -> None:
    from stretto.experiment import run  # run.run_job looked up now: tests replace it
    from stretto.experiment.sweep import run_cell  # a named sweep or a multirun: each cell run once
    from stretto.experiment.systems import system_label

    system = system_label(cfg) if cfg.optimizer.name != "none" else None
    _guarded(lambda: run.format_run(run_cell(cfg, run.run_job, system), cfg))


def _guarded(job) -> None:
    from stretto.experiment import tracking

    try:
        print(job(), flush=True)
    except StrettoError as err:
        _failed(err)
        return
    if tracking.UNRECORDED:  # the summary above is printed; say that MLflow lost it
        lost = "; ".join(tracking.UNRECORDED)
        tracking.UNRECORDED.clear()
        _failed(tracking.TrackingError(f"the run finished (summary above) but MLflow did not record it: {lost}"))


@hydra.main(config_path=str(CONF_DIR), config_name="config", version_base="1.3")
@_checked("cache build")
def cache_build_app(cfg: DictConfig) -> None:
    from stretto.experiment import cache_cmd

    _guarded(lambda: cache_cmd.build(cfg))


@hydra.main(config_path=str(CONF_DIR), config_name="config", version_base="1.3")
@_checked("cache info")
def cache_info_app(cfg: DictConfig) -> None:
    from stretto.experiment import cache_cmd

    _guarded(lambda: cache_cmd.info(cfg))


@hydra.main(config_path=str(CONF_DIR), config_name="config", version_base="1.3")
@_checked("plot")
def plot_app(cfg: DictConfig) -> None:
    from stretto.experiment.plots import draw_all, runs_frame

    def job() -> str:
        runs = runs_frame(cfg.tracking, cfg.plot.sweep)
        drawn = draw_all(runs, Path(cfg.plot.out), cfg.plot.prefix)
        return f"{len(runs)} runs -> " + ", ".join(str(p) for p in drawn)

    _guarded(job)


@hydra.main(config_path=str(CONF_DIR), config_name="config", version_base="1.3")
@_checked("compare")
def compare_app(cfg: DictConfig) -> None:
    from stretto.experiment.compare import format_comparison, run_comparison

    _guarded(lambda: format_comparison(run_comparison(cfg)))


@hydra.main(config_path=str(CONF_DIR), config_name="config", version_base="1.3")
@_checked("pipeline")
def pipeline_app(cfg: DictConfig) -> None:
    from stretto.experiment.pipeline_cmd import format_pipeline, run_pipeline_job

    _guarded(lambda: format_pipeline(run_pipeline_job(cfg)))


COMMANDS = {
    "run": run_app,
    "pipeline": pipeline_app,
    "compare": compare_app,
    "plot": plot_app,
    "cache build": cache_build_app,
    "cache info": cache_info_app,
}


def main() -> None:
    args = sys.argv[1:]
    words = 2 if args[:1] == ["cache"] else 1
    command = " ".join(args[:words])
    if command not in COMMANDS:
        if args[:1] in (["-h"], ["--help"]):
            print(USAGE)
            raise SystemExit(0)
        said = f"unknown command '{command}'" if command else "no command given"
        print(f"stretto: {said}\n\n{USAGE}", file=sys.stderr)
        raise SystemExit(2)
    from stretto.experiment.preflight import moved_override

    if moved := moved_override(args[words:]):
        print(f"stretto: {moved}", file=sys.stderr, flush=True)
        raise SystemExit(2)
    sys.argv = [f"stretto {command}", *args[words:]]
    # Hydra would print a config error and exit 1, and shorten our tracebacks: let errors come here instead.
    os.environ.setdefault("HYDRA_FULL_ERROR", "1")
    interrupted: list[int] = []

    def on_ctrl_c(signum: int, frame: object) -> None:
        interrupted.append(signum)
        raise KeyboardInterrupt

    # A library may turn the KeyboardInterrupt into its own error (pydantic's schema builder, cut mid-import, raises
    # SchemaError): remember the Ctrl-C itself, so any error that follows it still ends as an interruption.
    signal.signal(signal.SIGINT, on_ctrl_c)
    try:
        COMMANDS[command]()
    except CompactHydraException as err:  # a bad override or config group: Hydra's own message, exit 2
        cause = f"\n{err.__cause__}" if isinstance(err.__cause__, OmegaConfBaseException) else ""
        print(f"stretto: {err}{cause}", file=sys.stderr, flush=True)
        raise SystemExit(2) from None
    except BaseException as err:
        if not interrupted and not isinstance(err, KeyboardInterrupt):
            raise
        logging.disable(logging.CRITICAL)  # nothing after it: e.g. torch logs cache stats at exit when cut mid-import
        print("interrupted", file=sys.stderr, flush=True)
        raise SystemExit(130) from None


if __name__ == "__main__":
    main()
