"""The `stretto run` Hydra app end to end: config composition, bad input, and a real run logged to MLflow."""

import subprocess
import sys

import pytest
from hydra import compose, initialize_config_dir

from stretto.experiment.cli import CONF_DIR


def stretto(*args: str, tmp_path) -> subprocess.CompletedProcess:
    overrides = [f"paths.mlflow_dir={tmp_path}/mlruns", f"hydra.run.dir={tmp_path}/out", "progress=false"]
    return subprocess.run(
        [sys.executable, "-m", "stretto.experiment.cli", "run", *overrides, *args],
        capture_output=True,
        text=True,
        timeout=600,
    )


def test_config_groups_compose_and_gold_is_one_override():
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        cfg = compose("config")
        assert cfg.family.model == "qwen-0.5b" and cfg.dataset.name == "movie" and cfg.optimizer.name == "none"
        assert [f.template for f in cfg.query.filters] == [
            "{reviewtext} is clearly positive",
            "{reviewtext} mentions excellent acting",
        ]
        gold = compose("config", overrides=["family=qwen_1_5b"]).family
        assert gold.model == "qwen-1.5b" and gold.gold.model == "qwen-1.5b" and not gold.models
        assert compose("config", overrides=["optimizer=stretto"]).family.name == "default"
        assert compose("config", overrides=["experiment=optimized_movie", "optimizer=none"]).family.name == "default"
        assert compose("config", overrides=["experiment=main"]).tracking.experiment == "main"
        for group in ("dataset", "query", "family", "backend", "targets", "tracking", "paths", "hydra"):
            assert (CONF_DIR / group).is_dir()


@pytest.mark.parametrize(
    "override,message",
    [
        ("dataset.name=nope", "unknown dataset 'nope'"),
        ("family.model=gpt-17", "unknown model 'gpt-17'"),
        ("targets.precision=1.5", "target precision=1.5 is outside the open interval"),
        ("query.filters=[{template: 'is clearly positive'}]", "names no column"),
        ("query.filters=[{template: '{review} is positive'}]", "refers to column(s) ['review']"),
    ],
)
def test_bad_input_fails_fast_with_a_specific_message(override, message, tmp_path):
    done = stretto(override, tmp_path=tmp_path)
    assert done.returncode == 2, done.stderr[-2000:]
    assert message in done.stdout + done.stderr


@pytest.mark.model
def test_main_job_on_a_slice_logs_to_mlflow(tmp_path):
    done = stretto("dataset.limit=12", tmp_path=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "rows in / out     12 /" in done.stdout and "vs human labels" in done.stdout

    import mlflow

    mlflow.set_tracking_uri(f"sqlite:///{tmp_path}/mlruns/mlflow.db")
    runs = mlflow.search_runs(experiment_names=["stretto"])
    assert len(runs) == 1
    run = runs.iloc[0]
    assert run["metrics.rows_in"] == 12 and run["metrics.filter0.rows_seen"] == 12
    assert 0 <= run["metrics.filter0.precision"] <= 1 and run["params.dataset.name"] == "movie"
    assert run["params.family.model"] == "qwen-0.5b" and run["params.family.gold.threshold"] == "0.0"
    artifacts = {a.path for a in mlflow.MlflowClient().list_artifacts(run["run_id"])}
    assert {"result.csv", "scores.csv"} <= artifacts
    assert (tmp_path / "out" / "result.csv").is_file()


@pytest.mark.model
def test_cache_build_then_run_on_stored_caches(tmp_path):
    kv = [f"paths.kv_dir={tmp_path}/kv", "dataset.limit=6", "family.stored=true", "family.press=knorm"]
    done = stretto("family.ratio=0.5", *kv, tmp_path=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "/knorm@0.50" in done.stdout and "rows in / out     6 /" in done.stdout
    damaged = sorted((tmp_path / "kv").rglob("*.safetensors"))[0]
    damaged.write_bytes(damaged.read_bytes()[:-1])  # found by the build, reported, removed and rebuilt
    built = subprocess.run(
        [
            sys.executable,
            "-m",
            "stretto.experiment.cli",
            "cache",
            "build",
            "family.ratio=0.5",
            "progress=false",
            f"hydra.run.dir={tmp_path}/out2",
            *kv,
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert built.returncode == 0, built.stderr[-3000:]
    assert "documents 6, built now 1" in built.stdout  # the run above stored them: the build resumes
    assert "1 stored entry failed verification" in built.stdout and str(damaged) in built.stdout + built.stderr
    assert "knorm@0.50" in built.stdout and "6 entries" in built.stdout


@pytest.mark.parametrize(
    "override,message",
    [("family.press=snapkv", "unknown press 'snapkv'"), ("family.ratio=1.0", "outside [0, 1)")],
)
def test_bad_kv_variant_is_refused(override, message, tmp_path):
    done = stretto("family.stored=true", "family.press=knorm", override, tmp_path=tmp_path)
    assert done.returncode == 2 and message in done.stdout + done.stderr


def test_optimized_run_on_the_bundled_recording_prints_the_plan_and_logs_it(tmp_path):
    done = stretto("experiment=optimized_movie", tmp_path=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    out = done.stdout
    assert "stretto plan: predicted precision >=" in out and "vs gold operator " in out
    assert "vs human labels" in out and "rows in / out     1000 /" in out
    plan = (tmp_path / "out" / "plan.yaml").read_text()
    assert "cascades:" in plan and "qwen2.5-coder-1.5b-instruct" in plan

    import mlflow

    mlflow.set_tracking_uri(f"sqlite:///{tmp_path}/mlruns/mlflow.db")
    runs = mlflow.search_runs(experiment_names=["optimized"])
    assert len(runs) == 1 and runs.loc[0, "params.optimizer.name"] == "stretto"
    assert {"metrics.met_gold", "metrics.execution_seconds", "metrics.profile_seconds"} <= set(runs.columns)


@pytest.mark.parametrize(
    "override,message",
    [
        ("backend.recording=/nowhere/movie.parquet", "no recording at /nowhere/movie.parquet"),
        ("family.gold=null", "names no gold operator"),
        ("optimizer.name=simplex", "unknown optimizer 'simplex'"),
        ("profiling.fraction=0", "sample fraction 0 is outside (0, 1]"),
        ("profiling.size=1000000", "sample size 1000000 is larger than the table"),
    ],
)
def test_optimized_run_rejects_bad_input(override, message, tmp_path):
    done = stretto("experiment=optimized_movie", override, tmp_path=tmp_path)
    assert done.returncode == 2, done.stderr[-2000:]
    assert message in done.stdout + done.stderr


def test_single_operator_run_replays_as_a_one_step_plan(tmp_path):
    done = stretto("backend=replay", "dataset.limit=200", "family.threshold=0.1", tmp_path=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "with qwen2.5-coder-0.5b-instruct" in done.stdout and "/none@0.00>0.1" in done.stdout
    assert "rows in / out     200 /" in done.stdout and "vs human labels" in done.stdout
    plan = (tmp_path / "out" / "plan.yaml").read_text()
    assert "system: none" in plan and "steps: []" in plan  # the gold operator of a one-member family: one step

    import mlflow
    import pandas as pd

    mlflow.set_tracking_uri(f"sqlite:///{tmp_path}/mlruns/mlflow.db")
    run = mlflow.search_runs(experiment_names=["stretto"]).iloc[0]
    assert run["metrics.filter0.rows_seen"] == 200 and run["params.backend.name"] == "replay"
    artifacts = {a.path for a in mlflow.MlflowClient().list_artifacts(run.run_id)}
    assert {"result.csv", "scores.csv", "plan.yaml"} <= artifacts
    scores = pd.read_csv(tmp_path / "out" / "scores.csv")  # the model's own log-odds, NaN where a filter never looked
    assert (scores.score_0 > 0.1).sum() == run["metrics.filter0.rows_kept"] == scores.score_1.notna().sum()


@pytest.mark.model
def test_cache_build_stores_every_operators_caches_and_the_embeddings_then_resumes(tmp_path):
    """`stretto cache build` on 4 real reviews with SmolLM2-135M at two KV variants: one prefill per document feeds
    both, the embeddings are stored beside them, and a second build finds everything stored and verified."""
    args = [
        sys.executable, "-m", "stretto.experiment.cli", "cache", "build", "progress=false", "dataset.limit=4",
        "family=smollm2_135m", "family.stored=true", "family.press=knorm", "family.ratio=0.5",
        f"paths.kv_dir={tmp_path}/kv", f"paths.embeddings_dir={tmp_path}/embeddings", f"hydra.run.dir={tmp_path}/out",
    ]  # fmt: skip
    first = subprocess.run(args, capture_output=True, text=True, timeout=600)
    assert first.returncode == 0, first.stderr[-3000:]
    assert "documents 4, built now 4" in first.stdout and "embeddings of 4 documents" in first.stdout
    assert len(list((tmp_path / "embeddings").glob("*.parquet"))) == 1
    again = subprocess.run(args, capture_output=True, text=True, timeout=600)
    assert again.returncode == 0 and "documents 4, built now 0" in again.stdout
    assert "every stored entry passed verification" in again.stdout


@pytest.mark.slow  # two live comparisons: minutes on 2 cores
@pytest.mark.model
def test_a_live_comparison_builds_the_offline_state_first_and_charges_it_to_no_system(tmp_path):
    def compare(out: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, "-m", "stretto.experiment.cli", "compare", "experiment=main", "backend=transformers",
             "dataset.limit=4", "compare.systems=[gold_only]", f"paths.kv_dir={tmp_path}/kv",
             f"paths.embeddings_dir={tmp_path}/emb", f"paths.mlflow_dir={tmp_path}/mlruns",
             f"hydra.run.dir={tmp_path}/{out}", "progress=false", f"tracking.sweep={out}"],
            capture_output=True, text=True, timeout=900,
        )  # fmt: skip

    first = compare("one")
    assert first.returncode == 0, first.stderr[-3000:]
    head, table = first.stdout.split("movie: 1 systems")
    assert head.startswith("offline, before any system was timed (charged to none")
    assert head.count("documents 4, built now 4") == 2  # the 0.5B's three variants share one prefill; the 1.5B
    assert "embeddings of 4 documents" in head and "s per document built" in head
    gold = next(line for line in table.splitlines() if line.startswith("gold_only"))
    assert float(gold.split()[-4]) == float(gold.split()[-5])  # its total is its execution alone
    again = compare("two")
    assert again.returncode == 0, again.stderr[-3000:]
    assert again.stdout.count("documents 4, built now 0") == 2  # stored already: verified, not rebuilt
