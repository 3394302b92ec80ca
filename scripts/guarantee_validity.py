"""Does the guarantee hold? Many fresh samples of a few fixed queries, judged per target on certified runs.

For each workload (movie, Enron) it fixes at most --queries conjunctions (2-3 filters; those with the most
gold rows, so certifying is possible at all), and for each target (.5/.7/.9) and rule runs --runs fresh sample
seeds through the engine (`run_query`, replayed from recordings/, learned operators from the recorded
embeddings). A run is *certified* when a plan other than gold alone ran (a fallback meets the targets by
construction and proves nothing). Per run: the result's precision and recall against the gold operator on the
whole table, whether a perfect cascade could have been certified with all of that sample's labels (its gold
positives: the limit no rule can beat with that sample), the labels used, and the total seconds over gold alone
on every row. Rules: `ltt` (the default: Learn-then-Test, paths learned+scores, gold labels alone profiled) and
`paper` (the paper's selection rule with Beta(1,1) bounds, over the LLM family, no learned operator;
--paper-fast: 16 restarts x 60 + 30 steps; its descent takes seconds per run, so --paper-runs may give it fewer
runs per cell).

    .venv/bin/python scripts/guarantee_validity.py --rules ltt                 # the committed results
    .venv/bin/python scripts/guarantee_validity.py --rules paper --paper-fast  # (see results/README.md)
    # results/guarantee_validity.csv (+ _runs.csv); resumable: finished cells are kept and skipped

Output columns: workload, query, target, rule, runs, certified_runs, certifiable_runs, precision_misses,
recall_misses, precision_miss_upper, recall_miss_upper (Clopper-Pearson 95% upper bounds of the miss rates
among certified runs), fallback_rate, met_rate (all runs), labels (mean gold labels per run), total_over_gold_only;
and one row per (workload, target, rule) with query "(pooled)".
"""

from __future__ import annotations

import argparse
import logging
import time
from pathlib import Path

import pandas as pd
from paper_reproduction import DATASET_SETTINGS, replayed
from scipy import stats
from tqdm import tqdm

from stretto.engine import run_query
from stretto.execution.gold import gold_decisions, gold_only_seconds
from stretto.optimizer.certify import could_certify
from stretto.optimizer.gradient import PAPER_RULE, GradientOptimizer, GradientSettings
from stretto.plan.targets import Targets

ROOT = Path(__file__).resolve().parents[1]
TARGETS = (0.5, 0.7, 0.9)
RULES = ("ltt", "paper")


def cp_upper(k: int, n: int, confidence: float = 0.95) -> float:
    """One-sided Clopper-Pearson upper bound of a rate after k of n."""
    return 1.0 if n == 0 or k == n else float(stats.beta.ppf(confidence, k + 1, n - k))


def saved_runs(out: Path) -> tuple[Path, pd.DataFrame]:
    """Where an audit writing `out` keeps its runs (`<stem>_runs.csv`), and the runs already there."""
    path = out.with_name(f"{out.stem}_runs.csv")
    return path, pd.read_csv(path) if path.exists() else pd.DataFrame()


def kept_runs(runs: pd.DataFrame, new: pd.DataFrame, path: Path) -> pd.DataFrame:
    """The runs so far with the new ones, saved at once and atomically (an interrupted audit resumes from them)."""
    if len(new):
        runs = pd.concat([runs, new], ignore_index=True)
        partial = path.with_name(path.name + ".partial")
        runs.to_csv(partial, index=False)
        partial.replace(path)
    return runs


def write_summary(table: pd.DataFrame, out: Path) -> None:
    table.to_csv(out, index=False)
    with pd.option_context("display.width", 250, "display.max_columns", 20, "display.max_colwidth", 60):
        print(table.to_string(index=False))


def optimizer(rule: str, seed: int, fast: bool, certify_fraction: float | None = None) -> GradientOptimizer:
    if rule == "ltt":
        held_out = {} if certify_fraction is None else {"certify_fraction": certify_fraction}
        return GradientOptimizer(GradientSettings(seed=seed, **held_out))
    quick = {"jobs": 16, "steps": 60, "refine_steps": 30} if fast else {}
    return GradientOptimizer(GradientSettings(seed=seed, **PAPER_RULE, **quick))


def cell_runs(
    workload: str, queries: int, runs: int, rules, targets, fast: bool, done: set, certify_fraction: float | None = None
) -> pd.DataFrame:
    """Every run not yet in `done` ((workload, query, target, rule) cells), one row each."""
    settings = DATASET_SETTINGS[workload]
    spec_workload, table, spec, source, embeddings = replayed(workload)
    candidates = []
    for q in spec_workload.conjunctions([2, 3]):
        decisions = gold_decisions(table, q, source, spec)
        positives = int(decisions.all(axis=0).sum())
        if positives >= settings["min_positives"]:
            candidates.append((positives, q, decisions))
    fixed = sorted(candidates, key=lambda c: -c[0])[:queries]
    out = []
    for positives, q, decisions in fixed:
        name = " AND ".join(f.template.text for f in q.filters)
        truth = decisions.all(axis=0)
        gold_seconds = gold_only_seconds(table, q, source, spec, decisions)
        for target in targets:
            for rule in rules:
                if (workload, name, target, rule) in done:
                    continue
                for seed in tqdm(range(runs), desc=f"{workload} {rule} {target} {name[:40]}", leave=False):
                    rule_optimizer = optimizer(rule, seed, fast, certify_fraction)
                    run = run_query(
                        table, q, source, spec, Targets(target, target, 0.95), rule_optimizer,
                        sample_fraction=settings["fraction"], seed=seed, progress=False, embeddings=embeddings,
                    )  # fmt: skip
                    kept = run.execution.kept
                    tp = int((kept & truth).sum())
                    precision = tp / kept.sum() if kept.sum() else 1.0
                    recall = tp / truth.sum()
                    steps = [s for c in run.plan.cascades for s in c.steps]
                    certified = bool(steps) and not run.plan.fallback
                    out.append(
                        {
                            "workload": workload, "query": name, "gold_rows": positives, "target": target,
                            "rule": rule, "seed": seed, "certified": certified,
                            "certifiable": run.problem is not None and could_certify(run.problem),
                            "precision": precision, "recall": recall,
                            "precision_miss": precision < target, "recall_miss": recall < target,
                            "labels": int((run.profile.records["operator"] == spec.gold_identity).sum()),
                            "total_over_gold_only": run.total_seconds / gold_seconds,
                        }
                    )  # fmt: skip
    return pd.DataFrame(out)


def summarise(runs: pd.DataFrame) -> pd.DataFrame:
    rows = []
    pooled = runs.assign(query="(pooled)")
    for (workload, query, target, rule), g in pd.concat([runs, pooled]).groupby(
        ["workload", "query", "target", "rule"], sort=False
    ):
        cert = g[g.certified]
        k_p, k_r = int(cert.precision_miss.sum()), int(cert.recall_miss.sum())
        rows.append(
            {
                "workload": workload, "query": query, "target": target, "rule": rule, "runs": len(g),
                "certified_runs": len(cert), "certifiable_runs": int(g.certifiable.sum()),
                "precision_misses": k_p, "recall_misses": k_r,
                "precision_miss_upper": cp_upper(k_p, len(cert)), "recall_miss_upper": cp_upper(k_r, len(cert)),
                "fallback_rate": 1.0 - len(cert) / len(g),
                "met_rate": float((~g.precision_miss & ~g.recall_miss).mean()),
                "labels": g.labels.mean(), "total_over_gold_only": g.total_over_gold_only.mean(),
            }
        )  # fmt: skip
    return pd.DataFrame(rows).round(4)


def audit_parser(description: str, out: str) -> argparse.ArgumentParser:
    """The options every audit takes: workloads, runs per cell, targets, and the summary's path."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--workloads", nargs="+", default=["movie", "enron"])
    parser.add_argument("--runs", type=int, default=200)
    parser.add_argument("--targets", nargs="+", type=float, default=list(TARGETS))
    parser.add_argument("--out", type=Path, default=ROOT / "results" / out)
    return parser


def main() -> None:
    parser = audit_parser(__doc__.splitlines()[0], "guarantee_validity.csv")
    parser.add_argument("--queries", type=int, default=5)
    parser.add_argument("--rules", nargs="+", default=list(RULES), choices=list(RULES))
    parser.add_argument("--paper-fast", action="store_true", help="the paper rule with 16 restarts x 60 + 30 steps")
    parser.add_argument("--paper-runs", type=int, default=None, help="runs per cell of the paper rule (default --runs)")
    parser.add_argument(
        "--certify-fraction", type=float, default=None, help="the default rule's held-out share (default its own)"
    )
    args = parser.parse_args()
    logging.getLogger("stretto").setLevel(logging.ERROR)
    runs_path, runs = saved_runs(args.out)
    began = time.perf_counter()
    for workload in args.workloads:
        for rule in args.rules:
            for target in args.targets:  # one cell group at a time, saved as it finishes (resumable)
                done = (
                    set(runs[["workload", "query", "target", "rule"]].itertuples(index=False)) if len(runs) else set()
                )
                count = args.paper_runs if rule == "paper" and args.paper_runs else args.runs
                new = cell_runs(
                    workload, args.queries, count, [rule], [target], args.paper_fast, done, args.certify_fraction
                )
                runs = kept_runs(runs, new, runs_path)
                print(f"{workload} {rule} {target}: {time.perf_counter() - began:.0f} s", flush=True)
    write_summary(summarise(runs), args.out)


if __name__ == "__main__":
    main()
