"""Optimizer wall time per pipeline of 2-4 filters on this CPU, on recorded movie scores (no model).

For each pipeline size it times GradientOptimizer.optimize (default settings) on --repeats
(query, sample seed) pairs drawn from the workload's conjunctions of that size, at targets (.7,.7).

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
from stretto.operators.family import FamilySpec, ReplayFamily
from stretto.optimizer.gradient import GradientOptimizer, GradientSettings
from stretto.optimizer.profile import Profile
from stretto.optimizer.sampling import profiling_sample
from stretto.plan.targets import Targets
from stretto.plan.workload import Workload

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
        queries = workload.conjunctions([size])
        times = []
        for r in range(args.repeats):
            query = queries[r % len(queries)]
            sample = profiling_sample(len(table), 0.15, r)
            profile = profile_query(table, query, source, spec, sample=sample, progress=False)
            problem = plan_problem(table, query, spec, profile, sample, Targets(0.7, 0.7, 0.95))
            began = time.perf_counter()
            GradientOptimizer(GradientSettings(**{**settings.__dict__, "seed": r})).optimize(problem)
            times.append(time.perf_counter() - began)
        rows.append(
            {
                "pipeline_size": size,
                "seconds": float(np.median(times)),
                "seconds_max": float(np.max(times)),
                "runs": len(times),
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
