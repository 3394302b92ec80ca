"""A named table of rows whose text columns an LLM reads and whose label columns hold ground truth.

`Table` is a thin, validated wrapper around a pandas DataFrame. It exists so that every operator can
rely on the same promises: the declared columns exist, the table has rows, and text columns hold
plain `str` values (never NaN), whichever file format the data came from.

The file readers also refuse input that would be scored silently and wrongly: rows whose text is empty
or missing are dropped with a warning (`keep_empty_text=True` keeps them), binary or undecodable files
in a text folder are refused, and a file that is not in the declared `encoding` is refused with a
message naming the option.
"""

import codecs
import logging
from collections.abc import Iterable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from stretto.errors import DataError

log = logging.getLogger(__name__)

#: Suffixes `Table.from_path` understands (folders are read with `Table.from_text_folder`).
CSV_SUFFIXES: tuple[str, ...] = (".csv",)
PARQUET_SUFFIXES: tuple[str, ...] = (".parquet", ".pq")

#: The encoding files are read in unless one is given (`dataset.encoding` on the command line).
DEFAULT_ENCODING = "utf-8"

#: Text cells that mean "no value" whatever the file format (CSV readers already turn these into NaN;
#: a Parquet file or a DataFrame written with astype(str) can hold them as strings). Compared lowercased.
MISSING_TEXT_MARKERS: frozenset[str] = frozenset({"nan", "-nan", "none", "null", "na", "n/a", "<na>", "#n/a"})

#: How to ask for rows with empty text to be kept, in the words of both ways of loading a table.
KEEP_EMPTY_HINT = "set dataset.keep_empty_text=true to keep them (keep_empty_text=True in Python)"
ENCODING_HINT = "set dataset.encoding to the file's encoding (encoding= in Python), e.g. dataset.encoding=latin-1"


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
    required to be unique, because some published benchmark files contain duplicate rows. `uncut` is
    the whole table when this one is a part of it (`head`, `sample`), so that checks of a query's labels
    can tell a value missing from the rows at hand from a value missing from the data.
    """

    name: str
    df: pd.DataFrame
    text_columns: tuple[str, ...]
    label_columns: tuple[str, ...] = ()
    key: str | None = None
    uncut: "Table | None" = None

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
        encoding: str = DEFAULT_ENCODING,
        keep_empty_text: bool = False,
    ) -> "Table":
        """Read a CSV; text columns are parsed as strings, so values like '007' keep their exact spelling.

        Blank text cells and missing-value markers ('NaN', 'NA', 'null', ...) are missing text: such rows are
        dropped with a warning unless `keep_empty_text` (see `drop_empty_text`). A file that is not valid
        `encoding` is refused with a message saying how to name its encoding.
        """
        path = _existing(path)
        _check_encoding(encoding)
        text_columns = _as_columns(text_columns)
        try:
            df = pd.read_csv(path, dtype=dict.fromkeys(text_columns, str), encoding=encoding)
        except pd.errors.EmptyDataError as exc:
            raise DataError(f"CSV file {path} has no header and no rows") from exc
        except UnicodeDecodeError as exc:
            raise DataError(
                f"cannot read CSV file {path}: it is not valid {encoding} ({exc.reason} at byte {exc.start}); "
                f"{ENCODING_HINT}"
            ) from exc
        except pd.errors.ParserError as exc:
            raise DataError(f"cannot parse CSV file {path}: {exc}") from exc
        table = cls(
            name=name or path.stem,
            df=df,
            text_columns=text_columns,
            label_columns=_as_columns(label_columns),
            key=key,
        )
        return table.drop_empty_text(keep=keep_empty_text)

    @classmethod
    def from_parquet(
        cls,
        path: str | Path,
        *,
        name: str | None = None,
        text_columns: str | Iterable[str],
        label_columns: str | Iterable[str] = (),
        key: str | None = None,
        encoding: str = DEFAULT_ENCODING,
        keep_empty_text: bool = False,
    ) -> "Table":
        """Read a Parquet file (needs pyarrow, a core dependency); rows with empty text as in `from_csv`.

        `encoding` is accepted so that every reader takes the same options; Parquet stores its own (UTF-8).
        """
        path = _existing(path)
        _check_encoding(encoding)
        try:
            df = pd.read_parquet(path)
        except (OSError, ValueError) as exc:  # pyarrow raises ArrowInvalid (a ValueError) on bad files
            raise DataError(f"cannot read Parquet file {path}: {exc}") from exc
        table = cls(
            name=name or path.stem,
            df=df,
            text_columns=_as_columns(text_columns),
            label_columns=_as_columns(label_columns),
            key=key,
        )
        return table.drop_empty_text(keep=keep_empty_text)

    @classmethod
    def from_text_folder(
        cls,
        folder: str | Path,
        *,
        name: str | None = None,
        text_column: str = "text",
        pattern: str = "*.txt",
        encoding: str = DEFAULT_ENCODING,
        keep_empty_text: bool = False,
    ) -> "Table":
        """One row per matching file: `filename` (path relative to the folder) and its text.

        Rows are sorted by filename so the order does not depend on the file system. Files are decoded
        strictly in `encoding` with universal newlines (CRLF arrives as '\\n'). A file holding a NUL byte
        (binary) or bytes that are not valid `encoding` is refused, naming every such file; an empty or
        blank file is dropped with a warning unless `keep_empty_text`.
        """
        folder = _existing(folder)
        if not folder.is_dir():
            raise DataError(f"{folder} is not a folder")
        if text_column == "filename":
            raise DataError("text_column cannot be 'filename': that column holds the file names")
        _check_encoding(encoding)
        files = sorted((p for p in folder.glob(pattern) if p.is_file()), key=lambda p: p.relative_to(folder).as_posix())
        if not files:
            raise DataError(f"folder {folder} has no files matching '{pattern}'")
        names = [p.relative_to(folder).as_posix() for p in files]
        texts: list[str] = []
        refused: list[str] = []
        for file_name, file in zip(names, files, strict=True):
            raw = file.read_bytes()
            if b"\0" in raw:
                refused.append(f"{file_name} (binary: holds NUL bytes)")
                continue
            try:
                text = raw.decode(encoding)
            except UnicodeDecodeError as exc:
                refused.append(f"{file_name} (not valid {encoding}: {exc.reason} at byte {exc.start})")
                continue
            texts.append(text.replace("\r\n", "\n").replace("\r", "\n"))
        if refused:
            verb = "is" if len(refused) == 1 else "are"
            shown = "; ".join(refused[:10]) + (f"; and {len(refused) - 10} more" if len(refused) > 10 else "")
            raise DataError(
                f"folder {folder}: {len(refused)} of {len(files)} files matching '{pattern}' {verb} not text in "
                f"{encoding}: {shown}. Remove them or move them out of the folder (or narrow the file pattern); "
                f"if they are text in another encoding, {ENCODING_HINT}"
            )
        df = pd.DataFrame({"filename": names, text_column: texts})
        table = cls(name=name or folder.name, df=df, text_columns=(text_column,), key="filename")
        return table.drop_empty_text(keep=keep_empty_text)

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

    def drop_empty_text(self, *, keep: bool = False) -> "Table":
        """This table without the rows whose text is empty, with a warning naming how many and where.

        A text cell is empty when it is blank (only whitespace), was missing (NaN, None), or holds a
        missing-value marker such as 'NaN', 'NA' or 'null' (`MISSING_TEXT_MARKERS`): an LLM asked about
        empty text still answers, and such rows used to be scored and kept. A row is dropped when any of
        its text columns is empty. With `keep=True` the rows stay, their empty cells set to "", and the
        warning still counts them. Kept rows are renumbered from 0 (the key, if any, traces them back).
        """
        if not isinstance(keep, bool | np.bool_):
            raise DataError(f"keep_empty_text must be true or false, got {keep!r}")
        if not self.text_columns:
            return self
        empty = {column: _empty_text(self.df[column]) for column in self.text_columns}
        any_empty = np.logical_or.reduce([mask.to_numpy() for mask in empty.values()])
        n_empty = int(any_empty.sum())
        if n_empty == 0:
            return self
        where = ", ".join(f"'{column}' {int(mask.sum())}" for column, mask in empty.items() if mask.any())
        rows = self._describe_rows(any_empty)
        what = (
            f"table '{self.name}': {n_empty} of {len(self)} rows have empty or missing text "
            f"(rows per column: {where}; {rows})"
        )
        if keep:
            log.info("%s; kept and scored as empty text because keep_empty_text is set", what)
            df = self.df.copy()
            for column, mask in empty.items():
                df.loc[mask, column] = ""
            return replace(self, df=df)
        if n_empty == len(self):
            raise DataError(f"{what}: no row has text to score; check the text columns, or {KEEP_EMPTY_HINT}")
        log.warning("%s; dropped them: %s", what, KEEP_EMPTY_HINT)
        return replace(self, df=self.df[~any_empty].reset_index(drop=True))

    def _describe_rows(self, mask: np.ndarray, shown: int = 5) -> str:
        """A few of the masked rows, by key if the table has one, else by position (from 0)."""
        if self.key is not None:
            values = [str(v) for v in self.df.loc[mask, self.key].head(shown)]
            label = f"{self.key} " + ", ".join(values)
        else:
            label = "row " + ", ".join(str(int(i)) for i in np.flatnonzero(mask)[:shown])
        return label + (", ..." if int(mask.sum()) > shown else "")

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
        if n >= len(self):
            return replace(self, df=self.df.head(n))
        return replace(self, df=self.df.head(n), uncut=self._whole())

    def sample(self, n: int, seed: int = 0) -> "Table":
        """n distinct rows chosen at random (reproducible from `seed`), kept in table order.

        The original index labels are kept, so sampled rows can be traced back to the full table.
        """
        _check_count(n, "sample")
        if n > len(self):
            raise DataError(f"cannot sample {n} rows from table '{self.name}' with {len(self)} rows")
        positions = np.sort(np.random.default_rng(seed).choice(len(self), size=n, replace=False))
        return replace(self, df=self.df.iloc[positions], uncut=self._whole())

    def _whole(self) -> "Table":
        """The table this one was cut from, or itself."""
        return self.uncut if self.uncut is not None else self


def _empty_text(values: pd.Series) -> pd.Series:
    """Which cells of a text column (already str) are blank or a missing-value marker."""
    stripped = values.str.strip()
    return stripped.eq("") | stripped.str.lower().isin(MISSING_TEXT_MARKERS)


def _check_encoding(encoding: str) -> None:
    """A DataError naming the option if Python knows no such encoding."""
    try:
        codecs.lookup(encoding)
    except (LookupError, TypeError) as exc:
        raise DataError(
            f"unknown encoding {encoding!r}: set dataset.encoding to e.g. utf-8, latin-1 or cp1252"
        ) from exc


def _existing(path: str | Path) -> Path:
    """The path as a Path, or a DataError naming it if nothing is there."""
    path = Path(path)
    if not path.exists():
        raise DataError(f"no such file or folder: {path}")
    return path


def _check_count(n: int, what: str) -> None:
    if isinstance(n, bool) or not isinstance(n, int | np.integer) or n < 1:
        raise DataError(f"{what}: n must be a positive integer, got {n!r}")
