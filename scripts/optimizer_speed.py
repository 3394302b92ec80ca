"""Optimizer wall time per pipeline of 2-4 filters on this CPU, on recorded movie scores (no model).

For each pipeline size it times GradientOptimizer.optimize (default settings) at targets (.3,.3) on the
--repeats conjunctions of that size with the most gold-positive rows (each with its own sample seed), so
that the descent really runs; `seconds` is the median over runs whose descent ran (a query that even the
gold operator alone cannot certify returns at once: `seconds_without_descent`).

    .venv/bin/python scripts/optimizer_speed.py   # results/optimizer_speed.csv
"""

from __future__ import annotations

import argparse
import os
import platform
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from omegaconf import OmegaConf

from stretto.data.datasets import load_dataset
from stretto.engine import plan_problem, profile_query
from stretto.execution.gold import gold_decisions
from stretto.operators.family import FamilySpec, ReplayFamily
from stretto.optimizer.gradient import GradientOptimizer, GradientSettings
from stretto.plan.targets import Targets
from stretto.plan.workload import Workload
from stretto.profiling.profile import Profile
from stretto.profiling.sample import profiling_sample

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workload", default="movie")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--out", type=Path, default=ROOT / "results" / "optimizer_speed.csv")
    args = parser.parse_args()

    workload = Workload.of(OmegaConf.to_container(OmegaConf.load(ROOT / "conf" / "workload" / f"{args.workload}.yaml")))
    table = load_dataset(workload.dataset)[workload.table]
    recording = Profile.load(ROOT / "recordings" / f"{args.workload}.parquet")
    spec = FamilySpec.of(OmegaConf.to_container(OmegaConf.load(ROOT / "conf" / "family" / "default.yaml")))
    source = ReplayFamily(spec, recording)
    settings = GradientSettings()
    rows = []
    for size in (2, 3, 4):
        queries = sorted(
            workload.conjunctions([size]),
            key=lambda q: -gold_decisions(table, q, source, spec).all(axis=0).sum(),
        )[: args.repeats]
        times, attempts = [], []
        for r, query in enumerate(queries):
            sample = profiling_sample(len(table), 0.15, r)
            profile = profile_query(table, query, source, spec, sample=sample, progress=False)
            problem = plan_problem(table, query, spec, profile, sample, Targets(0.3, 0.3, 0.95))
            began = time.perf_counter()
            plan = GradientOptimizer(GradientSettings(**{**settings.__dict__, "seed": r})).optimize(problem)
            times.append(time.perf_counter() - began)
            attempts.append(plan.notes["attempts"])
        descended = [t for t, a in zip(times, attempts, strict=True) if a > 0]
        skipped = [t for t, a in zip(times, attempts, strict=True) if a == 0]  # gold alone was not certifiable
        rows.append(
            {
                "pipeline_size": size,
                "seconds": float(np.median(descended)) if descended else float("nan"),
                "seconds_max": float(np.max(descended)) if descended else float("nan"),
                "runs": len(times),
                "runs_with_descent": len(descended),
                "seconds_without_descent": float(np.median(skipped)) if skipped else float("nan"),
                "descent_attempts": int(sum(attempts)),
                "jobs": settings.jobs,
                "steps": settings.steps + settings.refine_steps,
                "sample_tuples": len(sample),
                "candidates_per_filter": len(spec.identities) - 1,
                "machine": f"{platform.machine()} {os.cpu_count()} cores, torch {torch.__version__} threads "
                f"{torch.get_num_threads()}",
            }
        )
        print(rows[-1])
    args.out.parent.mkdir(parents=True, exist_ok=True)
    pd.DataFrame(rows).to_csv(args.out, index=False)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
