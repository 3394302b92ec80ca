"""Document embeddings, computed once (offline) and stored by content: the inputs of learned operators.

A row's document is the text of the columns a template reads; its key is the same content key profiles use
(profiling.profile.keys_of), so every template over the same column shares one embedding per document. A
stored file carries a checksum and is written atomically, like a profile. `EmbeddingStore` keeps one file per
(embedder, set of documents) under a directory beside the KV caches: a table is embedded once, offline
(`stretto cache build`), and every later query reads it. A query never builds embeddings: where none are stored
it has no learned operators (a one-off query on a fresh table must not pay an offline build).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa

from stretto.errors import ProfileError
from stretto.operators.embedding import Embedder
from stretto.profiling.profile import content_key, keys_of, read_checked, write_checked
from stretto.progress import phase

log = logging.getLogger(__name__)


# Parquet names a list's items "element" (pyarrow's default "item" would read back under another type name and
# fail the checksum, which covers the column types).
VECTOR = pa.list_(pa.field("element", pa.float32()))


def documents(rows: pd.DataFrame, columns: Sequence[str]) -> list[str]:
    """The text an embedder reads for each row: the columns' values, one per line."""
    return ["\n".join(values) for values in rows[list(columns)].astype(str).to_numpy().tolist()]


@dataclass(frozen=True)
class EmbeddingTable:
    """One unit-length vector per document, keyed by content, with the seconds each cost to build."""

    embedder: str  # the embedder's identity (weights)
    keys: np.ndarray  # (documents,) content keys
    vectors: np.ndarray  # (documents, dimension) float32
    build_seconds: np.ndarray  # (documents,) offline seconds per document (its share of its batch)

    def __post_init__(self) -> None:
        if self.vectors.ndim != 2 or len(self.vectors) != len(self.keys) or len(self.build_seconds) != len(self.keys):
            raise ProfileError(
                f"embeddings of {self.embedder}: {len(self.keys)} keys, vectors of shape {self.vectors.shape}, "
                f"{len(self.build_seconds)} build seconds do not match"
            )

    def lookup(self, rows: pd.DataFrame, columns: Sequence[str]) -> np.ndarray:
        """(rows, dimension) vectors of these rows' documents; a clear error for any document never embedded."""
        index = pd.Index(self.keys).get_indexer(keys_of(rows, columns))
        if (index < 0).any():
            raise ProfileError(
                f"{int((index < 0).sum())} of {len(rows)} documents ({', '.join(columns)}) have no stored "
                f"{self.embedder} embedding: embed the table first (scripts/record_scores.py --embeddings for a "
                "recording, or an EmbeddingStore)"
            )
        return self.vectors[index]

    @classmethod
    def build(
        cls, rows: pd.DataFrame, columns: Sequence[str], embedder: Embedder, *, progress: bool = True
    ) -> EmbeddingTable:
        """Embed each distinct document of these rows; its build seconds are the wall time shared evenly."""
        keys = keys_of(rows, columns)
        first = ~pd.Series(keys).duplicated().to_numpy()
        texts = documents(rows[first], columns)
        began = time.perf_counter()
        vectors = embedder.encode(texts, progress=progress) if texts else np.zeros((0, 1), np.float32)
        per_document = (time.perf_counter() - began) / max(1, len(texts))
        return cls(embedder.identity, keys[first], vectors, np.full(len(texts), per_document))

    def save(self, path: Path | str) -> Path:
        table = pa.table(
            {
                "row_key": pa.array(self.keys.tolist(), pa.string()),
                "embedder": pa.array([self.embedder] * len(self.keys), pa.string()),
                "vector": pa.array(self.vectors.tolist(), VECTOR),
                "build_seconds": pa.array(self.build_seconds, pa.float64()),
            }
        )
        return write_checked(table, path)

    def available(self, rows: pd.DataFrame, columns: Sequence[str]) -> EmbeddingTable | None:
        """Itself when it holds every row's document (a recording of the whole table), else None."""
        known = pd.Index(self.keys).get_indexer(keys_of(rows, columns))
        return self if (known >= 0).all() else None

    @classmethod
    def load(cls, path: Path | str) -> EmbeddingTable:
        frame = read_checked(path, "embeddings", require_checksum=True)
        embedders = frame["embedder"].unique()
        if len(embedders) != 1:
            raise ProfileError(f"embeddings {path} mix embedders {sorted(embedders)}: one file per embedder")
        vectors = np.array(frame["vector"].tolist(), dtype=np.float32)
        return cls(str(embedders[0]), frame["row_key"].to_numpy(object), vectors, frame["build_seconds"].to_numpy())


class EmbeddingStore:
    """One checksummed file per (embedder, set of documents) under `root` (beside the KV caches)."""

    def __init__(self, root: Path | str, embedder: Embedder | None = None) -> None:
        self.root = Path(root)
        self.embedder = embedder or Embedder()

    def path(self, rows: pd.DataFrame, columns: Sequence[str]) -> Path:
        keys = sorted(set(keys_of(rows, columns)))
        return self.root / f"{content_key(self.embedder.identity, *keys)}.parquet"

    def available(self, rows: pd.DataFrame, columns: Sequence[str]) -> EmbeddingTable | None:
        """The rows' stored embeddings, or None when they were never built (a query does not build them: a
        one-off query must not pay an offline build; `stretto cache build` does). A damaged file is deleted."""
        path = self.path(rows, columns)
        if not path.exists():
            return None
        try:
            stored = EmbeddingTable.load(path)
            stored.lookup(rows, columns)
            return stored
        except ProfileError as err:
            log.warning("discarding stored embeddings %s: %s", path, err)
            path.unlink(missing_ok=True)
            return None

    def build(self, rows: pd.DataFrame, columns: Sequence[str], *, progress: bool = True) -> EmbeddingTable:
        """The rows' embeddings, built and stored unless they already are (offline work, reported on its own)."""
        stored = self.available(rows, columns)
        if stored is not None:
            return stored
        with phase(f"embedding {len(rows)} documents with {self.embedder.name}"):
            built = EmbeddingTable.build(rows, columns, self.embedder, progress=progress)
        built.save(self.path(rows, columns))
        return built
