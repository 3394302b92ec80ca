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
        assert cfg.operators.model == "qwen-0.5b" and cfg.dataset.name == "movie"
        assert [f.template for f in cfg.query.filters] == [
            "{reviewtext} is clearly positive",
            "{reviewtext} mentions excellent acting",
        ]
        assert compose("config", overrides=["operators=qwen_1_5b"]).operators.model == "qwen-1.5b"
        assert compose("config", overrides=["experiment=main"]).tracking.experiment == "main"
        for group in ("dataset", "query", "operators", "backend", "targets", "tracking", "paths", "hydra"):
            assert (CONF_DIR / group).is_dir()


@pytest.mark.parametrize(
    "override,message",
    [
        ("dataset.name=nope", "unknown dataset 'nope'"),
        ("operators.model=gpt-17", "unknown model 'gpt-17'"),
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
    assert run["params.operators.model"] == "qwen-0.5b"
    artifacts = {a.path for a in mlflow.MlflowClient().list_artifacts(run["run_id"])}
    assert {"result.csv", "scores.csv"} <= artifacts
    assert (tmp_path / "out" / "result.csv").is_file()


@pytest.mark.model
def test_cache_build_then_run_on_stored_caches(tmp_path):
    kv = [f"kv.store_dir={tmp_path}/kv", "dataset.limit=6"]
    done = stretto("kv=stored", "kv.variant.press=knorm", "kv.variant.ratio=0.5", *kv, tmp_path=tmp_path)
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
            "kv=stored",
            "kv.variant.press=knorm",
            "kv.variant.ratio=0.5",
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
    [("kv.variant.press=snapkv", "unknown press 'snapkv'"), ("kv.variant.ratio=1.0", "outside [0, 1)")],
)
def test_bad_kv_variant_is_refused(override, message, tmp_path):
    done = stretto("kv=stored", "kv.variant.press=knorm", override, tmp_path=tmp_path)
    assert done.returncode == 2 and message in done.stdout + done.stderr


def test_optimized_run_on_the_bundled_recording_prints_the_plan_and_logs_it(tmp_path):
    done = stretto("experiment=optimized_movie", tmp_path=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    out = done.stdout
    assert "stretto plan: predicted precision >=" in out and "vs gold operator (silver)" in out
    assert "vs human labels" in out and "rows in / out     1000 /" in out
    plan = (tmp_path / "out" / "plan.yaml").read_text()
    assert "cascades:" in plan and "qwen2.5-coder-1.5b-instruct" in plan

    import mlflow

    mlflow.set_tracking_uri(f"sqlite:///{tmp_path}/mlruns/mlflow.db")
    runs = mlflow.search_runs(experiment_names=["optimized"])
    assert len(runs) == 1 and runs.loc[0, "params.optimizer.name"] == "stretto"
    assert {"metrics.met_silver", "metrics.execution_seconds", "metrics.profile_seconds"} <= set(runs.columns)


@pytest.mark.parametrize(
    "override,message",
    [
        ("backend.recording=/nowhere/movie.parquet", "no recording at /nowhere/movie.parquet"),
        ("family.gold=null", "names no gold operator"),
        ("optimizer.name=simplex", "unknown optimizer 'simplex'"),
        ("profiling.fraction=0", "sample fraction 0 is outside (0, 1]"),
    ],
)
def test_optimized_run_rejects_bad_input(override, message, tmp_path):
    done = stretto("experiment=optimized_movie", override, tmp_path=tmp_path)
    assert done.returncode == 2, done.stderr[-2000:]
    assert message in done.stdout + done.stderr
