"""Content-addressed on-disk store of KV caches, one safetensors file per (model, variant, text).

The key hashes the model's identity (which changes with its weights), the variant and the exact
prompt prefix, so a cache can never be served for another model version or another text: those
are simply misses and get built. Each file carries a checksum of its tensors; a corrupt or
truncated file is reported, deleted and rebuilt, never used. Writes are atomic (temp + rename),
so an interrupted build leaves only whole entries and resumes where it stopped.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from stretto.errors import CacheError
from stretto.kvcache.variant import KVVariant

log = logging.getLogger(__name__)
FORMAT = "stretto-kv-1"


@dataclass
class KVEntry:
    """One document's cache: per layer (kv_heads, kept_tokens, head_dim) keys and values."""

    keys: list[torch.Tensor]
    values: list[torch.Tensor]
    n_tokens: int  # the prefix's length before compression: question positions continue from here

    @property
    def n_kept(self) -> int:
        return int(self.keys[0].shape[-2])

    @property
    def nbytes(self) -> int:
        return sum(t.numel() * t.element_size() for t in (*self.keys, *self.values))


def checksum(entry: KVEntry) -> str:
    digest = hashlib.sha256()
    for t in (*entry.keys, *entry.values):
        digest.update(t.contiguous().view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


def text_hash(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def _slug(identity: str) -> str:
    return identity.replace("/", "--").replace("@", "-")


class KVStore:
    """A directory of cache entries with a size budget; `info()` accounts for what is stored."""

    def __init__(self, root: Path | str, *, budget_gb: float | None = None) -> None:
        self.root = Path(root)
        self.budget_bytes = None if budget_gb is None else int(budget_gb * 1024**3)
        self._used: int | None = None

    def path(self, model_identity: str, variant: KVVariant, prefix: str) -> Path:
        key = hashlib.sha256(f"{model_identity}|{variant.name}|{text_hash(prefix)}".encode()).hexdigest()
        return self.root / _slug(model_identity) / variant.name / key[:2] / f"{key}.safetensors"

    def used_bytes(self) -> int:
        if self._used is None:
            self._used = sum(p.stat().st_size for p in self.root.rglob("*.safetensors"))
        return self._used

    def contains(self, model_identity: str, variant: KVVariant, prefix: str) -> bool:
        return self.path(model_identity, variant, prefix).is_file()

    def save(self, model_identity: str, variant: KVVariant, prefix: str, entry: KVEntry) -> Path:
        path = self.path(model_identity, variant, prefix)
        used = self.used_bytes() - (path.stat().st_size if path.is_file() else 0)
        if self.budget_bytes is not None and used + entry.nbytes > self.budget_bytes:
            raise CacheError(
                f"the KV cache store at {self.root} would exceed its budget of {self.budget_bytes / 1024**3:.2f} GB "
                f"({used / 1024**3:.2f} GB used); raise kv.budget_gb or remove variants "
                "(see `stretto cache info`)"
            )
        tensors = {f"k{i}": k.contiguous() for i, k in enumerate(entry.keys)}
        tensors |= {f"v{i}": v.contiguous() for i, v in enumerate(entry.values)}
        metadata = {
            "format": FORMAT,
            "model": model_identity,
            "variant": variant.name,
            "text_sha256": text_hash(prefix),
            "n_tokens": str(entry.n_tokens),
            "checksum": checksum(entry),
        }
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".tmp{os.getpid()}")
        save_file(tensors, str(tmp), metadata=metadata)
        os.replace(tmp, path)
        self._used = used + path.stat().st_size
        return path

    def load(self, model_identity: str, variant: KVVariant, prefix: str) -> KVEntry | None:
        """The stored entry, or None when missing or corrupt (a corrupt file is reported and removed)."""
        path = self.path(model_identity, variant, prefix)
        if not path.is_file():
            return None
        try:
            tensors = load_file(str(path))
            with open(path, "rb") as f:  # safetensors header: 8-byte length, then JSON with __metadata__
                header = json.loads(f.read(int.from_bytes(f.read(8), "little")))
            meta = header.get("__metadata__", {})
            n_layers = len(tensors) // 2
            entry = KVEntry(
                keys=[tensors[f"k{i}"] for i in range(n_layers)],
                values=[tensors[f"v{i}"] for i in range(n_layers)],
                n_tokens=int(meta["n_tokens"]),
            )
            problem = None
            if meta.get("format") != FORMAT or meta.get("model") != model_identity:
                problem = f"it was built by '{meta.get('model')}' in format {meta.get('format')}"
            elif meta.get("checksum") != checksum(entry):
                problem = "its checksum does not match its contents"
        except (SafetensorError, OSError, KeyError, ValueError, json.JSONDecodeError) as err:
            problem = f"it cannot be read ({type(err).__name__}: {err})"
        if problem is None:
            return entry
        log.warning("discarding KV cache entry %s: %s; it will be rebuilt", path, problem)
        self._used = None
        path.unlink(missing_ok=True)
        return None

    def info(self) -> list[dict[str, object]]:
        """Entries and bytes per (model, variant), for `stretto cache info`."""
        rows = []
        for model_dir in sorted(p for p in self.root.glob("*") if p.is_dir()):
            for variant_dir in sorted(p for p in model_dir.glob("*") if p.is_dir()):
                files = list(variant_dir.rglob("*.safetensors"))
                size = sum(f.stat().st_size for f in files)
                rows.append(
                    {
                        "model": model_dir.name,
                        "variant": variant_dir.name,
                        "entries": len(files),
                        "mb": size / 1024**2,
                        "mb_per_entry": size / 1024**2 / max(len(files), 1),
                    }
                )
        return rows
