"""How the harness finds the table a query runs on: bundled datasets and users' own files."""

import pandas as pd
import pytest
from omegaconf import OmegaConf

from stretto.errors import DataError, QueryError
from stretto.experiment.run import load_table


def cfg(**kw):
    base = {"name": None, "path": None, "table": None, "text_columns": ["text"], "label_columns": [], "limit": None}
    return OmegaConf.create(base | kw)


def test_bundled_dataset_table_by_name():
    table = load_table(cfg(name="movie", limit=5), "reviews")
    assert table.name == "reviews" and len(table) == 5 and "reviewtext" in table.text_columns
    with pytest.raises(QueryError, match="has no table 'emails'"):
        load_table(cfg(name="movie"), "emails")
    with pytest.raises(QueryError, match=r"set query\.table"):
        load_table(cfg(name="movie"), None)


def test_own_csv_with_declared_columns(tmp_path):
    path = tmp_path / "tickets.csv"
    pd.DataFrame({"body": ["refund please", "love it", "charged twice"], "billing": [1, 0, 1]}).to_csv(path)
    table = load_table(cfg(path=str(path), text_columns=["body"], label_columns=["billing"], limit=2), None)
    assert table.name == "tickets" and len(table) == 2 and table.label_columns == ("billing",)
    with pytest.raises(DataError, match="no text column 'text'"):
        load_table(cfg(path=str(path)), None)


def test_own_folder_of_text_files(tmp_path):
    for i in range(3):
        (tmp_path / f"doc{i}.txt").write_text(f"document {i}")
    table = load_table(cfg(path=str(tmp_path), table="docs"), None)
    assert table.name == "docs" and table.df["text"].tolist() == ["document 0", "document 1", "document 2"]


def test_bad_limit():
    with pytest.raises(DataError, match="limit must be >= 1"):
        load_table(cfg(name="movie", limit=0), "reviews")
