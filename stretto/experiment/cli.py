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

USAGE = """usage: stretto COMMAND [hydra overrides ...]

commands:
  run     run the configured query (default config: conf/config.yaml), e.g.
            stretto run dataset.limit=100 operators=qwen_1_5b
            stretto run --cfg job        # print the composed config
            stretto run -m operators=qwen_0_5b,smollm2_135m   # a multirun sweep
"""

log = logging.getLogger("stretto")


@hydra.main(config_path=str(CONF_DIR), config_name="config", version_base="1.3")
def run_app(cfg: DictConfig) -> None:
    from stretto.experiment.run import format_summary, run_job

    try:
        summary = run_job(cfg)
    except StrettoError as err:
        log.error("%s: %s", type(err).__name__, err)
        raise SystemExit(2) from None
    print(format_summary(summary, cfg))


COMMANDS = {"run": run_app}


def main() -> None:
    args = sys.argv[1:]
    if not args or args[0] in ("-h", "--help") or args[0] not in COMMANDS:
        print(USAGE, file=sys.stderr if args and args[0] not in ("-h", "--help") else sys.stdout)
        raise SystemExit(0 if args and args[0] in ("-h", "--help") else 2)
    command = args[0]
    sys.argv = [f"stretto {command}", *args[1:]]
    COMMANDS[command]()


if __name__ == "__main__":
    main()
