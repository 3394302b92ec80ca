"""Content-addressed on-disk store of KV caches, one safetensors file per (model, variant, text).

The key hashes the model's identity (which changes with its weights), the variant and the exact
prompt prefix, so a cache can never be served for another model version or another text: those
are simply misses and get built. Each file carries a checksum of everything a read returns: every
tensor's name, dtype, shape and bytes, and every metadata field (model, variant, text hash, n_tokens,
format). A file whose checksum, key or format does not match, or that cannot be read, is reported,
deleted and rebuilt, never used. Writes are atomic (temp + fsync + rename), so an interrupted build
leaves only whole entries and resumes where it stopped.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load as load_tensors
from safetensors.torch import save_file

from stretto.errors import CacheError
from stretto.kvcache.variant import KVVariant

log = logging.getLogger(__name__)
FORMAT = "stretto-kv-2"  # kv-1 checksummed the tensors only: its entries are rebuilt


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


def _tensors(entry: KVEntry) -> dict[str, torch.Tensor]:
    return {f"k{i}": k.contiguous() for i, k in enumerate(entry.keys)} | {
        f"v{i}": v.contiguous() for i, v in enumerate(entry.values)
    }


def checksum(tensors: dict[str, torch.Tensor], metadata: dict[str, str]) -> str:
    """sha256 over every metadata field but the checksum and every tensor's name, dtype, shape and bytes."""
    digest = hashlib.sha256()
    fields = {k: v for k, v in metadata.items() if k != "checksum"}
    digest.update(json.dumps(fields, sort_keys=True).encode())
    for name in sorted(tensors):
        t = tensors[name].contiguous()
        digest.update(json.dumps([name, str(t.dtype), list(t.shape)]).encode())
        digest.update(t.view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


def _write_atomically(path: Path, write) -> None:
    """write(tmp) then fsync and rename over `path`: readers see the old file or the whole new one."""
    tmp = path.with_name(f"{path.name}.tmp{os.getpid()}")
    try:
        write(tmp)
        with open(tmp, "rb") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    with contextlib.suppress(OSError):  # the rename itself durable (not possible on every platform)
        fd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


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
        tensors = _tensors(entry)
        metadata = {
            "format": FORMAT,
            "model": model_identity,
            "variant": variant.name,
            "text_sha256": text_hash(prefix),
            "n_tokens": str(entry.n_tokens),
        }
        metadata["checksum"] = checksum(tensors, metadata)
        path.parent.mkdir(parents=True, exist_ok=True)
        _write_atomically(path, lambda tmp: save_file(tensors, str(tmp), metadata=metadata))
        self._used = used + path.stat().st_size
        return path

    def load(self, model_identity: str, variant: KVVariant, prefix: str) -> KVEntry | None:
        """The stored entry, or None when missing or corrupt (a corrupt file is reported and removed)."""
        path = self.path(model_identity, variant, prefix)
        if not path.is_file():
            return None
        try:
            data = path.read_bytes()
            tensors = load_tensors(data)
            # safetensors layout: 8-byte header length, then the JSON header with __metadata__
            header = json.loads(data[8 : 8 + int.from_bytes(data[:8], "little")])
            meta = header.get("__metadata__") or {}
            problem = None
            if meta.get("format") != FORMAT or meta.get("model") != model_identity:
                problem = f"it was built by '{meta.get('model')}' in format {meta.get('format')} (expected {FORMAT})"
            elif meta.get("checksum") != checksum(tensors, meta):
                problem = "its checksum does not match its contents (tensors or metadata)"
            elif meta.get("variant") != variant.name or meta.get("text_sha256") != text_hash(prefix):
                problem = f"it holds variant '{meta.get('variant')}' of another text, not the one its name says"
            else:
                n_layers = len(tensors) // 2
                if set(tensors) != {f"{kv}{i}" for kv in "kv" for i in range(n_layers)} or n_layers == 0:
                    raise ValueError(f"unexpected tensors {sorted(tensors)}")
                entry = KVEntry(
                    keys=[tensors[f"k{i}"] for i in range(n_layers)],
                    values=[tensors[f"v{i}"] for i in range(n_layers)],
                    n_tokens=int(meta["n_tokens"]),
                )
        except (SafetensorError, OSError, KeyError, ValueError, AttributeError, json.JSONDecodeError) as err:
            problem = f"it cannot be read ({type(err).__name__}: {err})"
        if problem is None:
            return entry
        log.warning("discarding KV cache entry %s: %s; it will be rebuilt", path, problem)
        self._used = None
        path.unlink(missing_ok=True)
        return None

    def check(self, model_identity: str, variant: KVVariant, prefix: str) -> str:
        """'missing', 'ok', or 'bad' for an entry that failed verification (reported and removed, as by `load`)."""
        if not self.contains(model_identity, variant, prefix):
            return "missing"
        return "ok" if self.load(model_identity, variant, prefix) is not None else "bad"

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
