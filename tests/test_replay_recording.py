"""The optimizer loop on the committed recording of real model outputs (movie reviews), replayed without a model."""

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from omegaconf import OmegaConf

from stretto.data.datasets import load_dataset
from stretto.engine import run_query
from stretto.evaluation.plan_quality import check_targets, human_decisions
from stretto.execution.gold import gold_decisions, gold_only_seconds
from stretto.operators.family import FamilySpec, ReplayFamily
from stretto.optimizer.gradient import GradientOptimizer
from stretto.plan.query import Query
from stretto.plan.targets import Targets
from stretto.profiling.profile import Profile

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def movie():
    table = load_dataset("movie")["reviews"]
    spec = FamilySpec.of(OmegaConf.to_container(OmegaConf.load(ROOT / "conf" / "family" / "default.yaml")))
    return table, spec, ReplayFamily(spec, Profile.load(ROOT / "recordings" / "movie.parquet"))


def test_recording_covers_every_workload_predicate_and_operator(movie):
    table, spec, source = movie
    workload = OmegaConf.load(ROOT / "conf" / "workload" / "movie.yaml")
    recorded = source.recording.records
    assert set(recorded["template"]) == {f.template for f in [*workload.filters, *workload.extracts]}
    extracts = recorded[recorded["template"].isin([e.template for e in workload.extracts])]
    assert extracts["value"].notna().any() and recorded.loc[~recorded.index.isin(extracts.index), "value"].isna().all()
    assert set(recorded["operator"]) == set(spec.identities)
    assert recorded.groupby(["template", "operator"]).size().eq(table.df["reviewtext"].nunique()).all()
    assert (recorded["seconds"] > 0).all()


def test_optimized_query_on_real_recordings_is_cheaper_than_gold_and_accounts_for_every_tuple(movie):
    table, spec, source = movie
    query = Query.of(
        "reviews",
        [
            {
                "template": "{reviewtext} is clearly positive",
                "label": {"column": "scoresentiment", "positive": "POSITIVE"},
            },
            {"template": "{reviewtext} is a rave review"},
        ],
    )
    targets = Targets(0.5, 0.5, 0.95)
    run = run_query(table, query, source, spec, targets, GradientOptimizer(), seed=1, progress=False)
    gold = gold_decisions(table, query, source, spec)
    assert not run.plan.fallback
    assert run.execution.seconds < 0.7 * gold_only_seconds(table, query, source, spec, gold)
    first = [s for s in run.execution.stats if s.template == run.plan.cascades[0].template]
    assert first[0].tuples == len(table) - len(run.sample)
    assert sum(s.kept + s.discarded + s.to_gold for s in first[:-1]) + first[-1].tuples >= first[0].tuples
    check = check_targets(run.execution.kept, gold, human_decisions(table, query, gold), targets)
    assert check.human is not None and 0.0 < check.gold.f1 <= 1.0


def test_the_gold_operator_alone_reproduces_gold_decisions_exactly(movie):
    table, spec, source = movie
    query = Query.of("reviews", [{"template": "{reviewtext} mentions excellent acting"}])
    decisions = gold_decisions(table, query, source, spec)
    gold = source.operator(query.filters[0].template, spec.gold_identity).score(table.df, progress=False)
    np.testing.assert_array_equal(gold.scores > 0, decisions[0])


def script(name: str):
    """One of scripts/ as a module."""
    import importlib.util
    import sys

    scripts = Path(__file__).resolve().parents[1] / "scripts"
    sys.path.insert(0, str(scripts))  # it imports its sibling scripts (end_to_end, paper_reproduction, ...)
    try:
        spec = importlib.util.spec_from_file_location(name, scripts / f"{name}.py")
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
    finally:
        sys.path.remove(str(scripts))
    return module


def test_the_scale_journal_keeps_each_run_once_and_only_for_its_recording(tmp_path):
    """A scale grid interrupted (or split over sessions, BARGAIN's slow runs later) resumes: each finished run is
    on disk, skipped when asked again for the same recording, and run again once the recording changed."""
    scale_rt = script("scale_rt")
    path = tmp_path / "scale_rt_runs.csv"
    cell = {"recording": "abc", "dataset": "movie_rt", "first_row": 0, "rows": 1000, "sample_size": None,
            "query": 0, "query_name": "is a rave review AND mentions excellent acting", "seed": 0, "target": 0.7,
            "system": "lotus"}  # fmt: skip
    run = {**cell, "met": True, "fallback": False, "learned": False, "total_seconds": 12.5}
    scale_rt.Journal(path, "abc").add(run)
    scale_rt.Journal(path, "abc").add({**run, "system": "stretto", "sample_size": 600})
    again = scale_rt.Journal(path, "abc")
    assert again.key(cell) in again.done  # read back: sample size NaN == None, seed and rows as numbers
    assert again.key({**cell, "system": "stretto", "sample_size": 600.0}) in again.done
    assert again.key({**cell, "seed": 1}) not in again.done and again.key({**cell, "target": 0.9}) not in again.done
    assert len(again.current(0)) == 2 and again.current(0)["met"].dtype == bool and again.current(3750).empty
    changed = scale_rt.Journal(path, "def")  # the recording was made again: its runs are run again
    assert changed.key({**cell, "recording": "def"}) not in changed.done and changed.current(0).empty


def test_a_multi_table_workload_reproduces_as_its_dataset_with_its_own_recording_and_shapes():
    """Rotowire's team workload runs on dataset rotowire (the joins build its relation), replays
    recordings/rotowire_teams.parquet and draws filters with extracts; movie keeps its conjunctions."""
    from types import SimpleNamespace

    from hydra import compose, initialize_config_dir

    from stretto.experiment.cli import CONF_DIR

    reproduction = script("paper_reproduction")
    args = SimpleNamespace(filters=None, extracts=None, alpha=0.95, rule="ltt", experiment="e", sweep="s",
                           mlflow_dir=Path("/tmp/m"))  # fmt: skip
    with initialize_config_dir(str(CONF_DIR), version_base="1.3"):
        teams = compose("config", reproduction.cell_overrides("rotowire_teams", 3, 50, 1, 0.7, "stretto", args))
        movie = compose("config", reproduction.cell_overrides("movie", 3, 50, 1, 0.7, "lotus", args))
    assert teams.dataset.name == "rotowire" and teams.workload.table == "teams" and len(teams.workload.joins) == 2
    assert teams.backend.recording.endswith("recordings/rotowire_teams.parquet")
    assert list(teams.query.filters) == [1, 2] and list(teams.query.extracts) == [1]
    assert movie.dataset.name == "movie" and movie.backend.recording.endswith("recordings/movie.parquet")
    assert list(movie.query.filters) == [2, 3] and list(movie.query.extracts) == [0]
    args.filters, args.extracts = [2], [1]  # the command line wins
    assert reproduction.shape("rotowire_teams", args) == ([2], [1])


def test_a_reproduction_of_one_dataset_keeps_the_other_datasets_rows(tmp_path):
    """`--datasets rotowire_teams` on a machine whose MLflow store holds only rotowire's runs rewrites rotowire's
    rows of results/paper_reproduction.csv and keeps movie's; the section 3 table is drawn from both."""
    reproduction = script("paper_reproduction")
    row = {"target": "0.5/0.5", "queries": 20, "met_rate_gold": 1.0, "exec_seconds": 10.0}
    earlier = pd.DataFrame([{**row, "dataset": "movie", "system": "stretto"},
                            {**row, "dataset": "movie", "system": "lotus", "exec_seconds": 30.0},
                            {**row, "dataset": "rotowire", "system": "stretto", "queries": 1}])  # fmt: skip
    path = tmp_path / "paper_reproduction.csv"
    earlier.rename(columns=reproduction.SHAPE_COLUMNS).to_csv(path, index=False)  # a shape benchmark's file
    now = pd.DataFrame([{**row, "dataset": "rotowire", "system": s, "exec_seconds": x}
                        for s, x in (("stretto", 20.0), ("lotus", 10.0))])  # fmt: skip
    merged = reproduction.with_other_datasets(now, path)
    assert sorted(zip(merged.dataset, merged.system, merged.queries, strict=True)) == [
        ("movie", "lotus", 20),
        ("movie", "stretto", 20),
        ("rotowire", "lotus", 20),
        ("rotowire", "stretto", 20),
    ]
    paper = reproduction.paper_table(merged).set_index("dataset")
    assert (
        paper.loc["movie", "lotus_over_stretto_time"] == 3.0 and paper.loc["rotowire", "lotus_over_stretto_time"] == 0.5
    )
    assert reproduction.with_other_datasets(now, tmp_path / "none.csv").equals(now)


def test_the_papers_published_figures_are_read_as_design_section_3_does():
    """met = precision and recall both at their targets; the speed-up is LOTUS's summed execution over the
    system's on the same queries; a bad artifacts folder is a clear error with exit code 2."""
    import importlib.util

    script = Path(__file__).resolve().parents[1] / "scripts" / "paper_published.py"
    spec = importlib.util.spec_from_file_location("paper_published", script)
    published = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(published)
    rows = [  # approach, query, precision, recall, execution, tuning
        ("optim_global", "q1", 0.95, 0.80, 10.0, 5.0),
        ("optim_global", "q2", 0.60, 0.90, 30.0, 5.0),
        ("lotus", "q1", 0.99, 0.99, 100.0, 5.0),
        ("lotus", "q2", 0.99, 0.71, 300.0, 5.0),
    ]
    metrics = pd.DataFrame(
        [
            {
                "approach_name": a,
                "query": q,
                "precision_guarantee": 0.7,
                "recall_guarantee": 0.7,
                "precision": p,
                "recall": r,
                "execution_cost_runtime": e,
                "tuning_cost_runtime": t,
                "total_cost_runtime": e + t,
            }
            for a, q, p, r, e, t in rows
        ]
    )
    table = published.published(metrics, "movie").set_index("system")
    assert table.loc["stretto", "met_rate"] == 0.5 and table.loc["lotus", "met_rate"] == 1.0
    assert table.loc["stretto", "lotus_exec_over"] == 10.0  # 400 / 40
    assert table.loc["stretto", "lotus_total_over"] == 410 / 50
    with pytest.raises(SystemExit):
        published.published(metrics.assign(approach_name="palimpzest"), "movie")


def test_truth_accuracy_counts_a_missing_truth_right_only_when_the_operator_says_nothing():
    truth_accuracy = script("truth_accuracy")
    truth = pd.Series([1, 2, pd.NA, 4, pd.NA], dtype="Int64")
    values = pd.Series(["1", "3", None, "4.0", "7"], dtype=object)
    measured = truth_accuracy.accuracy(truth, values)
    assert measured == {"rows": 5, "known": 0.6, "answered": 0.8, "right_known": 2 / 3, "right": 0.6}


def test_rotowire_box_scores_rank_the_gold_extractor_above_every_cheap_one():
    """Against the published box scores, on all 1,309 team-game pairs of the committed recording, Qwen 1.5B (the
    gold operator) extracts each labelled number right more often than every Qwen 0.5B variant."""
    frame = script("truth_accuracy").measure("rotowire_teams")
    assert set(frame["extract"]) == {"Wins", "Losses", "Total_points", "Points_in_4th_quarter"}
    assert (frame["rows"] == 1309).all() and len(frame) == 16
    for extract, rows in frame.groupby("extract"):
        gold = rows["operator"].str.startswith("qwen2.5-coder-1.5b")
        assert rows.loc[gold, "right_known"].item() > rows.loc[~gold, "right_known"].max(), extract


def test_a_box_score_winner_needs_both_teams_points():
    from stretto.data.datasets import _winner

    won = _winner(pd.DataFrame({
        "game_id": [1, 1, 2, 2, 3],
        "Total_points_truth": pd.array([101, 99, 90, None, 100], dtype="Int64"),
    }))  # fmt: skip
    assert won.tolist() == [True, False, pd.NA, pd.NA, pd.NA]


def test_the_box_scores_label_the_truth_modes_sample_on_the_real_recording():
    """`profiling.labels=column` on rotowire's total-points extract (replayed from the committed recording, all
    1,309 team-game pairs): the box scores label the sample, every operator's value is judged against them (gold
    Qwen 1.5B right more often than any Qwen 0.5B variant, and far from always), the sampled pairs carry the
    box-score numbers, and targets gold alone cannot reach against them are refused before anything runs."""
    from stretto.errors import UncertifiableTargets
    from stretto.experiment.cli import config_file
    from stretto.plan.workload import Workload

    workload = Workload.of(config_file("workload", "rotowire_teams"))
    table = workload.relation(load_dataset("rotowire"))
    extract = next(e for e in workload.extracts if e.label == "Total_points_truth")
    query = Query(table.name, (), (extract,))
    spec = FamilySpec.of(config_file("family", "default"))
    source = ReplayFamily(spec, Profile.load(ROOT / "recordings" / "rotowire_teams.parquet"))
    run = run_query(table, query, source, spec, Targets(0.3, 0.3, 0.95), GradientOptimizer(), progress=False,
                    labels="column")  # fmt: skip
    f = run.problem.operators[0]
    assert run.plan.certified and run.problem.against_truth and len(run.sample) == 196
    assert 0.3 < f.gold_correct.mean() < 0.7 and f.gold_correct.mean() > f.correct.mean(axis=1).max()
    truth = table.df["Total_points_truth"].iloc[run.sample]
    carried = run.execution.result.loc[run.sample, extract.template.output]
    assert [None if pd.isna(t) else str(int(t)) for t in truth] == carried.tolist()
    with pytest.raises(UncertifiableTargets, match="even the gold operator alone"):
        run_query(table, query, source, spec, Targets(0.7, 0.7, 0.95), GradientOptimizer(), progress=False,
                  labels="column")  # fmt: skip


def test_a_reproduction_summarises_the_cells_configured_now_named_by_workload():
    """Rotowire's team and player workloads read one dataset: their rows are named apart, and a run of a cell
    configured before (here the team workload before its filters had labels) is left out."""
    reproduction = script("paper_reproduction")
    runs = pd.DataFrame({"dataset": ["rotowire"] * 3 + ["movie"], "cell": ["teams-now", "players", "teams-before", "m"],
                         "system": ["stretto"] * 4})  # fmt: skip
    now = reproduction.runs_of(runs, {"teams-now": "rotowire_teams", "players": "rotowire_players", "m": "movie"})
    assert list(zip(now.cell, now.dataset, strict=True)) == [
        ("teams-now", "rotowire_teams"),
        ("players", "rotowire_players"),
        ("m", "movie"),
    ]
