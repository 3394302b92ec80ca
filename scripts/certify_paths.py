"""Which Learn-then-Test path certifies more often: replayed movie queries, the ladder and the scores path,
and the paper's rule beside them (issue 15, item 1).

Run i at a target answers the usable conjunction i mod K (2- and 3-filter conjunctions of the workload with
>= --min-positives gold rows) on the profiling sample of seed i (--fraction of the table), replayed from
recordings/<workload>.parquet; every rule sees the same sample. Per run: whether a plan other than gold alone
was certified, the predicted cost relative to gold alone, the result's precision and recall against the gold
operator on the whole table (the sample's rows answered by gold, the rest by the plan, forcing drawn), and
whether a perfect cascade could be certified with all the sample's labels / with the certification half.

    .venv/bin/python scripts/certify_paths.py                 # results/certify_paths.csv, certify_paths_runs.csv
    .venv/bin/python scripts/certify_paths.py --seeds 40 --rules ltt_scores --fast
"""

from __future__ import annotations

import argparse
import logging
import time
from pathlib import Path

import numpy as np
import pandas as pd
from omegaconf import OmegaConf
from scipy import stats

from stretto.data.datasets import load_dataset
from stretto.engine import plan_problem, profile_query
from stretto.execution.gold import gold_decisions
from stretto.operators.family import FamilySpec, ReplayFamily
from stretto.optimizer.certify import could_certify, plan_counts
from stretto.optimizer.gradient import PAPER_RULE, GradientOptimizer, GradientSettings
from stretto.plan.targets import Targets
from stretto.plan.workload import Workload
from stretto.profiling.profile import Profile
from stretto.profiling.sample import profiling_sample

ROOT = Path(__file__).resolve().parents[1]
RULES = {
    "ltt_ladder": {"certify": "ltt", "path": "ladder"},
    "ltt_scores": {"certify": "ltt", "path": "scores"},
    "ltt_both": {"certify": "ltt", "path": "both"},
    "paper": PAPER_RULE,
}


def cp_upper(k: int, n: int, confidence: float = 0.95) -> float:
    return 1.0 if n == 0 or k == n else float(stats.beta.ppf(confidence, k + 1, n - k))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workload", default="movie")
    parser.add_argument("--seeds", type=int, default=40)
    parser.add_argument("--targets", type=float, nargs="+", default=[0.7, 0.9])
    parser.add_argument("--rules", nargs="+", default=list(RULES), choices=list(RULES))
    parser.add_argument("--fraction", type=float, default=0.15)
    parser.add_argument("--min-positives", type=int, default=20)
    parser.add_argument("--fast", action="store_true", help="32 jobs, 80 + 40 steps (the tests' settings)")
    parser.add_argument("--name", default="certify_paths")
    parser.add_argument("--out", type=Path, default=ROOT / "results")
    args = parser.parse_args()
    logging.basicConfig(level=logging.ERROR)

    conf = ROOT / "conf"
    workload = Workload.of(OmegaConf.to_container(OmegaConf.load(conf / "workload" / f"{args.workload}.yaml")))
    table = load_dataset(workload.dataset)[workload.table]
    spec = FamilySpec.of(OmegaConf.to_container(OmegaConf.load(conf / "family" / "default.yaml")))
    source = ReplayFamily(spec, Profile.load(ROOT / "recordings" / f"{args.workload}.parquet"))
    n = len(table)
    everything = np.arange(n)
    queries, full = [], {}
    for q in workload.conjunctions([2, 3]):
        if gold_decisions(table, q, source, spec).all(axis=0).sum() < args.min_positives:
            continue
        queries.append(q)
        profile = profile_query(table, q, source, spec, sample=everything, progress=False)
        full[q] = plan_problem(table, q, spec, profile, everything, Targets())
    print(f"{len(queries)} queries with >= {args.min_positives} gold rows")
    fast = {"jobs": 32, "steps": 80, "refine_steps": 40} if args.fast else {}

    rows = []
    began = time.perf_counter()
    for target in args.targets:
        targets = Targets(target, target, 0.95)
        for seed in range(args.seeds):
            q = queries[seed % len(queries)]
            sample = profiling_sample(n, args.fraction, seed)
            profile = profile_query(table, q, source, spec, sample=sample, progress=False)
            problem = plan_problem(table, q, spec, profile, sample, targets)
            rest = full[q].subset(np.setdiff1d(everything, sample))
            p_sample = int(problem.labels.sum())
            half = problem.split(0.5, np.random.default_rng(seed))[1]
            for rule in args.rules:
                settings = GradientSettings(seed=seed, **fast, **RULES[rule])
                t0 = time.perf_counter()
                plan = GradientOptimizer(settings).optimize(problem)
                seconds = time.perf_counter() - t0
                c = plan_counts(rest, plan, np.random.default_rng([seed, 7]))
                tp, kept, positives = c.tp + p_sample, c.kept + p_sample, c.positives + p_sample
                precision = tp / kept if kept else 1.0
                recall = tp / positives if positives else 1.0
                rows.append(
                    {
                        "target": target,
                        "seed": seed,
                        "query": " AND ".join(f.template.text for f in q.filters),
                        "rule": rule,
                        "certified": not plan.fallback,
                        "certifiable_all": could_certify(problem),
                        "certifiable_half": could_certify(half),
                        "sample_positives": p_sample,
                        "cost_ratio": plan.cost_per_tuple / plan.gold_cost_per_tuple,
                        "precision": precision,
                        "recall": recall,
                        "precision_miss": precision < target,
                        "recall_miss": recall < target,
                        "path_length": plan.notes.get("path_length"),
                        "optimize_seconds": seconds,
                    }
                )
        print(f"target {target}: {time.perf_counter() - began:.0f} s", flush=True)
        args.out.mkdir(parents=True, exist_ok=True)
        pd.DataFrame(rows).to_csv(args.out / f"{args.name}_runs.csv", index=False)  # so far
    runs = pd.DataFrame(rows)
    summary = []
    for (target, rule), g in runs.groupby(["target", "rule"]):
        cert = g[g.certified]
        k_p, k_r = int(cert.precision_miss.sum()), int(cert.recall_miss.sum())
        summary.append(
            {
                "target": target,
                "rule": rule,
                "runs": len(g),
                "certified_runs": len(cert),
                "certifiable_runs": int(g.certifiable_all.sum()),
                "certifiable_half_runs": int(g.certifiable_half.sum()),
                "certified_per_certifiable": len(cert) / max(1, int(g.certifiable_all.sum())),
                "precision_misses": k_p,
                "recall_misses": k_r,
                "precision_miss_upper": cp_upper(k_p, len(cert)),
                "recall_miss_upper": cp_upper(k_r, len(cert)),
                "cost_ratio_all": g.cost_ratio.mean(),
                "cost_ratio_certified": cert.cost_ratio.mean() if len(cert) else np.nan,
                "met_rate": float((~g.precision_miss & ~g.recall_miss).mean()),
                "optimize_seconds": g.optimize_seconds.mean(),
            }
        )
    summary = pd.DataFrame(summary)
    args.out.mkdir(parents=True, exist_ok=True)
    runs.to_csv(args.out / f"{args.name}_runs.csv", index=False)
    summary.to_csv(args.out / f"{args.name}.csv", index=False)
    print(summary.to_string(index=False, float_format=lambda x: f"{x:.3f}"))


if __name__ == "__main__":
    main()
