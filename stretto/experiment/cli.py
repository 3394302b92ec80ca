"""The `stretto` command: `stretto run [hydra overrides]` runs the configured job."""

from __future__ import annotations

import logging
import sys
from pathlib import Path

import hydra
from omegaconf import DictConfig, OmegaConf

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
            stretto run dataset.limit=100 operators=qwen_1_5b
            stretto run --cfg job        # print the composed config
            stretto run -m operators=qwen_0_5b,smollm2_135m   # a multirun sweep
            stretto run kv=stored kv.variant.press=knorm kv.variant.ratio=0.5  # on stored KV caches
            stretto run experiment=optimized_movie   # Stretto's optimizer at targets, replayed from recordings
            stretto run optimizer=stretto targets.precision=0.7 targets.recall=0.7   # same, real models
  compare  the configured query answered by several systems on the same profiles (compare.systems), one table
           and the frontier plot, e.g.  stretto compare compare.systems=[stretto,lotus,bargain,gold_only]
  plot     comparison plots (PNG + CSV) from the MLflow runs of an experiment or sweep, e.g.
             stretto plot tracking.experiment=paper_reproduction plot.sweep=paper_reproduction plot.out=results
  pipeline  a multi-table pipeline (conf/pipeline/: semantic joins, relational steps), e.g.
              stretto pipeline experiment=restaurants_join targets.precision=0.9 targets.recall=0.9
  cache build   store the KV caches of every configured variant for the query's rows, e.g.
                  stretto cache build kv=frontier dataset=enron query=enron_fraud
  cache info    entries and sizes per (model, variant) in the KV cache store
"""

log = logging.getLogger("stretto")


@hydra.main(config_path=str(CONF_DIR), config_name="config", version_base="1.3")
def run_app(cfg: DictConfig) -> None:
    from stretto.experiment.sweep import run_cell  # a named sweep or a multirun: each cell run once

    if cfg.optimizer.name != "none":
        from stretto.experiment.optimized_run import format_optimized, run_optimized
        from stretto.experiment.systems import system_label

        _guarded(lambda: format_optimized(run_cell(cfg, run_optimized, system_label(cfg)), cfg))
        return
    from stretto.experiment.run import format_summary, run_job

    _guarded(lambda: format_summary(run_cell(cfg, run_job, None), cfg))


def _guarded(job) -> None:
    try:
        print(job())
    except StrettoError as err:
        log.error("%s: %s", type(err).__name__, err)
        raise SystemExit(2) from None


@hydra.main(config_path=str(CONF_DIR), config_name="config", version_base="1.3")
def cache_build_app(cfg: DictConfig) -> None:
    from stretto.experiment import cache_cmd

    _guarded(lambda: cache_cmd.build(cfg))


@hydra.main(config_path=str(CONF_DIR), config_name="config", version_base="1.3")
def cache_info_app(cfg: DictConfig) -> None:
    from stretto.experiment import cache_cmd

    _guarded(lambda: cache_cmd.info(cfg))


@hydra.main(config_path=str(CONF_DIR), config_name="config", version_base="1.3")
def plot_app(cfg: DictConfig) -> None:
    from stretto.experiment.plots import draw_all, runs_frame

    def job() -> str:
        runs = runs_frame(cfg.tracking, cfg.plot.sweep)
        drawn = draw_all(runs, Path(cfg.plot.out), cfg.plot.prefix)
        return f"{len(runs)} runs -> " + ", ".join(str(p) for p in drawn)

    _guarded(job)


@hydra.main(config_path=str(CONF_DIR), config_name="config", version_base="1.3")
def compare_app(cfg: DictConfig) -> None:
    from stretto.experiment.compare import format_comparison, run_comparison

    _guarded(lambda: format_comparison(run_comparison(cfg)))


@hydra.main(config_path=str(CONF_DIR), config_name="config", version_base="1.3")
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
        asked_for_help = args[:1] in (["-h"], ["--help"])
        print(USAGE, file=sys.stdout if asked_for_help else sys.stderr)
        raise SystemExit(0 if asked_for_help else 2)
    sys.argv = [f"stretto {command}", *args[words:]]
    COMMANDS[command]()


if __name__ == "__main__":
    main()
