"""The research harness on the bundled recordings: generated queries, resumable sweeps, plots, the comparison."""

import subprocess
import sys

import mlflow
import numpy as np
import pandas as pd
import pytest
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

from stretto.errors import QueryError
from stretto.experiment.cli import CONF_DIR
from stretto.experiment.plots import draw_all, runs_frame, total_frontier
from stretto.experiment.run import run_job
from stretto.experiment.sweep import cell_key, run_cell
from stretto.experiment.systems import system_label, system_overrides
from stretto.plan.query_generator import describe, generate, generated_query
from stretto.plan.workload import Workload


def movie_workload() -> Workload:
    return Workload.of(OmegaConf.to_container(OmegaConf.load(CONF_DIR / "workload" / "movie.yaml")))


def test_generator_is_seeded_distinct_and_checks_its_bounds():
    w = movie_workload()
    first = generate(w, [2, 3], 20, seed=0)
    assert [describe(q) for q in first] == [describe(q) for q in generate(w, [2, 3], 20, seed=0)]
    assert [describe(q) for q in first] != [describe(q) for q in generate(w, [2, 3], 20, seed=1)]
    assert len({describe(q) for q in first}) == 20 and {len(q.filters) for q in first} == {2, 3}
    assert describe(generated_query(w, [2, 3], 20, 0, 5)) == describe(first[5])
    with pytest.raises(QueryError, match="make 28 distinct ones"):
        generate(w, [2], 29, seed=0)
    with pytest.raises(QueryError, match=r"query\.index=20 is outside the 20 generated queries"):
        generated_query(w, [2, 3], 20, 0, 20)


def cell(tmp_path, *overrides: str):
    base = [
        "experiment=optimized_movie",
        "dataset.limit=400",
        "tracking.sweep=test",
        f"paths.mlflow_dir={tmp_path}/mlruns",
        f"paths.output_dir={tmp_path}/out",
        "progress=false",
    ]
    with initialize_config_dir(str(CONF_DIR), version_base="1.3"):
        return compose("config", overrides=[*base, *overrides])


def test_sweep_skips_finished_cells_and_reruns_failed_ones(tmp_path):
    lotus = cell(tmp_path, *system_overrides("lotus"))
    first = run_cell(lotus, run_job, "lotus")
    again = run_cell(lotus, run_job, "lotus")
    assert again.skipped.run_id == first.mlflow_run_id and again.skipped.status == "finished"
    assert again.metrics["execution_seconds"] == pytest.approx(first.metrics["execution_seconds"])

    other_seed = cell(tmp_path, *system_overrides("lotus"), "seed=1")
    assert cell_key(other_seed) != cell_key(lotus)
    assert run_cell(other_seed, run_job, "lotus").mlflow_run_id

    gold = cell(tmp_path, *system_overrides("gold_only"))

    def crash(cfg, **kwargs):  # a job that dies half-way leaves its claimed child run FAILED
        raise RuntimeError("killed")

    with pytest.raises(RuntimeError):
        run_cell(gold, crash, "gold_only")
    assert run_cell(gold, run_job, "gold_only").mlflow_run_id  # the failed cell runs again

    mlflow.set_tracking_uri(f"sqlite:///{tmp_path}/mlruns/mlflow.db")
    runs = mlflow.search_runs(experiment_names=["optimized"])
    parents = runs[runs["tags.stretto.role"] == "parent"]
    assert len(parents) == 1
    children = runs[runs["tags.mlflow.parentRunId"] == parents.run_id.iloc[0]]
    assert sorted(children["status"]) == ["FAILED", "FINISHED", "FINISHED", "FINISHED"]
    finished = children[children.status == "FINISHED"]
    assert set(finished["tags.stretto.system"]) == {"lotus", "gold_only"}
    assert finished["tags.stretto.query"].str.contains("clearly positive AND").all()


def test_plots_render_from_a_small_mlflow_store(tmp_path):
    for system in ("stretto", "lotus", "gold_only", "no_compression"):
        for target in ("0.5", "0.7"):
            cfg = cell(tmp_path, *system_overrides(system), f"targets.precision={target}", f"targets.recall={target}")
            assert system_label(cfg) == system
            run_cell(cfg, run_job, system)
    tracking = {"uri": f"sqlite:///{tmp_path}/mlruns/mlflow.db", "experiment": "optimized"}
    runs = runs_frame(tracking, "test")
    assert len(runs) == 8 and set(runs.target) == {"0.5/0.5", "0.7/0.7"}
    drawn = draw_all(runs, tmp_path / "plots", prefix="t_")
    assert sorted(p.name for p in drawn) == ["t_frontier.png", "t_kv_frontier.png", "t_met_rate.png", "t_speedup.png"]
    for png in drawn:
        assert png.read_bytes()[:4] == b"\x89PNG" and png.stat().st_size > 5000
    met = pd.read_csv(tmp_path / "plots" / "t_met_rate.csv")
    assert met.met_rate_gold.between(0, 1).all() and set(met.system) == {
        "stretto",
        "lotus",
        "gold_only",
        "no_compression",
    }
    speed = pd.read_csv(tmp_path / "plots" / "t_speedup.csv").set_index(["target", "system", "over"])
    for target, group in runs.groupby("target"):  # LOTUS's seconds over Stretto's, from the runs themselves
        seconds = group.set_index("system").exec_seconds
        assert speed.speedup[(target, "stretto", "lotus")] == pytest.approx(seconds["lotus"] / seconds["stretto"])
    kv = pd.read_csv(tmp_path / "plots" / "t_kv_frontier.csv")
    # Stretto profiles the gold labels alone (the recording carries embeddings): its learned operator's point
    # (LOTUS profiles no sample: it labels the table as it goes)
    assert list(kv.operator.str.split("/").str[0]) == ["learned"]
    assert kv.auc_vs_gold.between(0, 1).all()
    with pytest.raises(QueryError, match="no finished runs"):
        runs_frame(tracking, "no_such_sweep")


def test_total_frontier_draws_each_systems_whole_cost_against_f1(tmp_path):
    """Mean per (dataset, target, system) of total / gold alone and of F1 against gold (0 when nothing is right)."""
    runs = pd.DataFrame(
        {
            "dataset": ["movie"] * 3, "target": [0.7] * 3, "system": ["stretto", "stretto", "lotus"],
            "precision": [1.0, 0.5, 0.0], "recall": [0.5, 1.0, 0.0],
            "total_seconds": [60.0, 100.0, 90.0], "gold_only_seconds": [100.0, 100.0, 100.0],
        }
    )  # fmt: skip
    assert total_frontier(runs, tmp_path, prefix="e_").name == "e_total_frontier.png"
    table = pd.read_csv(tmp_path / "e_total_frontier.csv").set_index("system")
    assert table.loc["stretto", "total_over_gold_only"] == pytest.approx(0.8)
    assert table.loc["stretto", "f1_gold"] == pytest.approx(2 / 3) and table.loc["stretto", "runs"] == 2
    assert table.loc["lotus", "f1_gold"] == 0.0 and table.loc["lotus", "total_over_gold_only"] == pytest.approx(0.9)


def test_compare_prints_one_table_and_writes_the_frontier(tmp_path):
    done = subprocess.run(
        [sys.executable, "-m", "stretto.experiment.cli", "compare", "experiment=main", "dataset.limit=400",
         f"paths.mlflow_dir={tmp_path}/mlruns", f"hydra.run.dir={tmp_path}/out", "progress=false"],
        capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    lines = done.stdout.splitlines()
    assert any(line.startswith("system") and "total / gold alone" in line for line in lines)
    rows = {
        line.split()[0]: line.split() for line in lines if line.split()[:1] in (["stretto"], ["lotus"], ["gold_only"])
    }
    assert set(rows) == {"stretto", "lotus", "gold_only"}
    table = pd.read_csv(tmp_path / "out" / "comparison.csv").set_index("system")
    parts = table.profile_seconds + table.optimize_seconds + table.exec_seconds
    assert np.allclose(table.total_seconds, parts)  # every system charged whole
    assert table.total_over_gold_only["lotus"] == pytest.approx(parts["lotus"] / parts["gold_only"])
    assert table.labels["gold_only"] == 0 and table.labels["lotus"] > 0  # gold alone takes no sample
    assert (tmp_path / "out" / "frontier.png").is_file()


def test_unknown_system_is_named():
    with pytest.raises(QueryError, match="unknown system 'lotos'"):
        system_overrides("lotos")
