"""The paper's other datasets: rotowire (multi-table, box-score truth) and ecommerce (text side), their
workloads, the generator's query shapes and numeric answer comparison. Fast: no models."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from stretto.data.datasets import ROTOWIRE_PLAYER_TRUTH, ROTOWIRE_TEAM_TRUTH, load_dataset
from stretto.data.table import Table
from stretto.errors import QueryError
from stretto.evaluation.plan_quality import human_values, values_right
from stretto.plan.answers import as_number, same_answer
from stretto.plan.pipeline import Pipeline
from stretto.plan.query import Query
from stretto.plan.query_generator import PAPER_SHAPES, describe, queries_by_shape, shape_name
from stretto.plan.template import Template, parse_template
from stretto.plan.workload import GroupSample, Workload

CONF = Path(__file__).resolve().parents[1] / "conf"
WORKLOADS = ("rotowire_teams", "rotowire_players", "ecommerce")


@pytest.fixture(scope="module")
def rotowire() -> dict[str, Table]:
    return load_dataset("rotowire")


@pytest.fixture(scope="module")
def ecommerce() -> dict[str, Table]:
    return load_dataset("ecommerce")


def workload(name: str, *, sampled: bool = False) -> Workload:
    """A workload file; over every joined pair unless `sampled` (rotowire players reads a sample of games)."""
    w = Workload.of(yaml.safe_load((CONF / "workload" / f"{name}.yaml").read_text()))
    return w if sampled else replace(w, sample=None)


def frames(tables: dict[str, Table]) -> dict[str, pd.DataFrame]:
    return {name: table.df for name, table in tables.items()}


def truth_of(relation: pd.DataFrame, name: str, game_id: int) -> pd.Series:
    row = relation[(relation["name"] == name) & (relation["game_id"] == game_id)]
    assert len(row) == 1, f"({name}, {game_id}) is not exactly one pair"
    return row.iloc[0]


# ------------------------------------------------------------------------------------------------ loaders
def test_rotowire_tables_and_row_counts(rotowire: dict[str, Table]) -> None:
    counts = {name: len(table) for name, table in rotowire.items()}
    assert counts == {
        "reports": 728,
        "teams": 30,
        "players": 557,
        "teams_to_games": 1309,
        "players_to_games": 4699,
        "teams_ground_truth": 1309,
        "players_ground_truth": 4699,
    }
    reports = rotowire["reports"]
    assert reports.text_columns == ("report",) and reports.key == "game_id"
    assert (reports.column("report").str.len() > 0).all()
    assert rotowire["teams_to_games"].label_columns == (*ROTOWIRE_TEAM_TRUTH.values(), "Won_truth")
    won = rotowire["teams_to_games"].df["Won_truth"]  # both teams' totals published: 569 games' winners
    assert (won.notna().sum(), won.sum()) == (1138, 569)
    assert rotowire["players_to_games"].label_columns == tuple(ROTOWIRE_PLAYER_TRUTH.values())
    words = reports.column("report").str.split().str.len()
    assert (words.median(), words.min(), words.max()) == (308, 135, 695)


def test_rotowire_truth_is_the_published_truth_resolved_to_pairs(rotowire: dict[str, Table]) -> None:
    """Each published column lands whole in its `<output>_truth` column, and the pair tables agree with the
    ground-truth tables pair for pair (the file order of the pair tables is kept)."""
    from stretto.data.datasets import BUNDLED_DIR

    for kind, columns in (("teams", ROTOWIRE_TEAM_TRUTH), ("players", ROTOWIRE_PLAYER_TRUTH)):
        published = pd.read_csv(BUNDLED_DIR / "rotowire" / f"rotowire_{kind}_ground_truth.csv")
        pairs = rotowire[f"{kind}_to_games"].df
        truth = rotowire[f"{kind}_ground_truth"].df
        assert pairs[["name", "game_id"]].equals(pd.read_csv(BUNDLED_DIR / "rotowire" / f"{kind}_to_games.csv"))
        for published_column, column in columns.items():
            assert str(pairs[column].dtype) == "Int64"
            assert pairs[column].notna().sum() == published[published_column].notna().sum()
            assert pairs[column].sum() == published[published_column].sum()
        merged = pairs.merge(truth, on=["name", "game_id"], suffixes=("", "_table"))
        assert len(merged) == len(pairs)
        for column in columns.values():
            assert merged[column].equals(merged[f"{column}_table"].rename(column))


def test_ecommerce_products(ecommerce: dict[str, Table]) -> None:
    products = ecommerce["products"]
    assert set(ecommerce) == {"products"}
    assert len(products) == 1000 and products.column("id").is_unique
    assert products.text_columns == ("description",) and products.key == "id"
    assert products.label_columns == ("gender", "base_colour", "audience_truth")
    assert products.column("audience_truth").value_counts().to_dict() == {"male": 526, "female": 430, "unisex": 44}
    assert products.column("base_colour").notna().all()
    assert products.column("description").str.len().median() == 768


# ------------------------------------------------------------------------------------ joins and their truth
@pytest.mark.parametrize(("name", "rows"), [("rotowire_teams", 1309), ("rotowire_players", 4699)])
def test_rotowire_joins_give_one_row_per_pair_with_its_report(rotowire: dict[str, Table], name: str, rows: int) -> None:
    relation = workload(name).relation(rotowire).df
    assert len(relation) == rows
    assert not relation.duplicated(["name", "game_id"]).any()
    assert relation["report"].str.len().gt(0).all()
    reports = rotowire["reports"].df.set_index("game_id")["report"]
    assert (relation["report"] == reports.loc[relation["game_id"]].to_numpy()).all()


def test_rotowire_truth_lines_up_with_hand_checked_rows(rotowire: dict[str, Table]) -> None:
    """Report 0: "The Atlanta Hawks (46 - 12) beat the Orlando Magic (19 - 41) 95 - 88 ... Al Horford ...
    17 points, 13 rebounds, four assists and two steals"."""
    teams = workload("rotowire_teams").relation(rotowire).df
    players = workload("rotowire_players").relation(rotowire).df
    report = truth_of(teams, "Hawks", 0)["report"]
    assert "The Atlanta Hawks (46 - 12) beat the Orlando Magic (19 - 41) 95 - 88" in report
    assert "17 points, 13 rebounds, four assists and two steals" in report
    hawks, magic = truth_of(teams, "Hawks", 0), truth_of(teams, "Magic", 0)
    assert (hawks["Wins_truth"], hawks["Losses_truth"], hawks["Total_points_truth"]) == (46, 12, 95)
    assert pd.isna(hawks["Points_in_4th_quarter_truth"])  # the report does not say
    assert (magic["Wins_truth"], magic["Losses_truth"], magic["Total_points_truth"]) == (19, 41, 88)
    assert magic["Points_in_4th_quarter_truth"] == 21
    assert [hawks["Won_truth"], magic["Won_truth"]] == [True, False]  # 95 - 88
    horford = truth_of(players, "Al Horford", 0)
    assert horford[["Points_truth", "Total_rebounds_truth", "Assists_truth", "Steals_truth"]].tolist() == [17, 13, 4, 2]
    assert pd.isna(horford["Blocks_truth"]) and pd.isna(horford["Minutes_played_truth"])
    vucevic = truth_of(players, "Nikola Vucevic", 0)
    assert (vucevic["Points_truth"], vucevic["Total_rebounds_truth"]) == (21, 15)


# --------------------------------------------------------------------------------------------- workloads
@pytest.mark.parametrize("name", WORKLOADS)
def test_workloads_parse_and_name_real_columns(
    rotowire: dict[str, Table], ecommerce: dict[str, Table], name: str
) -> None:
    w = workload(name)
    tables = {"rotowire": rotowire, "ecommerce": ecommerce}[w.dataset]
    relation = w.relation(tables).df
    assert len(w.filters) >= 1 and len(w.extracts) >= 3
    columns = sorted({c for op in (*w.filters, *w.extracts) for c in op.template.columns})
    assert set(columns) <= set(relation.columns)
    # Every operator at once: templates name real columns, labels exist, no output overwrites a column.
    Query(w.table, w.filters, w.extracts).check(Table(w.table, relation, text_columns=columns))
    labels = [e.label for e in w.extracts if e.label]
    assert labels and set(labels) <= set(relation.columns)
    checked = {n: list(t.df.columns) for n, t in tables.items()}
    for queries in queries_by_shape(w).values():
        for query in queries:
            assert w.pipeline(query).check(checked)


def test_rotowire_templates_read_the_name_and_the_report() -> None:
    for name in ("rotowire_teams", "rotowire_players"):
        w = workload(name)
        templates = [op.template for op in (*w.filters, *w.extracts)]
        assert {(t.document_columns, t.asked_columns) for t in templates} == {(("report",), ("name",))}
        assert len(w.filters) == 9 and [j.table for j in w.joins] == [f"{w.table}_to_games", "reports"]
    truth = {e.label for e in workload("rotowire_teams").extracts} - {None}
    assert truth == set(ROTOWIRE_TEAM_TRUTH.values())
    truth = {e.label for e in workload("rotowire_players").extracts} - {None}
    assert truth == set(ROTOWIRE_PLAYER_TRUTH.values())


def test_a_workload_join_needs_a_key() -> None:
    spec = {"dataset": "rotowire", "table": "teams", "filters": [{"template": "{name} won"}]}
    with pytest.raises(QueryError, match="give on=<key>"):
        Workload.of(spec | {"joins": [{"table": "teams_to_games"}]})
    with pytest.raises(QueryError, match="unknown table"):
        Workload.of(spec).relation({"reports": Table("reports", pd.DataFrame({"game_id": [0]}), text_columns=())})


def test_rotowire_players_reads_every_pair_of_a_seeded_sample_of_games(rotowire: dict[str, Table]) -> None:
    sampled = workload("rotowire_players", sampled=True)
    assert sampled.sample == GroupSample("game_id", 90, 0)
    pairs, every = sampled.relation(rotowire).df, workload("rotowire_players").relation(rotowire).df
    assert (len(pairs), pairs["game_id"].nunique()) == (580, 90)
    games = every[every["game_id"].isin(pairs["game_id"])]  # whole games: each sampled game keeps all its pairs
    assert pairs.reset_index(drop=True).equals(games.reset_index(drop=True))
    assert pairs.equals(sampled.relation(rotowire).df)  # seeded: the same pairs every time
    other = replace(sampled, sample=GroupSample("game_id", 90, 1)).relation(rotowire).df
    assert set(other["game_id"]) != set(pairs["game_id"])


def test_a_bad_sample_is_named() -> None:
    spec = {"dataset": "rotowire", "table": "teams", "filters": [{"template": "{name} won"}]}
    with pytest.raises(QueryError, match="by: <column>, count: <groups>"):
        Workload.of(spec | {"sample": {"count": 3}})
    with pytest.raises(QueryError, match="count >= 1"):
        Workload.of(spec | {"sample": {"by": "game_id", "count": 0}})
    teams = {"teams": Table("teams", pd.DataFrame({"name": ["a", "b"], "game_id": [0, 1]}), text_columns=["name"])}
    with pytest.raises(QueryError, match="the relation has 2"):
        Workload.of(spec | {"sample": {"by": "game_id", "count": 3}}).relation(teams)
    with pytest.raises(QueryError, match="lacks"):
        Workload.of(spec | {"sample": {"by": "game", "count": 1}}).relation(teams)
    one = Workload.of(spec | {"sample": {"by": "game_id", "count": 1, "seed": 5}}).relation(teams)
    assert len(one) == 1 and one.text_columns == ("name",)


def test_the_joined_relation_is_a_table_of_the_predicates_columns_and_labels(rotowire: dict[str, Table]) -> None:
    relation = workload("rotowire_players").relation(rotowire)
    assert relation.name == "players" and len(relation) == 4699
    assert relation.text_columns == ("name", "report")
    labels = relation.label_columns  # the filters' (in order) then the extracts', each once
    assert sorted(labels) == sorted(ROTOWIRE_PLAYER_TRUTH.values()) and labels[0] == "Minutes_played_truth"
    assert workload("ecommerce").relation(load_dataset("ecommerce")).name == "products"


@pytest.mark.parametrize(
    ("name", "dataset", "rows"), [("rotowire_teams", "rotowire", 1309), ("ecommerce", "ecommerce", 1000)]
)
def test_stretto_run_draws_a_shape_and_checks_it_against_the_relation(name: str, dataset: str, rows: int) -> None:
    """`stretto run query=generated` with a paper shape (0 filters + 2 extracts), no model: a multi-table
    workload's query is checked against its joined relation."""
    from hydra import compose, initialize_config_dir

    from stretto.experiment.cli import CONF_DIR
    from stretto.experiment.run import configured_query

    shape = ["query=generated", "query.filters=[0]", "query.extracts=[2]", "query.seed=42", "query.count=10"]
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base=None):
        cfg = compose("config", overrides=[f"dataset={dataset}", f"workload={name}", *shape, "query.index=3"])
    query, table = configured_query(cfg)
    assert len(table) == rows and (len(query.filters), len(query.extracts)) == (0, 2)
    assert query == Query(table.name, (), queries_by_shape(workload(name))["0F2E"][3].extracts)


@pytest.mark.parametrize(("name", "rows"), [("rotowire_team_winners", 1309), ("rotowire_player_scorers", 4699)])
def test_the_rotowire_pipelines_check_and_join_every_pair(rotowire: dict[str, Table], name: str, rows: int) -> None:
    pipeline = Pipeline.of(yaml.safe_load((CONF / "pipeline" / f"{name}.yaml").read_text()))
    columns = pipeline.check({n: list(t.df.columns) for n, t in rotowire.items()})
    assert any(c.endswith("_truth") for c in columns)
    relation = rotowire[pipeline.table].df
    for step in pipeline.steps[:2]:
        relation = step.apply(relation, frames(rotowire))
    assert len(relation) == rows


# ------------------------------------------------------------------------- the report is the stored document
class PlainTokenizer:
    chat_template = None


def test_an_asked_column_goes_into_the_question_not_the_document() -> None:
    from stretto.backends.prompt import PromptParts, operator_prompt

    row = {"name": "Hawks", "report": "The Atlanta Hawks beat the Orlando Magic 95 - 88."}
    won = operator_prompt(Template("{?name} won the game according to {report}"), row, PlainTokenizer())
    assert won == PromptParts(
        "Text:\nThe Atlanta Hawks beat the Orlando Magic 95 - 88.",
        "\n\nDoes the text satisfy this condition: Hawks won the game according to the text? Answer Yes or No."
        "\nAnswer:",
    )
    points = operator_prompt(
        parse_template("the number of [Total_points] for {?name} in {report}"), row, PlainTokenizer()
    )
    assert points.prefix == won.prefix
    assert points.suffix.startswith("\n\nFrom the text, extract the number of Total points for Hawks in the text.")
    both = operator_prompt(Template("{name} won the game according to {report}"), row, PlainTokenizer())
    assert both.prefix == "name:\nHawks\n\nreport:\nThe Atlanta Hawks beat the Orlando Magic 95 - 88."


def test_asked_columns_are_checked() -> None:
    template = Template("{?name} scored more than 20 points according to {report}")
    assert (template.columns, template.document_columns, template.asked_columns) == (
        ("name", "report"),
        ("report",),
        ("name",),
    )
    with pytest.raises(QueryError, match="asks about every column"):
        Template("{?name} won the game")
    with pytest.raises(QueryError, match=r"both as \{column\} and as \{\?column\}"):
        Template("{?name} and {name} according to {report}")
    with pytest.raises(QueryError, match="malformed"):
        Template("{? name} won according to {report}")


@pytest.mark.parametrize(("name", "games"), [("rotowire_teams", 687), ("rotowire_players", 724)])
def test_every_pair_of_a_game_reuses_its_reports_cache(rotowire: dict[str, Table], name: str, games: int) -> None:
    """All operators over all pairs read one stored document per game: 687 prefixes for 1,309 team pairs,
    724 for 4,699 player pairs."""
    from stretto.operators.family import cached_prefixes

    w = workload(name)
    relation = w.relation(rotowire).df
    prefixes = cached_prefixes([op.template for op in (*w.filters, *w.extracts)], relation, PlainTokenizer())
    assert len(prefixes) == len(relation) and len(set(prefixes)) == games == relation["game_id"].nunique()


# --------------------------------------------------------------------------------------------- the shapes
def test_shape_names() -> None:
    assert [shape_name(f, e) for f, e in PAPER_SHAPES] == ["1F1E", "2F", "1F2E", "2F1E", "1F3E", "2F2E", "0F2E"]


@pytest.mark.parametrize("name", WORKLOADS)
def test_every_paper_shape_is_drawn_deterministically_under_seed_42(name: str) -> None:
    w = workload(name)
    drawn = queries_by_shape(w, seed=42)
    shapes = [(f, e) for f, e in PAPER_SHAPES if f <= len(w.filters)]  # ecommerce has one filter
    assert list(drawn) == [shape_name(f, e) for f, e in shapes]
    for filters, extracts in shapes:
        queries = drawn[shape_name(filters, extracts)]
        assert len(queries) == 10 and len(set(queries)) == 10
        assert all((len(q.filters), len(q.extracts)) == (filters, extracts) for q in queries)
    assert drawn == queries_by_shape(w, seed=42)
    assert drawn != queries_by_shape(w, seed=0)


def test_seed_42_draws_are_pinned() -> None:
    """The first query of two shapes, as drawn today: a change here changes every published query list."""
    teams = queries_by_shape(workload("rotowire_teams"))
    assert describe(teams["1F1E"][0]) == (
        "{?name} was leading at halftime according to {report} EXTRACT the number of [Wins] for {?name} in {report}"
    )
    no_filter = queries_by_shape(workload("ecommerce"))["0F2E"][0]
    assert no_filter.filters == () and len(no_filter.extracts) == 2
    assert describe(no_filter).startswith("EXTRACT the ") and describe(no_filter).count(" EXTRACT ") == 1


# ------------------------------------------------------------------------------------------ numeric answers
def test_numbers_compare_as_numbers_and_text_as_text() -> None:
    assert same_answer("12", "12.0") and same_answer("12", 12) and same_answer("12.0", np.int64(12))
    assert same_answer(" 95 ", 95.0) and same_answer("-3.5", -3.5)
    assert not same_answer("12", "13") and not same_answer("12", 12.5)
    assert not same_answer("twelve", "12")  # words are text, not numbers
    assert not same_answer("17 points", 17)  # kept simple: only a bare numeral is a number
    assert same_answer(None, pd.NA) and same_answer(None, float("nan")) and same_answer(None, None)
    assert not same_answer("12", pd.NA) and not same_answer(None, 12)
    assert same_answer("Navy  Blue", "navy blue") and not same_answer("Navy Blue", "Blue")
    assert as_number("1e3") is None and as_number(True) is None and as_number("007") == 7.0


def test_extracted_numbers_are_judged_against_box_score_truth(rotowire: dict[str, Table]) -> None:
    """The evaluation's human truth for a numeric extract is the Int64 truth column; a missing value is right
    only when the extract says none."""
    w = workload("rotowire_teams")
    relation = w.relation(rotowire).df
    rows = relation[relation["game_id"] == 0].reset_index(drop=True)  # Hawks, Magic
    query = Query(w.table, (), tuple(e for e in w.extracts if e.template.output in ("Wins", "Points_in_4th_quarter")))
    table = Table(w.table, rows, text_columns=("name", "report"))
    truth = human_values(table, query, gold={})
    by_name = rows["name"].tolist()
    wins = {"Hawks": "46", "Magic": "19.0"}
    fourth = {"Hawks": None, "Magic": "21"}
    result = pd.DataFrame({"Wins": [wins[n] for n in by_name], "Points_in_4th_quarter": [fourth[n] for n in by_name]})
    assert values_right(result, np.ones(2, bool), truth).tolist() == [True, True]
    result.loc[by_name.index("Hawks"), "Points_in_4th_quarter"] = "30"
    right = values_right(result, np.ones(2, bool), truth)
    assert right.tolist() == [n != "Hawks" for n in by_name]
