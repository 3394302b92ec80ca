"""Paper reproduction on CPU: the movie and Enron workloads, targets .5/.7/.9, every compared system.

Queries come from the seeded generator (conjunctions of 2-3 of the workload's predicates); conjunctions with
fewer than --min-positives rows that the gold operator keeps are left out (their precision is undefined or
trivially met) and counted. Query i of a dataset is generated query i mod K with profiling seed i, so a
dataset with few usable conjunctions still gets --queries runs, each on its own sample. Every cell is a
configured run (the same code path as `stretto run`), replayed from the recordings of the real models,
logged to MLflow under one parent run; rerunning skips finished cells. Then it aggregates the runs:

    results/paper_reproduction.csv   dataset, target, system, queries, met_rate_gold, met_rate_human, the miss
                                     rates of precision and of recall against gold, exec_seconds,
                                     profile_seconds, optimize_seconds, total_seconds, gold_only_seconds (means
                                     per query), total_over_gold_only, labels (gold answers bought: mean, min,
                                     max), fallback_rate
    results/paper_reproduction.md    DESIGN.md section 3's table for our stack
    results/paper_*.png / .csv       frontier, met rate, speedup, KV-variant frontier

    .venv/bin/python scripts/paper_reproduction.py                  # both datasets, 20 queries each
    .venv/bin/python scripts/paper_reproduction.py --queries 4 --datasets movie   # a quick look

Other shapes: `--filters 1 --extracts 1 --datasets movie --name movie_filter_extract` draws 1 filter + 1 extract
queries (results/movie_filter_extract.csv, with `met_rate` against the gold operator's decisions and values);
`--filters 2 --extracts 1 --name movie_2filter_extract` the 2 filters + 1 extract shape.
"""

from __future__ import annotations

import argparse
import logging
import time
from pathlib import Path

import pandas as pd
from hydra import compose, initialize_config_dir
from tqdm import tqdm

from stretto.api import embedding_source, family_spec, operator_source
from stretto.data.datasets import load_dataset
from stretto.execution.gold import gold_decisions
from stretto.experiment.cli import CONF_DIR, config_file  # registers the config's resolvers
from stretto.experiment.plots import draw_all, runs_frame
from stretto.experiment.run import run_job
from stretto.experiment.sweep import cell_key, run_cell
from stretto.experiment.systems import COMPARED, system_overrides
from stretto.optimizer.gradient import PAPER_RULE
from stretto.plan.query_generator import generate
from stretto.plan.workload import Workload

ROOT = Path(__file__).resolve().parents[1]
TARGETS = (0.5, 0.7, 0.9)
# Per workload (conf/workload/): its profiling sample, the gold rows a usable query keeps, and its query shapes
# (filters and extracts per query) unless --filters / --extracts say otherwise. Enron's 250 e-mails: a 15% sample
# holds too few positives of any conjunction to certify anything. Rotowire's team-game pairs and ecommerce's products
# draw filters and extracts together, as the paper's shapes do (ecommerce has one filter).
DATASET_SETTINGS = {
    "movie": {"fraction": 0.15, "min_positives": 20, "filters": [2, 3], "extracts": [0]},
    "enron": {"fraction": 0.3, "min_positives": 10, "filters": [2, 3], "extracts": [0]},
    "rotowire_teams": {"fraction": 0.15, "min_positives": 20, "filters": [1, 2], "extracts": [1]},
    # the 580 player-game pairs of the workload's sample of 90 games: a 30% sample, as on Enron's small table
    "rotowire_players": {"fraction": 0.3, "min_positives": 20, "filters": [1, 2], "extracts": [1]},
    "ecommerce": {"fraction": 0.15, "min_positives": 20, "filters": [1], "extracts": [1, 2]},
}


def recording_of(name: str) -> Path:
    """A workload's recording of the default family (scripts/record_scores.py)."""
    return ROOT / "recordings" / f"{name}.parquet"


def replayed(name: str):
    """(workload, table, default family, its replayed operators, the recorded embeddings) of a bundled workload;
    the table is the relation its predicates read (rotowire: the joined (team, game) pairs)."""
    workload = Workload.of(config_file("workload", name))
    table = workload.relation(load_dataset(workload.dataset))
    spec = family_spec("default")
    recording = recording_of(name)
    source = operator_source(spec, "replay", recording=recording)
    return workload, table, spec, source, embedding_source("replay", recording=recording)


def usable_queries(dataset: str, min_positives: int, filters, extracts) -> tuple[list[int], int]:
    """Generator indices (seed 0, every query of the shape) whose predicates are recorded and whose gold result has
    >= min_positives rows; and the total."""
    workload, table, spec, source, _ = replayed(dataset)
    queries = generate(workload, filters, len(workload.conjunctions(filters, extracts)), 0, extracts)
    # a recording may hold only some predicates (recorded first: those with truth), e.g. ecommerce's extracts
    recorded = set(pd.read_parquet(recording_of(dataset), columns=["template"])["template"])
    usable = [
        i
        for i, q in enumerate(queries)
        if {o.template.text for o in q.operators} <= recorded
        and gold_decisions(table, q, source, spec).all(axis=0).sum() >= min_positives
    ]
    return usable, len(queries)


# The certification rule of the systems that run the gradient optimizer: the paper's (its Beta(1,1) bounds and its
# selection of the cheapest of the restarts that pass on the held-out half) reproduces the paper; `ltt` is ours.
GRADIENT_SYSTEMS = ("stretto", "local", "shift_budget", "no_compression")
RULES = {
    "paper": [f"optimizer.{key}={str(value).lower()}" for key, value in PAPER_RULE.items()],
    "ltt": ["optimizer.certify=ltt"],
}


def shape(workload: str, args) -> tuple[list[int], list[int]]:
    """(filters, extracts) per query of a workload's queries: --filters / --extracts, else its settings."""
    settings = DATASET_SETTINGS[workload]
    return args.filters or settings["filters"], args.extracts or settings["extracts"]


def cell_overrides(workload: str, index: int, count: int, seed: int, target: float, system: str, args) -> list[str]:
    name = f"{workload}_q{index}_s{seed}_t{target}_{system}"
    filters, extracts = shape(workload, args)
    return [
        f"dataset={config_file('workload', workload)['dataset']}",
        f"workload={workload}",
        "query=generated",
        f"query.filters=[{','.join(map(str, filters))}]",
        f"query.extracts=[{','.join(map(str, extracts))}]",
        f"query.count={count}",
        "query.seed=0",
        f"query.index={index}",
        "backend=replay",
        f"backend.recording={recording_of(workload)}",
        f"targets.precision={target}",
        f"targets.recall={target}",
        f"targets.alpha={args.alpha}",
        f"seed={seed}",
        f"profiling.fraction={DATASET_SETTINGS[workload]['fraction']}",
        *system_overrides(system),
        *(RULES[args.rule] if system in GRADIENT_SYSTEMS else []),
        f"tracking.experiment={args.experiment}",
        f"tracking.sweep={args.sweep}",
        f"paths.mlflow_dir={args.mlflow_dir}",
        f"paths.output_dir={ROOT / 'outputs' / args.sweep / name}",
        "progress=false",
    ]


def runs_of(runs: pd.DataFrame, workload_of: dict[str, str]) -> pd.DataFrame:
    """The sweep's runs of the cells configured now, each named by its workload in the `dataset` column
    (rotowire_teams and rotowire_players read one dataset). Runs of cells configured otherwise before (an
    earlier workload file, another setting) stay in the store, out of the summary and the figures."""
    return runs[runs.cell.isin(workload_of)].assign(dataset=lambda r: r.cell.map(workload_of))


def summarise(runs: pd.DataFrame) -> pd.DataFrame:
    """Per (dataset, target, system): the means of its runs."""
    runs = runs.assign(
        precision_missed=runs.precision_gold < runs.target_p.astype(float),
        recall_missed=runs.recall_gold < runs.target_r.astype(float),
    )
    table = (
        runs.groupby(["dataset", "target", "system"])
        .agg(
            queries=("seed", "size"),
            met_rate_gold=("met_gold", "mean"),
            met_rate_human=("met_human", "mean"),
            precision_human=("precision_human", "mean"),
            recall_human=("recall_human", "mean"),
            exec_seconds=("exec_seconds", "mean"),
            profile_seconds=("profile_seconds", "mean"),
            optimize_seconds=("optimize_seconds", "mean"),
            total_seconds=("total_seconds", "mean"),
            gold_only_seconds=("gold_only_seconds", "mean"),
            labels=("labels", "mean"),
            labels_min=("labels", "min"),
            labels_max=("labels", "max"),
            precision_miss_rate=("precision_missed", "mean"),
            recall_miss_rate=("recall_missed", "mean"),
            fallback_rate=("fallback", "mean"),
        )
        .reset_index()
    )
    table.insert(
        table.columns.get_loc("gold_only_seconds") + 1,
        "total_over_gold_only",
        table.total_seconds / table.gold_only_seconds,
    )
    return table


def paper_table(table: pd.DataFrame) -> pd.DataFrame:
    """DESIGN.md section 3's table: met rates against gold, and each system's execution seconds over Stretto's."""
    wide = table.pivot_table(index=["dataset", "target"], columns="system", values=["met_rate_gold", "exec_seconds"])
    met, seconds = wide["met_rate_gold"], wide["exec_seconds"]
    return pd.DataFrame(
        {f"{s}_met": met[s] for s in ("stretto", "lotus", "abacus", "bargain") if s in met}
        | {f"{s}_over_stretto_time": seconds[s] / seconds["stretto"] for s in seconds if s != "stretto"}
    ).reset_index()


SHAPE_COLUMNS = {"met_rate_gold": "met_rate"}


def with_other_datasets(table: pd.DataFrame, path: Path) -> pd.DataFrame:
    """The summary of the datasets run now, and the rows of the other datasets the file already holds (a run on
    one dataset does not erase the others' rows: their runs may live in another machine's MLflow store)."""
    if not path.exists():
        return table
    earlier = pd.read_csv(path, float_precision="round_trip").rename(columns={v: k for k, v in SHAPE_COLUMNS.items()})
    return pd.concat([earlier[~earlier.dataset.isin(set(table.dataset))], table], ignore_index=True)


def markdown(frame: pd.DataFrame) -> str:
    cells = [[f"{v:.2f}" if isinstance(v, float) else str(v) for v in row] for row in frame.itertuples(index=False)]
    lines = ["| " + " | ".join(frame.columns) + " |", "|" + "---|" * len(frame.columns)]
    return "\n".join(lines + ["| " + " | ".join(row) + " |" for row in cells]) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", nargs="+", default=["movie", "enron"], choices=sorted(DATASET_SETTINGS))
    parser.add_argument("--queries", type=int, default=20)
    parser.add_argument("--systems", nargs="+", default=list(COMPARED), choices=list(COMPARED))
    parser.add_argument("--alpha", type=float, default=0.95)
    parser.add_argument("--experiment", default="paper_reproduction")
    parser.add_argument("--sweep", default=None, help="MLflow parent run (default: --name)")
    parser.add_argument("--mlflow-dir", type=Path, default=ROOT / "mlruns")
    parser.add_argument("--out", type=Path, default=ROOT / "results")
    shapes = "per query (default: the workload's, DATASET_SETTINGS)"
    parser.add_argument("--filters", type=int, nargs="+", default=None, help=f"filters {shapes}")
    parser.add_argument("--extracts", type=int, nargs="+", default=None, help=f"extracts {shapes}")
    parser.add_argument("--name", default="paper_reproduction", help="output files results/<name>.csv/.md")
    parser.add_argument(
        "--rule", default="paper", choices=sorted(RULES), help="certification rule of Stretto's optimizer"
    )
    args = parser.parse_args()
    args.sweep = args.sweep or args.name
    logging.basicConfig(level=logging.ERROR)
    logging.getLogger("stretto").setLevel(logging.ERROR)

    began = time.perf_counter()
    workload_of: dict[str, str] = {}  # cell key -> its workload: the runs summarised are these cells'
    with initialize_config_dir(str(CONF_DIR), version_base="1.3"):
        for dataset in args.datasets:
            usable, count = usable_queries(dataset, DATASET_SETTINGS[dataset]["min_positives"], *shape(dataset, args))
            print(f"{dataset}: {len(usable)} of {count} generated queries are recorded and have enough gold positives")
            cells = [
                (usable[i % len(usable)], i, target, system)
                for target in TARGETS
                for i in range(args.queries)
                for system in args.systems
            ]
            for index, seed, target, system in tqdm(cells, desc=dataset):
                cfg = compose("config", overrides=cell_overrides(dataset, index, count, seed, target, system, args))
                workload_of[cell_key(cfg)] = dataset
                run_cell(cfg, run_job, system)
    tracking = {"uri": f"sqlite:///{args.mlflow_dir}/mlflow.db", "experiment": args.experiment}
    runs = runs_of(runs_frame(tracking, args.sweep), workload_of)
    datasets = set(args.datasets)
    table = with_other_datasets(summarise(runs), args.out / f"{args.name}.csv")
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / f"{args.name}.md").write_text(markdown(paper_table(table)))
    # a shape benchmark (--extracts): met_rate is against the gold operator's decisions and values
    table.rename(columns=SHAPE_COLUMNS if args.extracts not in (None, [0]) else {}).to_csv(
        args.out / f"{args.name}.csv", index=False
    )
    prefix = "paper_" if args.name == "paper_reproduction" else f"{args.name}_"
    if set(table.dataset) != datasets:  # the figures of the datasets run now; the others' stay as they were drawn
        prefix += "_".join(sorted(datasets)) + "_"
    drawn = draw_all(runs, args.out, prefix=prefix)
    print(table.to_string(index=False))
    print(paper_table(table).to_string(index=False))
    print(f"{len(runs)} runs; figures {[p.name for p in drawn]}; {time.perf_counter() - began:.0f} s")


if __name__ == "__main__":
    main()
