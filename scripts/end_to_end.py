"""End-to-end totals: what each system costs, counted whole, against the gold operator alone on every row.

Every system is charged what it needs (DESIGN.md section 7): gold alone, the gold operator on every row (filters
in their cheapest order) and nothing else; a sampling system, the gold labels on its sample + the candidate
operators it profiled (learned operators: their fit and reads) + the optimizer's wall time + execution on the
rows outside the sample. Offline work (KV caches, embeddings) is not in any total; the recordings' embedding
build is reported on its own line. Replayed from recordings/ through the front door (`stretto.query`), no model.

Queries: the paper reproduction's (scripts/paper_reproduction.py): movie, the generated 2-3 filter conjunctions
with >= 20 gold rows (query i with sample seed i, 15% samples); Enron, >= 10 gold rows, 30% samples; and movie
2 filters + 1 extract. Output:

    results/end_to_end.csv        dataset, target, system, queries, met_rate, total_seconds, gold_only_seconds,
                                  total_over_gold_only, exec_over_lotus, profile_share, fallback_rate, labels
    results/end_to_end_runs.csv   one row per run
    results/end_to_end_total_frontier.png / .csv   total / gold alone vs F1 against gold, per system and target

    .venv/bin/python scripts/end_to_end.py                       # everything (about 15 minutes on 2 cores)
    .venv/bin/python scripts/end_to_end.py --queries 4 --datasets movie   # a quick look
"""

from __future__ import annotations

import argparse
import logging
import time
from pathlib import Path

import numpy as np
import pandas as pd
from paper_reproduction import DATASET_SETTINGS, replayed, usable_queries
from tqdm import tqdm

import stretto
from stretto.api import embedding_source
from stretto.execution.gold import gold_decisions, gold_only_seconds
from stretto.experiment.plots import total_frontier
from stretto.operators.learned import is_learned
from stretto.plan.query_generator import generate

ROOT = Path(__file__).resolve().parents[1]
TARGETS = (0.5, 0.7, 0.9)
SYSTEMS = ("stretto", "lotus", "bargain", "gold_only")
COLUMNS = [
    "dataset", "target", "system", "queries", "met_rate", "total_seconds", "gold_only_seconds",
    "total_over_gold_only", "exec_over_lotus", "profile_share", "fallback_rate", "labels", "learned_rate",
]  # fmt: skip
SHAPES = {"movie": ("movie", [2, 3], [0]), "enron": ("enron", [2, 3], [0]), "movie_2f1e": ("movie", [2], [1])}


def runs(shape: str, queries: int, systems, targets, growth: int = 0, path: str | None = None) -> list[dict]:
    dataset, filters, extracts = SHAPES[shape]
    settings = DATASET_SETTINGS[dataset]
    workload, table, spec, source, embeddings = replayed(dataset)
    usable, total = usable_queries(dataset, settings["min_positives"], filters, extracts)
    generated = generate(workload, filters, total, 0, extracts)
    picked = [(i, generated[usable[i % len(usable)]]) for i in range(queries)]
    cells = [(i, q, t, system) for i, q in picked for t in targets for system in systems]
    replay = {"family": spec, "backend": source, "embeddings": embeddings}
    sampling = {"sample_fraction": settings["fraction"], "growth": growth, "path": path}
    return [
        {"dataset": shape, "query": i, **measure(table, q, i, target, system, replay, **sampling)}
        for i, q, target, system in tqdm(cells, desc=shape, unit="run")
    ]


def measure(
    table, q, seed: int, target: float, system: str, replay: dict, *, sample_fraction: float = 0.15,
    sample_size: int | None = None, growth: int = 0, path: str | None = None,
) -> dict:  # fmt: skip
    """One replayed run of query `q` (its sample drawn with `seed`) by `system` at (target, target), judged
    against the gold operator on the whole table, with its costs counted whole and gold alone's beside them."""
    spec, source = replay["family"], replay["backend"]
    decisions = gold_decisions(table, q, source, spec)
    gold_only = gold_only_seconds(table, q, source, spec, decisions)
    began = time.perf_counter()
    answer = stretto.query(
        table, [f.template.text for f in q.filters], [e.template.text for e in q.extracts],
        precision=target, recall=target, system=system, **replay,
        sample_fraction=sample_fraction, sample_size=sample_size, seed=seed, progress=False,
        sample_growth=growth if system == "stretto" else 0,
        settings={"path": path} if path and system == "stretto" else None,
    )  # fmt: skip
    quality = answer.quality("gold")
    costs, plan = answer.costs, answer.plan
    steps = [s.operator for c in plan.cascades for s in c.steps]
    sampled = len(answer.run.sample)
    return {
        "target": target, "system": system,
        "precision": quality.precision, "recall": quality.recall,
        "met": quality.precision >= target and quality.recall >= target,
        "total_seconds": costs.total_seconds, "profile_seconds": costs.profile_seconds,
        "optimize_seconds": costs.optimize_seconds, "execution_seconds": costs.execution_seconds,
        "gold_only_seconds": gold_only, "fallback": sampled > 0 and (bool(plan.fallback) or not steps),
        "labels": int((answer.run.profile.records["operator"] == spec.gold_identity).sum()),
        "learned": any(is_learned(s) for s in steps),
        "wall_seconds": time.perf_counter() - began,
    }  # fmt: skip


def summarise(frame: pd.DataFrame, by=("dataset",), run=("dataset", "query")) -> pd.DataFrame:
    """One row per (`by`..., target, system): the means of the runs; `run` names the columns that identify one
    run's query and sample (execution / LOTUS execution compares the runs of the same query and sample)."""
    lotus = frame[frame.system == "lotus"].set_index([*run, "target"])["execution_seconds"]
    frame = frame.assign(exec_over_lotus=frame.apply(
        lambda r: r.execution_seconds / lotus.get(tuple(r[k] for k in [*run, "target"]), np.nan), axis=1
    ))  # fmt: skip
    grouped = frame.groupby([*by, "target", "system"], sort=False, dropna=False)
    table = grouped.agg(  # labels: the gold answers asked on the sample (distinct texts, per operator)
        queries=("query", "size"),
        met_rate=("met", "mean"),
        total_seconds=("total_seconds", "mean"),
        gold_only_seconds=("gold_only_seconds", "mean"),
        exec_over_lotus=("exec_over_lotus", "mean"),
        profile_seconds=("profile_seconds", "sum"),
        all_seconds=("total_seconds", "sum"),
        fallback_rate=("fallback", "mean"),
        labels=("labels", "mean"),
        learned_rate=("learned", "mean"),
    ).reset_index()
    table["total_over_gold_only"] = table.total_seconds / table.gold_only_seconds
    table["profile_share"] = table.pop("profile_seconds") / table.pop("all_seconds")
    return table[[*COLUMNS, *(key for key in by if key not in COLUMNS)]].round(4)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", nargs="+", default=list(SHAPES), choices=list(SHAPES))
    parser.add_argument("--queries", type=int, default=20)
    parser.add_argument("--systems", nargs="+", default=list(SYSTEMS))
    parser.add_argument("--targets", nargs="+", type=float, default=list(TARGETS))
    parser.add_argument("--growth", type=int, default=0, help="Stretto's sample growth (doublings)")
    parser.add_argument(
        "--path", default=None, help="Stretto's Learn-then-Test paths (optimizer.path; default its own)"
    )
    parser.add_argument("--out", type=Path, default=ROOT / "results" / "end_to_end.csv")
    parser.add_argument(
        "--merge", action="store_true", help="rerun only these cells; keep every other run of the existing runs file"
    )
    args = parser.parse_args()
    logging.getLogger("stretto").setLevel(logging.ERROR)
    frame = pd.DataFrame(
        [
            r
            for shape in args.datasets
            for r in runs(shape, args.queries, args.systems, args.targets, args.growth, args.path)
        ]
    )
    runs_file = args.out.with_name(f"{args.out.stem}_runs.csv")
    if args.merge and runs_file.exists():  # e.g. one system changed: the others' replayed runs stand as they are
        kept = pd.read_csv(runs_file)
        rerun = (
            kept["dataset"].isin(args.datasets) & kept["system"].isin(args.systems) & kept["target"].isin(args.targets)
        )
        frame = pd.concat([kept[~rerun], frame], ignore_index=True)
        rank = {"dataset": list(SHAPES), "system": list(SYSTEMS)}  # the order a whole run writes
        by = ["dataset", "query", "target", "system"]
        frame = frame.sort_values(by, key=lambda c: c.map(rank[c.name].index) if c.name in rank else c, kind="stable")
    frame.to_csv(runs_file, index=False)
    table = summarise(frame)
    table.to_csv(args.out, index=False)
    total_frontier(frame, args.out.parent, prefix=f"{args.out.stem}_")
    with pd.option_context("display.width", 200, "display.max_columns", 20):
        print(table.to_string(index=False))
    for dataset in dict.fromkeys(SHAPES[s][0] for s in args.datasets):
        embedded = embedding_source("replay", recording=ROOT / "recordings" / f"{dataset}.parquet")
        if embedded is not None:
            per_document = embedded.build_seconds.mean() * 1000
            print(f"offline, not in any total: {dataset} embeddings {per_document:.1f} ms/document")


if __name__ == "__main__":
    main()
