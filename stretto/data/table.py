"""A named table of rows whose text columns an LLM reads and whose label columns hold ground truth.

`Table` is a thin, validated wrapper around a pandas DataFrame. It exists so that every operator can
rely on the same promises: the declared columns exist, the table has rows, and text columns hold
plain `str` values (never NaN), whichever file format the data came from.
"""

from collections.abc import Iterable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from stretto.errors import DataError

#: Suffixes `Table.from_path` understands (folders are read with `Table.from_text_folder`).
CSV_SUFFIXES: tuple[str, ...] = (".csv",)
PARQUET_SUFFIXES: tuple[str, ...] = (".parquet", ".pq")


def _as_columns(columns: str | Iterable[str]) -> tuple[str, ...]:
    """Normalise a column declaration to a tuple; a lone string is one column, not its characters."""
    if isinstance(columns, str):
        return (columns,)
    return tuple(columns)


def _as_text(values: pd.Series) -> pd.Series:
    """Missing values become "" (an LLM prompt must never read 'nan'); everything else becomes str."""
    as_object = values.astype(object)
    return as_object.where(as_object.notna(), "").astype(str)


@dataclass(eq=False, repr=False)
class Table:
    """A validated DataFrame plus which columns are text (LLM input), labels (truth) and the row key.

    `key` names a column that identifies rows (for joins and for tracing results back); it is not
    required to be unique, because some published benchmark files contain duplicate rows.
    """

    name: str
    df: pd.DataFrame
    text_columns: tuple[str, ...]
    label_columns: tuple[str, ...] = ()
    key: str | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.df, pd.DataFrame):
            raise DataError(f"table '{self.name}': df must be a pandas DataFrame, got {type(self.df).__name__}")
        self.text_columns = _as_columns(self.text_columns)
        self.label_columns = _as_columns(self.label_columns)
        declared = [("text", c) for c in self.text_columns] + [("label", c) for c in self.label_columns]
        if self.key is not None:
            declared.append(("key", self.key))
        available = [str(c) for c in self.df.columns]
        for role, column in declared:
            if column not in self.df.columns:
                raise DataError(
                    f"table '{self.name}' has no {role} column '{column}'; "
                    f"available columns: {', '.join(available) or '(none)'}"
                )
        if len(self.df) == 0:
            raise DataError(f"table '{self.name}' is empty")
        # Copy so that coercing text columns never mutates the caller's DataFrame.
        self.df = self.df.copy()
        for column in self.text_columns:
            self.df[column] = _as_text(self.df[column])

    # ----------------------------------------------------------------------------------- constructors
    @classmethod
    def from_csv(
        cls,
        path: str | Path,
        *,
        name: str | None = None,
        text_columns: str | Iterable[str],
        label_columns: str | Iterable[str] = (),
        key: str | None = None,
    ) -> "Table":
        """Read a CSV; text columns are parsed as strings, so values like '007' keep their exact spelling."""
        path = _existing(path)
        text_columns = _as_columns(text_columns)
        try:
            df = pd.read_csv(path, dtype=dict.fromkeys(text_columns, str))
        except pd.errors.EmptyDataError as exc:
            raise DataError(f"CSV file {path} has no header and no rows") from exc
        except (pd.errors.ParserError, UnicodeDecodeError) as exc:
            raise DataError(f"cannot parse CSV file {path}: {exc}") from exc
        return cls(
            name=name or path.stem,
            df=df,
            text_columns=text_columns,
            label_columns=_as_columns(label_columns),
            key=key,
        )

    @classmethod
    def from_parquet(
        cls,
        path: str | Path,
        *,
        name: str | None = None,
        text_columns: str | Iterable[str],
        label_columns: str | Iterable[str] = (),
        key: str | None = None,
    ) -> "Table":
        """Read a Parquet file (needs pyarrow, a core dependency)."""
        path = _existing(path)
        try:
            df = pd.read_parquet(path)
        except (OSError, ValueError) as exc:  # pyarrow raises ArrowInvalid (a ValueError) on bad files
            raise DataError(f"cannot read Parquet file {path}: {exc}") from exc
        return cls(
            name=name or path.stem,
            df=df,
            text_columns=_as_columns(text_columns),
            label_columns=_as_columns(label_columns),
            key=key,
        )

    @classmethod
    def from_text_folder(
        cls,
        folder: str | Path,
        *,
        name: str | None = None,
        text_column: str = "text",
        pattern: str = "*.txt",
    ) -> "Table":
        """One row per matching file: `filename` (path relative to the folder) and its text.

        Rows are sorted by filename so the order does not depend on the file system. Files are read as
        UTF-8 with undecodable bytes replaced (raw e-mail dumps are not always clean) and in text mode,
        so CRLF line endings arrive as '\\n'.
        """
        folder = _existing(folder)
        if not folder.is_dir():
            raise DataError(f"{folder} is not a folder")
        if text_column == "filename":
            raise DataError("text_column cannot be 'filename': that column holds the file names")
        files = sorted((p for p in folder.glob(pattern) if p.is_file()), key=lambda p: p.relative_to(folder).as_posix())
        if not files:
            raise DataError(f"folder {folder} has no files matching '{pattern}'")
        df = pd.DataFrame(
            {
                "filename": [p.relative_to(folder).as_posix() for p in files],
                text_column: [p.read_text(encoding="utf-8", errors="replace") for p in files],
            }
        )
        return cls(name=name or folder.name, df=df, text_columns=(text_column,), key="filename")

    @classmethod
    def from_path(cls, path: str | Path, **kwargs: Any) -> "Table":
        """Pick the reader from the path: .csv, .parquet/.pq, or a folder of text files."""
        path = _existing(path)
        if path.is_dir():
            return cls.from_text_folder(path, **kwargs)
        suffix = path.suffix.lower()
        if suffix in CSV_SUFFIXES:
            return cls.from_csv(path, **kwargs)
        if suffix in PARQUET_SUFFIXES:
            return cls.from_parquet(path, **kwargs)
        known = ", ".join(CSV_SUFFIXES + PARQUET_SUFFIXES)
        raise DataError(
            f"cannot load {path}: unsupported file type '{suffix or '(no suffix)'}'; "
            f"expected one of {known} or a folder of text files"
        )

    # ---------------------------------------------------------------------------------------- access
    def __len__(self) -> int:
        return len(self.df)

    def __repr__(self) -> str:
        # The dataclass default would print the whole DataFrame.
        return (
            f"Table(name={self.name!r}, rows={len(self)}, text_columns={self.text_columns!r}, "
            f"label_columns={self.label_columns!r}, key={self.key!r})"
        )

    @property
    def columns(self) -> list[str]:
        """All column names, in order."""
        return [str(c) for c in self.df.columns]

    def column(self, name: str) -> pd.Series:
        """One column by name, with an error that says which columns exist."""
        if name not in self.df.columns:
            raise DataError(f"table '{self.name}' has no column '{name}'; available columns: {', '.join(self.columns)}")
        return self.df[name]

    def head(self, n: int) -> "Table":
        """The first n rows (all rows if the table is shorter), with the same declarations."""
        _check_count(n, "head")
        return replace(self, df=self.df.head(n))

    def sample(self, n: int, seed: int = 0) -> "Table":
        """n distinct rows chosen at random (reproducible from `seed`), kept in table order.

        The original index labels are kept, so sampled rows can be traced back to the full table.
        """
        _check_count(n, "sample")
        if n > len(self):
            raise DataError(f"cannot sample {n} rows from table '{self.name}' with {len(self)} rows")
        positions = np.sort(np.random.default_rng(seed).choice(len(self), size=n, replace=False))
        return replace(self, df=self.df.iloc[positions])


def _existing(path: str | Path) -> Path:
    """The path as a Path, or a DataError naming it if nothing is there."""
    path = Path(path)
    if not path.exists():
        raise DataError(f"no such file or folder: {path}")
    return path


def _check_count(n: int, what: str) -> None:
    if isinstance(n, bool) or not isinstance(n, int | np.integer) or n < 1:
        raise DataError(f"{what}: n must be a positive integer, got {n!r}")
