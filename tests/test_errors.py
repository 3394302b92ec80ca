"""Bad input and interruptions through the `stretto` command: a specific message on stderr and exit code 2 (130 for
Ctrl-C), before any model loads, never a traceback; stdout carries only results. No test here loads a model."""

import http.server
import logging
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir

from stretto.errors import QueryError
from stretto.experiment.cli import CONF_DIR
from stretto.experiment.compare import system_cells

STRETTO = str(Path(sys.executable).parent / "stretto")


def stretto(*args: str, tmp_path: Path, timeout: float = 300) -> subprocess.CompletedProcess:
    """`stretto COMMAND overrides...` with its outputs under tmp_path."""
    command, *overrides = args
    words = command.split()
    where = [f"paths.mlflow_dir={tmp_path}/mlruns", f"hydra.run.dir={tmp_path}/out", "progress=false"]
    return subprocess.run([STRETTO, *words, *where, *overrides], capture_output=True, text=True, timeout=timeout)


def refused(done: subprocess.CompletedProcess, message: str) -> None:
    assert done.returncode == 2, done.stderr[-3000:]
    assert message in done.stderr, done.stderr[-3000:]
    assert message not in done.stdout and "Traceback" not in done.stderr


def test_unknown_command_is_named_before_the_usage():
    done = subprocess.run([STRETTO, "bogus"], capture_output=True, text=True, timeout=60)
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr.startswith("stretto: unknown command 'bogus'") and "usage: stretto COMMAND" in done.stderr


@pytest.fixture
def a_file(tmp_path) -> Path:
    path = tmp_path / "not_a_folder"
    path.write_text("x")
    return path


@pytest.mark.parametrize(
    "args,message",
    [
        (["run", "optimizer=stretto", "backend=vllm"], "backend=vllm' setting moved: use family.serve="),
        (["pipeline", "experiment=medical_patients", "backend=vllm"], "backend=vllm' setting moved: use family.serve"),
        (["run", "operators=qwen_1_5b"], "the 'operators' setting moved: use family=qwen_1_5b"),
        (["run", "-m", "operators.threshold=-1,1"], "moved: use family.threshold=-1,1"),
        (["run", "kv=stored"], "the 'kv=stored' setting moved: use family.stored=true"),
        (["cache build", "kv=frontier"], "use family=frontier"),
        (["run", "kv.store_dir=/x"], "use paths.kv_dir=/x"),
        (["run", "family.press=knorm", "family.ratio=0.5"], "store them (family.stored=true"),
        (["run", "dataset=custom", "query=custom"], "dataset.path is not set"),
        (["run", "dataset=custom", "query=custom", "dataset.path=/no/such.csv"], "dataset.path=/no/such.csv does not"),
        (["run", "dataset.limit=abc"], "dataset.limit must be a whole number >= 1 (or null), got 'abc'"),
        (["run", "experiment=optimized_movie", "profiling.fraction=abc"], "sample fraction 'abc' is not a number"),
        (["run", "experiment=optimized_movie", "profiling.size=0"], "profiling.size must be a whole number >= 1"),
        (["run", "family.stored=true", "paths.kv_dir={file}"], "paths.kv_dir={file} is a file, not a folder"),
        (["cache info", "paths.kv_dir={file}"], "paths.kv_dir={file} is a file, not a folder"),
        (["run", "optimizer=stretto", "profiling.store_dir={file}/sub"], "profiling.store_dir={file}/sub is under"),
        (["cache build", "backend=replay"], "stretto cache build stores KV caches with transformers"),
        (["plot", "tracking=none"], "stretto plot draws the runs recorded in MLflow, but tracking is off"),
        (["run", "dataset=nosuch"], "Could not find 'dataset/nosuch'"),
        (["run", "query.filters=["], "no viable alternative at input"),
    ],
)
def test_bad_config_is_refused_before_any_work(args, message, a_file, tmp_path):
    args = [a.format(file=a_file) for a in args]
    began = time.perf_counter()
    done = stretto(*args, tmp_path=tmp_path)
    refused(done, message.format(file=a_file))
    assert time.perf_counter() - began < 60  # seconds: nothing was loaded


def test_unreachable_tracking_server_fails_in_seconds(tmp_path):
    began = time.perf_counter()
    done = stretto("run", "experiment=optimized_movie", "tracking.uri=http://127.0.0.1:9", tmp_path=tmp_path)
    refused(done, "tracking.uri=http://127.0.0.1:9 does not answer")
    assert time.perf_counter() - began < 60 and not (tmp_path / "out" / "result.csv").exists()  # before any work


class NotMLflow(http.server.BaseHTTPRequestHandler):
    """Answers every request with a 404, as a server that is there but records nothing would."""

    def do_GET(self):
        self.send_response(404)
        self.end_headers()
        self.wfile.write(b"no mlflow here")

    do_POST = do_GET

    def log_message(self, *args):
        pass


def test_a_run_mlflow_cannot_record_still_prints_its_summary(tmp_path):
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), NotMLflow)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        uri = f"http://127.0.0.1:{server.server_address[1]}"
        done = stretto("run", "experiment=optimized_movie", "dataset.limit=120", f"tracking.uri={uri}",
                       tmp_path=tmp_path)  # fmt: skip
    finally:
        server.shutdown()
    refused(done, "the run finished (summary above) but MLflow did not record it")
    assert "rows in / out     120 /" in done.stdout and "MLflow run" not in done.stdout


@pytest.mark.parametrize(
    "systems,message",
    [("[]", "compare.systems is empty"), ("[stretto,lotos,gold_only]", "unknown system(s) ['lotos']")],
)
def test_compare_checks_every_system_before_the_first_runs(systems, message, tmp_path):
    done = stretto("compare", "experiment=main", f"compare.systems={systems}", tmp_path=tmp_path)
    refused(done, message)
    assert not (tmp_path / "mlruns").exists() and not (tmp_path / "out" / "stretto").exists()  # nothing ran


def custom_table(tmp_path: Path) -> list[str]:
    table = tmp_path / "tickets.csv"
    table.write_text("body\nI was billed twice\nthe app is slow\n")
    return [
        "experiment=custom_table",
        f"dataset.path={table}",
        "dataset.text_columns=[body]",
        "query.filters=[{template: '{body} reports a billing problem'}]",
        "family.small=smollm2-135m",
        "family.large=qwen-0.5b",
    ]


def test_compare_keeps_the_users_family_for_every_system(tmp_path):
    user = [*custom_table(tmp_path), "compare.systems=[stretto,lotus,gold_only,no_compression]"]
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        cfg = compose("config", overrides=[*user, f"paths.output_dir={tmp_path}/out"])
        cells = system_cells(cfg, user, "s")
    assert list(cells) == ["stretto", "lotus", "gold_only", "no_compression"]
    for system, cell in cells.items():
        assert cell.optimizer.name == ("stretto" if system == "no_compression" else system)
        assert cell.family.gold.model == "qwen-0.5b" and cell.family.models[0].model == "smollm2-135m"
        assert cell.dataset.path == str(tmp_path / "tickets.csv")
    assert cells["stretto"].family.name == "custom" and len(cells["stretto"].family.models[0].variants) == 3
    stripped = cells["no_compression"].family
    assert stripped.name == "no_compression" and [len(m.variants) for m in stripped.models] == [1, 1]
    assert all(v.ratio == 0 for m in stripped.models for v in m.variants)


def test_readme_custom_table_compare_composes(tmp_path):
    """The README's command with the user's models composed (it said "Could not override 'family.small'"); an
    impossible target then stops it before any model loads."""
    done = stretto("compare", *custom_table(tmp_path), "targets.precision=1.5", "tracking=none", tmp_path=tmp_path)
    refused(done, "target precision=1.5 is outside")
    assert "Could not override" not in done.stderr


def test_a_bad_cell_does_not_abort_the_sweep(tmp_path):
    done = subprocess.run(
        [STRETTO, "run", "-m", "experiment=optimized_movie", "dataset.limit=abc,60,0", "tracking=none",
         "progress=false", f"hydra.sweep.dir={tmp_path}/sweep"],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert done.returncode == 2, done.stderr[-3000:]
    assert "rows in / out     60 /" in done.stdout and (tmp_path / "sweep" / "1" / "result.csv").is_file()
    report = done.stderr[done.stderr.index("2 cell(s) of the sweep were refused") :]
    assert "cell 0 (" in report and "got 'abc'" in report and "cell 2 (" in report and "got 0" in report
    assert "Traceback" not in done.stderr and "refused" not in done.stdout
    assert "[HYDRA] Launching 3 jobs" in done.stderr  # logs go to stderr too


def test_ctrl_c_prints_one_line_and_exits_130(tmp_path):
    job = subprocess.Popen(
        [STRETTO, "run", "experiment=optimized_movie", "tracking=none", "progress=false", f"hydra.run.dir={tmp_path}"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    time.sleep(4)  # inside the job (importing, profiling or optimizing)
    job.send_signal(signal.SIGINT)
    out, err = job.communicate(timeout=120)
    assert job.returncode == 130, err[-3000:]
    assert err.strip().splitlines()[-1] == "interrupted" and "Traceback" not in err and out == ""


def test_ctrl_c_that_a_library_turns_into_its_own_error_still_exits_130(monkeypatch, capsys):
    """pydantic, cut mid-import, turns the KeyboardInterrupt into a SchemaError: the Ctrl-C still ends the job as
    an interruption (exit 130, one line), not as that library's traceback (exit 1)."""
    from stretto.experiment import cli

    def job_cut_inside_a_library() -> None:
        try:
            signal.raise_signal(signal.SIGINT)
        except KeyboardInterrupt as err:
            raise RuntimeError("Error building `literal` serializer: KeyboardInterrupt") from err

    monkeypatch.setitem(cli.COMMANDS, "run", job_cut_inside_a_library)
    monkeypatch.setattr(sys, "argv", ["stretto", "run"])
    previous = signal.getsignal(signal.SIGINT)
    try:
        with pytest.raises(SystemExit) as ended:
            cli.main()
    finally:  # main() leaves the process to exit: its handler and its silenced logging must not outlive this test
        signal.signal(signal.SIGINT, previous)
        logging.disable(logging.NOTSET)
    assert ended.value.code == 130 and capsys.readouterr().err.strip() == "interrupted"


def test_an_error_without_ctrl_c_is_not_called_an_interruption(monkeypatch):
    from stretto.experiment import cli

    def failing_job() -> None:
        raise RuntimeError("a real bug")

    monkeypatch.setitem(cli.COMMANDS, "run", failing_job)
    monkeypatch.setattr(sys, "argv", ["stretto", "run"])
    previous = signal.getsignal(signal.SIGINT)
    try:
        with pytest.raises(RuntimeError, match="a real bug"):
            cli.main()
    finally:
        signal.signal(signal.SIGINT, previous)


def test_where_value_of_the_wrong_type_is_named():
    import pandas as pd

    from stretto.plan.relational import Where

    ages = pd.DataFrame({"age": [30, 50], "name": ["a", "b"], "smoker": [True, False]})
    with pytest.raises(QueryError, match=r"column 'age' holds number values \(int64\), and 'forty' is a str"):
        Where("age", ">=", "forty").apply(ages, {})
    with pytest.raises(QueryError, match="column 'name' holds text values"):
        Where("name", "==", 3).apply(ages, {})
    with pytest.raises(QueryError, match="column 'smoker' holds bool values"):
        Where("smoker", "in", [True, "yes"]).apply(ages, {})
    assert list(Where("age", ">=", 40.5).apply(ages, {}).age) == [50]
    assert list(Where("name", "in", ["b", "c"]).apply(ages, {}).name) == ["b"]
