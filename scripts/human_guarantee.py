"""Guarantees against the truth: runs certified with the human labels as the sample's labels vs with the gold
operator's, judged against the human labels on the whole table.

Queries: one filter each, the workloads' predicates that carry a human label (movie: "is clearly positive" /
"is clearly negative" against the Rotten Tomatoes sentiment; Enron: the fraud and business-entity predicates
against the annotated columns). Per (query, target, label source) --runs fresh sample seeds through the engine
(`run_query`, Stretto's default rule, replayed from recordings/, learned operators from the recorded embeddings).
With `column` the sample's labels are the human ones (profiling.labels=column): the gold operator is one more
fallible operator, and a query that not even gold alone can be certified at is refused before it runs. A run is
*certified* when it ran a plan certified against its labels: with `gold`, a cascade (gold alone is exact against
gold, and proves nothing about the truth); with `column`, any plan, gold alone included (it was tested against
the labels like any other). Misses are against the human labels on every row of the table.

    .venv/bin/python scripts/human_guarantee.py            # results/human_guarantee.csv (+ _runs.csv; resumable)
    .venv/bin/python scripts/human_guarantee.py --workloads movie --sources column --targets 0.5 0.7 \
        --path learned+scores                               # a path other than the default ("auto")

Columns: workload, query, target, label_source, path (Stretto's paths, "auto" resolved), runs, certified_runs,
precision_misses_human, recall_misses_human, precision_miss_upper, recall_miss_upper (Clopper-Pearson 95% upper
bounds of the miss rates among certified runs), fallback_or_refused_rate (runs that certified nothing: gold alone
with `gold`, refused with `column`), refused_rate, met_rate_human (all runs that returned a result),
total_over_gold_only (mean over the runs that ran).
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

import pandas as pd
from guarantee_validity import audit_parser, cp_upper, kept_runs, saved_runs, write_summary
from paper_reproduction import DATASET_SETTINGS, replayed
from tqdm import tqdm

from stretto.engine import run_query
from stretto.errors import UncertifiableTargets
from stretto.execution.gold import gold_decisions, gold_only_seconds
from stretto.optimizer.gradient import GradientOptimizer, GradientSettings, path_kinds
from stretto.plan.query import Query
from stretto.plan.targets import Targets

ROOT = Path(__file__).resolve().parents[1]
SOURCES = ("gold", "column")
KEY = ["workload", "query", "target", "label_source", "path"]


def labelled_queries(workload: str) -> list[Query]:
    """One single-filter query per predicate of the workload that names a human label."""
    spec, *_ = replayed(workload)
    return [Query(spec.table, (f,), ()) for f in spec.filters if f.label is not None]


def cell_runs(workload: str, runs: int, targets, sources, path: str, done: set) -> pd.DataFrame:
    settings = DATASET_SETTINGS[workload]
    _, table, spec, source, embeddings = replayed(workload)
    out = []
    for q in labelled_queries(workload):
        name = q.filters[0].template.text
        human = q.filters[0].label.truth(table.df).to_numpy()
        gold_seconds = gold_only_seconds(table, q, source, spec, gold_decisions(table, q, source, spec))
        for target in targets:
            for label_source in sources:
                paths = "+".join(path_kinds(path, against_truth=label_source != "gold"))  # what "auto" resolves to
                todo = [seed for seed in range(runs) if (workload, name, target, label_source, paths, seed) not in done]
                for seed in tqdm(todo, desc=f"{workload} {label_source} {target} {name[:40]}", leave=False):
                    row = {"workload": workload, "query": name, "target": target, "label_source": label_source,
                           "path": paths, "seed": seed}  # fmt: skip
                    try:
                        run = run_query(
                            table, q, source, spec, Targets(target, target, 0.95),
                            GradientOptimizer(GradientSettings(seed=seed, path=path)),
                            sample_fraction=settings["fraction"],
                            seed=seed, progress=False, embeddings=embeddings, labels=label_source,
                        )  # fmt: skip
                    except UncertifiableTargets:
                        out.append(row | {"refused": True, "certified": False})
                        continue
                    kept = run.execution.kept
                    tp = int((kept & human).sum())
                    precision = tp / kept.sum() if kept.sum() else 1.0
                    recall = tp / human.sum()
                    cascade = any(c.steps for c in run.plan.cascades) and not run.plan.fallback
                    certified = run.plan.certified and (cascade or label_source == "column")
                    out.append(
                        row | {
                            "refused": False, "certified": certified, "fallback": bool(run.plan.fallback),
                            "precision_human": precision, "recall_human": recall,
                            "precision_miss": precision < target, "recall_miss": recall < target,
                            "total_over_gold_only": run.total_seconds / gold_seconds,
                        }
                    )  # fmt: skip
    return pd.DataFrame(out)


def summarise(runs: pd.DataFrame) -> pd.DataFrame:
    rows = []
    for (workload, query, target, label_source, path), g in runs.groupby(KEY, sort=False):
        cert = g[g.certified.astype(bool)]
        ran = g[~g.refused.astype(bool)]
        k_p, k_r = int(cert.precision_miss.astype(bool).sum()), int(cert.recall_miss.astype(bool).sum())
        met = ~ran.precision_miss.astype(bool) & ~ran.recall_miss.astype(bool)
        rows.append(
            {
                "workload": workload, "query": query, "target": target, "label_source": label_source,
                "path": path, "runs": len(g), "certified_runs": len(cert),
                "precision_misses_human": k_p, "recall_misses_human": k_r,
                "precision_miss_upper": cp_upper(k_p, len(cert)), "recall_miss_upper": cp_upper(k_r, len(cert)),
                "fallback_or_refused_rate": 1.0 - len(cert) / len(g),
                "refused_rate": float(g.refused.astype(bool).mean()),
                "met_rate_human": float(met.mean()) if len(ran) else float("nan"),
                "total_over_gold_only": float(ran.total_over_gold_only.mean()) if len(ran) else float("nan"),
            }
        )  # fmt: skip
    return pd.DataFrame(rows).round(4)


def main() -> None:
    parser = audit_parser(__doc__.splitlines()[0], "human_guarantee.csv")
    parser.add_argument("--sources", nargs="+", default=list(SOURCES), choices=list(SOURCES))
    parser.add_argument("--path", default="auto", help="Stretto's Learn-then-Test paths (optimizer.path)")
    args = parser.parse_args()
    logging.getLogger("stretto").setLevel(logging.ERROR)
    runs_path, runs = saved_runs(args.out)
    began = time.perf_counter()
    for workload in args.workloads:
        for target in args.targets:  # saved as each (workload, target) finishes: resumable
            done = set(runs[[*KEY, "seed"]].itertuples(index=False)) if len(runs) else set()
            new = cell_runs(workload, args.runs, [target], args.sources, args.path, done)
            runs = kept_runs(runs, new, runs_path)
            print(f"{workload} {target}: {time.perf_counter() - began:.0f} s", flush=True)
    write_summary(summarise(runs), args.out)


if __name__ == "__main__":
    main()
