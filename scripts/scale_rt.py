"""Scale: every system on the 8,530 Rotten Tomatoes reviews, and how its cost grows with the table.

Replayed from recordings/movie_rt.parquet (`make scale` installs the table; the recording is made by
`scripts/record_scores.py --workload movie_rt --chunk 250`, in the table's fixed random order, and may cover only
its first rows: every slice here is a prefix of what is recorded). Queries: the 2- and 3-filter conjunctions of
the workload's four predicates (conf/workload/movie_rt.yaml), and 2 filters + its extract where the recording
holds the extract, whose gold result holds >= --min-positives rows of the smallest slice, each run with several
sample seeds. Every run goes through the front door (`stretto.query`)
and is counted whole (DESIGN.md section 7, as in scripts/end_to_end.py): gold labels on the sample + profiling +
optimization + execution on the rest, against gold alone on every row. Stretto samples a fixed count of tuples
(`sample_size`); LOTUS and BARGAIN sample the way their authors do (sample_size empty).

    results/scale_rt.csv          the largest recorded slice, Stretto with samples of 300 / 600 / 1,000 tuples:
                                  the columns of results/end_to_end.csv plus rows and sample_size
    results/scale_growth.csv      the same queries on slices of 1,000 / 2,000 / 4,000 / 8,530 rows (those shorter
                                  than the recorded prefix, and the prefix itself)
                                  at a fixed sample of --growth-sample tuples
    results/scale_growth_fit.csv  per system and target, total seconds = a + b x rows fitted by least squares and
                                  gold alone = g x rows: what total / gold-only total becomes at 100k and 1M rows
    results/scale_growth.png      total / gold-only total against rows
    results/scale_runs.csv        one row per run of both parts, written as each run ends; a run already there
                                  for the same recording (its checksum) is not run again, so a grid interrupted or
                                  split over sessions resumes (e.g. BARGAIN's slow runs later, --systems bargain),
                                  and both summaries are made from every run there

    .venv/bin/python scripts/scale_rt.py                                   # everything recorded so far
    .venv/bin/python scripts/scale_rt.py --seeds 1 --targets 0.7 --sizes 600   # a quick look
    .venv/bin/python scripts/scale_rt.py --first-row 3750 --out results/scale_from_3750   # slices from row 3,750
"""

from __future__ import annotations

import argparse
import hashlib
import logging
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
from end_to_end import COLUMNS, SYSTEMS, TARGETS, measure, summarise
from paper_reproduction import replayed
from record_scores import machine
from tqdm import tqdm

from stretto.execution.gold import gold_decisions
from stretto.plan.query_generator import generate
from stretto.profiling.profile import Profile, row_keys

ROOT = Path(__file__).resolve().parents[1]
WORKLOAD = "movie_rt"
SLICES = (1_000, 2_000, 4_000, 8_530)
NAMES = {"sizes": "scale_rt", "growth": "scale_growth"}  # each part's summary: <name>.csv
EXTRAPOLATE = (100_000, 1_000_000)


def answered(records: pd.DataFrame, table, predicates) -> np.ndarray:
    """Per row of the table: whether the recording answers each of these predicates there with every operator."""
    covered = np.ones(len(table), dtype=bool)
    for predicate in predicates:
        template = predicate.template
        per_row = records[records["template"] == template.text].groupby("row_key")["operator"].nunique()
        full = set(per_row[per_row == records["operator"].nunique()].index)
        covered &= np.isin(row_keys(table.df, template), list(full))
    return covered


def recorded_rows(records: pd.DataFrame, table, workload) -> int:
    """How many leading rows of the table the recording answers for every filter with every operator."""
    covered = answered(records, table, workload.filters)
    return len(table) if covered.all() else int(np.argmin(covered))


def query_name(q) -> str:
    return " AND ".join(p.template.text.removeprefix("{text} ") for p in [*q.filters, *q.extracts])


class Journal:
    """The runs of both parts, one row each, rewritten (atomically) as each run ends; a run of the same recording,
    slice, sample size, query, seed, target and system is kept, not run again."""

    KEY = ("recording", "first_row", "rows", "sample_size", "query_name", "seed", "target", "system")

    def __init__(self, path: Path, recording: str) -> None:
        self.path, self.recording = path, recording
        self.runs = pd.read_csv(path) if path.exists() else pd.DataFrame(columns=list(self.KEY))
        if "recording" not in self.runs:  # runs written before the journal: of an unknown recording, run again
            self.runs = pd.DataFrame(columns=list(self.KEY))
        self.done = {self.key(r) for r in self.runs.to_dict("records")}

    def key(self, run: dict) -> tuple:
        size = run["sample_size"]
        size = None if size is None or pd.isna(size) else int(size)
        return (run["recording"], int(run["first_row"]), int(run["rows"]), size, run["query_name"], int(run["seed"]),
                float(run["target"]), run["system"])  # fmt: skip

    def add(self, run: dict) -> None:
        self.runs = pd.DataFrame([*self.runs.to_dict("records"), run])  # dtypes from every run (sizes all empty)
        self.done.add(self.key(run))
        tmp = self.path.with_suffix(".tmp")
        self.runs.to_csv(tmp, index=False)
        tmp.replace(self.path)

    def current(self, first: int) -> pd.DataFrame:
        """Every run of this recording from this first row (those of an earlier recording are left out)."""
        runs = self.runs[(self.runs["recording"] == self.recording) & (self.runs["first_row"] == first)]
        return runs.astype({"met": bool, "fallback": bool, "learned": bool})


def grid(table, queries, seeds: int, targets, systems, replay: dict, sizes, rows: int, first: int, journal) -> None:
    """Every (query, seed, target, system) on the table's first `rows` rows, Stretto once per sample size; each
    run goes to the journal as it ends (those it holds are skipped)."""
    sliced = table.head(rows)
    where = {"recording": journal.recording, "dataset": WORKLOAD, "first_row": first, "rows": rows}
    cells = [
        {
            **where,
            "sample_size": size,
            "query": i,
            "query_name": query_name(q),
            "seed": seed,
            "target": target,
            "system": system,
        }
        for i, q in enumerate(queries)
        for seed in range(seeds)
        for target in targets
        for system in systems
        for size in (sizes if system == "stretto" else [None])
    ]
    todo = [c for c in cells if journal.key(c) not in journal.done]
    here = machine()
    print(f"{rows} rows: {len(cells) - len(todo)} of {len(cells)} runs in {journal.path} already")
    for cell in tqdm(todo, desc=f"{rows} rows", unit="run"):
        q = queries[cell["query"]]
        measured = measure(sliced, q, cell["seed"], cell["target"], cell["system"], replay,
                           sample_size=cell["sample_size"])  # fmt: skip
        journal.add({**cell, **measured, "machine": here})


def growth_fit(table: pd.DataFrame) -> pd.DataFrame:
    """Per (system, target): total seconds = a + b x rows and gold alone = g x rows (least squares over the
    slices, three at least: two extrapolate nothing), and the ratio (a + b N) / (g N) they imply at N = 100k and 1M
    rows (b / g as N grows)."""
    out = []
    for (system, target), cell in table.groupby(["system", "target"], sort=False):
        rows = cell["rows"].to_numpy(float)
        b, a = np.polyfit(rows, cell["total_seconds"], 1) if len(cell) >= 3 else (np.nan, np.nan)
        g = float(rows @ cell["gold_only_seconds"] / (rows @ rows))
        fitted = {f"ratio_at_{n}": (a + b * n) / (g * n) for n in EXTRAPOLATE}
        out.append({"system": system, "target": target, "slices": len(cell), "fixed_seconds": a,
                    "seconds_per_row": b, "gold_seconds_per_row": g, **fitted, "ratio_limit": b / g})  # fmt: skip
    return pd.DataFrame(out).round(5)


def plot_growth(table: pd.DataFrame, out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    targets = sorted(table["target"].unique())
    fig, axes = plt.subplots(1, len(targets), figsize=(4.2 * len(targets), 3.6), sharey=True, squeeze=False)
    for ax, target in zip(axes[0], targets, strict=True):
        for system, cell in table[table["target"] == target].groupby("system", sort=False):
            cell = cell.sort_values("rows")
            ax.plot(cell["rows"], cell["total_over_gold_only"], marker="o", label=system)
        ax.axhline(1.0, color="grey", lw=0.8, ls="--")
        ax.set(xscale="log", title=f"targets ({target}, {target})", xlabel="rows")
    axes[0][0].set_ylabel("total / gold-only total")
    axes[0][0].legend()
    fig.tight_layout()
    fig.savefig(out, dpi=120)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--systems", nargs="+", default=list(SYSTEMS))
    parser.add_argument("--targets", nargs="+", type=float, default=list(TARGETS))
    parser.add_argument("--seeds", type=int, default=3, help="sample seeds per query")
    parser.add_argument("--sizes", nargs="+", type=int, default=[300, 600, 1_000], help="Stretto's sample counts")
    parser.add_argument("--growth-sample", type=int, default=600, help="the fixed sample count of the slices")
    parser.add_argument("--growth-seeds", type=int, default=1, help="sample seeds per query on the slices")
    parser.add_argument("--min-positives", type=int, default=20, help="gold rows a query keeps in 1,000 rows")
    parser.add_argument("--skip", nargs="*", default=[], choices=["sizes", "growth"])
    parser.add_argument("--first-row", type=int, default=0, help="slices start at this row of the table")
    parser.add_argument("--out", type=Path, default=ROOT / "results")
    args = parser.parse_args()
    logging.getLogger("stretto").setLevel(logging.ERROR)
    args.out.mkdir(parents=True, exist_ok=True)

    workload, table, spec, source, embeddings = replayed(WORKLOAD)
    replay = {"family": spec, "backend": source, "embeddings": embeddings}
    if args.first_row:  # e.g. only the rows recorded on one machine (recordings/movie_rt_builds.csv, machine)
        table = replace(table, df=table.df.iloc[args.first_row :], uncut=table)
    recording = ROOT / "recordings" / f"{WORKLOAD}.parquet"
    records = Profile.load(recording).records
    recorded = recorded_rows(records, table, workload)
    slices = [n for n in SLICES if n < recorded] + [recorded]  # the recorded prefix is the largest slice
    pool = generate(workload, [2, 3], len(workload.conjunctions([2, 3], [0])), 0)
    if workload.extracts and answered(records, table.head(recorded), workload.extracts).all():
        pool += generate(workload, [2], len(workload.conjunctions([2], [1])), 0, [1])
    smallest = table.head(slices[0])
    queries = [q for q in pool if gold_decisions(smallest, q, source, spec).all(axis=0).sum() >= args.min_positives]
    print(f"from row {args.first_row}: {recorded} of {len(table)} rows recorded; slices {slices}; "
          f"{len(queries)} of {len(pool)} queries keep >= {args.min_positives} gold rows of the first {slices[0]}: "
          f"{[query_name(q) for q in queries]}")  # fmt: skip
    checksum = hashlib.sha256(recording.read_bytes()).hexdigest()[:12]
    journal = Journal(args.out / "scale_runs.csv", checksum)  # one for both parts: a baseline's run is the same
    grid_of = {  # (rows, Stretto's sample sizes, seeds) of each part
        "sizes": [(slices[-1], args.sizes, args.seeds)],
        "growth": [(n, [args.growth_sample], args.growth_seeds) for n in slices],
    }
    for part in [p for p in grid_of if p not in args.skip]:
        for rows, sizes, seeds in grid_of[part]:
            grid(table, queries, seeds, args.targets, args.systems, replay, sizes, rows, args.first_row, journal)
    runs = journal.current(args.first_row)
    stretto = runs["system"] == "stretto"
    write(runs[(runs["rows"] == slices[-1]) & (~stretto | runs["sample_size"].isin(args.sizes))], args.out, "sizes")
    growth = runs["rows"].isin(slices) & (runs["seed"] < args.growth_seeds)
    write(runs[growth & (~stretto | (runs["sample_size"] == args.growth_sample))], args.out, "growth")


def write(frame: pd.DataFrame, out: Path, part: str) -> None:
    """The summary of the journal's runs (and for the growth part its fit and plot), printed and written."""
    if frame.empty:
        print(f"{part}: no run of this recording yet")
        return
    by = ("dataset", "first_row", "rows", "sample_size")
    summary = summarise(frame, by=by, run=("dataset", "first_row", "rows", "query_name", "seed"))[[*by, *COLUMNS[1:]]]
    summary = summary.sort_values("rows", kind="stable")  # the journal holds runs in the order they were made
    summary.to_csv(out / f"{NAMES[part]}.csv", index=False)
    with pd.option_context("display.width", 220, "display.max_columns", 20):
        print(summary.to_string(index=False))
        if part == "growth":
            fit = growth_fit(summary)
            fit.to_csv(out / "scale_growth_fit.csv", index=False)
            print(fit.to_string(index=False))
            plot_growth(summary, out / "scale_growth.png")


if __name__ == "__main__":
    main()
