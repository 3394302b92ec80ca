"""Profiles: what each candidate operator said about each tuple, and what each answer cost.

A profile is a long table with one record per (tuple, template, operator): the score and the
measured seconds. Tuples are named by a content key (a hash of the values the template reads), so
a profile stays valid when rows move, duplicates share one answer, and another table with the
same text reuses it. The same format holds the profiled sample of a query and the full-table
recordings that the replay backend answers from. Each file carries a sha256 of everything a read
returns (every column's name, type and values) in its Parquet metadata and is written atomically;
the profile store verifies every read and re-profiles, with a warning naming the file, whatever
fails verification.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from stretto.errors import ProfileError
from stretto.plan.template import Template
from stretto.profiling.operator import CandidateOperator, ScoredRows

log = logging.getLogger(__name__)
COLUMNS = ("row_key", "template", "operator", "score", "seconds", "tokens", "value")  # value: extractions only


def row_keys(rows: pd.DataFrame, template: Template) -> np.ndarray:
    """Content key per row: a hash of the values of the columns the template reads."""
    return keys_of(rows, template.columns)


def keys_of(rows: pd.DataFrame, columns: Sequence[str]) -> np.ndarray:
    """Content key per row: a hash of the values of these columns (a document stored once, whatever asks)."""
    values = rows[list(columns)].astype(str).to_numpy().tolist()
    return np.array([hashlib.sha1(json.dumps(v).encode()).hexdigest()[:16] for v in values], dtype=object)


@dataclass(frozen=True)
class Profile:
    """Scores and seconds per (row_key, template, operator)."""

    records: pd.DataFrame

    def __post_init__(self) -> None:
        if "value" not in self.records.columns:  # profiles of filters only (and recordings made before extracts)
            object.__setattr__(self, "records", self.records.assign(value=None))
        missing = [c for c in COLUMNS if c not in self.records.columns]
        if missing:
            raise ProfileError(f"a profile needs columns {list(COLUMNS)}; missing {missing}")

    @classmethod
    def empty(cls) -> Profile:
        return cls(pd.DataFrame({c: pd.Series(dtype=t) for c, t in zip(COLUMNS, _DTYPES, strict=True)}))

    @classmethod
    def concat(cls, profiles: Iterable[Profile]) -> Profile:
        frames = [p.records for p in profiles if len(p.records)]
        if not frames:
            return cls.empty()
        records = pd.concat(frames, ignore_index=True)
        return cls(records.drop_duplicates(["row_key", "template", "operator"], keep="last").reset_index(drop=True))

    @classmethod
    def of_scores(cls, keys: Sequence[str], template: Template, operator: str, scored: ScoredRows) -> Profile:
        records = pd.DataFrame(
            {
                "row_key": list(keys),
                "template": template.text,
                "operator": operator,
                "score": scored.scores.astype(np.float32),
                "seconds": scored.seconds.astype(np.float64),
                "tokens": scored.tokens.astype(np.int64),
                "value": list(scored.values) if scored.values is not None else None,
            }
        )
        return cls(records)

    @property
    def operators(self) -> list[str]:
        return sorted(self.records["operator"].unique())

    def lookup(self, keys: Sequence[str], template: Template, operator: str, *, partial: bool = False) -> pd.DataFrame:
        """score / seconds / tokens / value for these keys, in their order; a clear error for anything not recorded
        (`partial`: NaN rows for keys never answered, e.g. gold labels asked only where they matter; still an
        error for an operator that answered nothing at all)."""
        mine = self.records[(self.records["template"] == template.text) & (self.records["operator"] == operator)]
        if partial and (self.records["operator"] == operator).any():
            return mine.drop_duplicates("row_key").set_index("row_key").reindex(list(keys))[list(COLUMNS[3:])]
        if mine.empty:
            known = sorted(self.records.loc[self.records["template"] == template.text, "operator"].unique())
            raise ProfileError(
                f"no recorded answers of operator '{operator}' for template '{template.text}'; "
                f"recorded operators for it: {known or 'none'}"
            )
        found = mine.drop_duplicates("row_key").set_index("row_key").reindex(list(keys))
        absent = found["score"].isna().to_numpy()
        if absent.any():
            raise ProfileError(
                f"{int(absent.sum())} of {len(keys)} rows were never answered by '{operator}' for template "
                f"'{template.text}' (record them first)"
            )
        return found[["score", "seconds", "tokens", "value"]]

    def save(self, path: Path | str) -> Path:
        """Atomic write of the records with a checksum of them (see write_checked)."""
        return write_checked(pa.Table.from_pandas(self.records, preserve_index=False), path)

    @classmethod
    def load(cls, path: Path | str, *, require_checksum: bool = False) -> Profile:
        """The profile in this file, verified against its checksum (see read_checked)."""
        return cls(read_checked(path, "profile", require_checksum=require_checksum))


def write_checked(table: pa.Table, path: Path | str) -> Path:
    """Atomic write (temp + fsync + rename) of a table and a checksum of it, in the Parquet metadata."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    # Only our own metadata: the pandas metadata would also steer how a read rebuilds the frame, unchecked.
    table = table.replace_schema_metadata({CHECKSUM_KEY: table_checksum(table)})
    tmp = path.with_name(f"{path.name}.tmp{os.getpid()}")
    try:
        pq.write_table(table, tmp)
        with open(tmp, "rb") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    with contextlib.suppress(OSError):  # make the rename durable too, where the platform allows it
        fd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
    return path


def read_checked(path: Path | str, what: str, *, require_checksum: bool = False) -> pd.DataFrame:
    """The frame in this file, verified against its checksum; a ProfileError naming the file and the reason when
    it is missing, unreadable, truncated or altered. Files written before they carried a checksum (the first
    committed recordings) are read unverified unless `require_checksum`."""
    path = Path(path)
    if not path.exists():
        raise ProfileError(f"no {what} at {path}")
    try:
        table = pq.read_table(path)
    except Exception as exc:  # pyarrow raises several types for damaged files
        raise ProfileError(f"{what} {path} is corrupt or not Parquet ({type(exc).__name__}: {exc})") from exc
    stored = (table.schema.metadata or {}).get(CHECKSUM_KEY)
    if stored is None:
        if require_checksum:
            raise ProfileError(f"{what} {path} carries no checksum (written by an older version)")
    else:
        try:
            actual = table_checksum(table)
        except Exception as exc:  # a damaged column that decodes lazily
            raise ProfileError(f"{what} {path} is corrupt ({type(exc).__name__}: {exc})") from exc
        if stored != actual:
            raise ProfileError(f"{what} {path} does not match its checksum (its contents were altered)")
    try:
        return table.to_pandas()
    except Exception as exc:
        raise ProfileError(f"{what} {path} is corrupt ({type(exc).__name__}: {exc})") from exc


CHECKSUM_KEY = b"stretto.sha256"


def table_checksum(table: pa.Table) -> bytes:
    """sha256 over what a read returns: every column's name, type and values, in order."""
    digest = hashlib.sha256()
    for field, column in zip(table.schema, table.columns, strict=True):
        digest.update(json.dumps([field.name, str(field.type), len(column)]).encode())
        digest.update(json.dumps(column.to_pylist(), default=repr).encode())
    return digest.hexdigest().encode()


def score_distinct(rows: pd.DataFrame, operator: CandidateOperator, *, progress: bool = True) -> Profile:
    """The operator's answers on these rows, each distinct text scored once."""
    keys = row_keys(rows, operator.template)
    first = ~pd.Series(keys).duplicated().to_numpy()
    scored = operator.score(rows[first], progress=progress)
    return Profile.of_scores(keys[first], operator.template, operator.identity, scored)


def profile_of(
    rows: pd.DataFrame, operator: CandidateOperator, store: ProfileStore | None = None, *, progress: bool = True
) -> Profile:
    """The operator's answers on these rows: from the store when there is one (which keeps what it scores),
    else scored now; each distinct text answered once."""
    return (store.scores if store is not None else score_distinct)(rows, operator, progress=progress)


def answers(
    rows: pd.DataFrame, operator: CandidateOperator, store: ProfileStore | None = None, *, progress: bool = True
) -> pd.DataFrame:
    """The operator's score / seconds / tokens / value for each row, in row order."""
    profile = profile_of(rows, operator, store, progress=progress)
    return profile.lookup(row_keys(rows, operator.template), operator.template, operator.identity)


_DTYPES = (object, object, object, np.float32, np.float64, np.int64, object)


def content_key(*parts: str) -> str:
    return hashlib.sha256("\x1f".join(parts).encode()).hexdigest()[:24]


class ProfileStore:
    """One Parquet file per (rows, template, operator), named by a hash of exactly those contents."""

    def __init__(self, root: Path | str) -> None:
        self.root = Path(root)

    def path(self, keys: Sequence[str], template: Template, operator: str) -> Path:
        rows = content_key(*sorted(set(keys)))
        return self.root / f"{content_key(rows, template.text, operator)}.parquet"

    def forget(self, rows: pd.DataFrame, operator: CandidateOperator) -> None:
        """Drop the stored answers of the operator on these rows (the next `scores` measures them again)."""
        self.path(row_keys(rows, operator.template), operator.template, operator.identity).unlink(missing_ok=True)

    def scores(self, rows: pd.DataFrame, operator: CandidateOperator, *, progress: bool = True) -> Profile:
        """The operator's answers on these rows: read from the store, or scored once and stored.

        Duplicate texts are scored once. Every read is verified: a file that is unreadable, truncated, altered
        (its checksum does not match) or that lacks these rows' answers is reported with a warning naming it,
        deleted, and re-profiled rather than trusted.
        """
        keys = row_keys(rows, operator.template)
        path = self.path(keys, operator.template, operator.identity)
        if path.exists():
            try:
                stored = Profile.load(path, require_checksum=True)
                stored.lookup(keys, operator.template, operator.identity)  # holds every row's answer
                return stored
            except ProfileError as err:
                log.warning("discarding stored profile %s: %s; re-profiling", path, err)
                path.unlink(missing_ok=True)
        profile = score_distinct(rows, operator, progress=progress)
        profile.save(path)
        return profile
