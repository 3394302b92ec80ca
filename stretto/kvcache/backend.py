"""Scoring on stored KV caches: only the question suffix runs through the model at query time.

Caches of different lengths are left-padded into one batch with an attention mask that hides the
padding; each row's question tokens get the positions right after its *original* (uncompressed)
document, as if the document were still there. The stored tensors are never mutated: appending
the question concatenates into new tensors.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import fields, replace

import numpy as np
import torch
from transformers import DynamicCache

from stretto.backends.batching import timed_batches
from stretto.backends.generation import GeneratedRows, greedy_continue
from stretto.backends.prompt import PromptParts
from stretto.backends.transformers_backend import TransformersBackend
from stretto.kvcache.build import KVBuilder
from stretto.kvcache.store import KVEntry
from stretto.kvcache.variant import KVVariant
from stretto.profiling.operator import ScoredRows
from stretto.progress import Progress

CHUNK_ROWS = 256  # rows whose caches are held in memory at once


class KVCachedBackend:
    """One (model, press, ratio) physical operator answering from the store; missing caches are built."""

    def __init__(
        self, base: TransformersBackend, builder: KVBuilder, variant: KVVariant, *, scratch_when_missing: bool = False
    ) -> None:
        """`scratch_when_missing`: rows whose cache is not stored are answered from scratch by `base` instead of
        building their cache at query time (an uncompressed variant only: its answers are the model's on the
        whole prompt either way; a compressed one exists only as a stored cache)."""
        if variant not in builder.variants:
            raise ValueError(f"builder does not build variant {variant.name}")
        if scratch_when_missing and variant.compressed:
            raise ValueError(f"variant {variant.name} is compressed: it answers only from a stored cache")
        self.base, self.builder, self.variant = base, builder, variant
        self.loaded = base.loaded
        self.scratch_when_missing = scratch_when_missing

    @property
    def identity(self) -> str:
        return self.variant.operator_identity(self.loaded.identity)

    def entry(self, prefix: str) -> KVEntry:
        store, identity = self.builder.store, self.loaded.identity
        entry = store.load(identity, self.variant, prefix)
        if entry is None:
            self.builder.store_all(prefix)  # a miss or a discarded corrupt entry
            entry = store.load(identity, self.variant, prefix)
        assert entry is not None
        return entry

    def _stacked(self, entries: Sequence[KVEntry]) -> tuple[DynamicCache, torch.Tensor]:
        """The entries' caches left-padded to one width in a fresh cache (the stored tensors are not mutated)."""
        width = max(e.n_kept for e in entries)
        batch, n_layers = len(entries), len(entries[0].keys)
        mask = torch.zeros((batch, width), dtype=torch.long)
        for i, e in enumerate(entries):
            mask[i, width - e.n_kept :] = 1
        cache = DynamicCache(config=self.loaded.model.config)
        for layer in range(n_layers):
            keys = [e.keys[layer] for e in entries]
            values = [e.values[layer] for e in entries]
            if batch == 1:
                k, v = keys[0][None], values[0][None]
            else:
                k = torch.zeros((batch, *keys[0].shape[:-2], width, keys[0].shape[-1]), dtype=keys[0].dtype)
                v = torch.zeros((batch, *values[0].shape[:-2], width, values[0].shape[-1]), dtype=values[0].dtype)
                for i, e in enumerate(entries):
                    k[i, :, width - e.n_kept :] = keys[i]
                    v[i, :, width - e.n_kept :] = values[i]
            cache.update(k, v, layer)
        return cache, mask

    def _question(self, entries: Sequence[KVEntry], question: list[int], *, full_logits: bool):
        """Run the question on the stacked caches: positions continue each row's original document."""
        cache, mask = self._stacked(entries)
        width, q = mask.shape[1], len(question)
        mask = torch.cat([mask, torch.ones((len(entries), q), dtype=torch.long)], dim=1)
        positions = torch.stack([torch.arange(e.n_tokens, e.n_tokens + q) for e in entries])
        device = self.loaded.model.device
        inputs = dict(
            input_ids=torch.tensor([question] * len(entries), device=device),
            attention_mask=mask.to(device),
            position_ids=positions.to(device),
            cache_position=torch.arange(width, width + q, device=device),
            past_key_values=cache,
            use_cache=True,
        )
        if full_logits:
            out = self.loaded.model(**inputs, logits_to_keep=1).logits[:, -1, :]
        else:
            out = self.loaded.model.get_decoder()(**inputs).last_hidden_state[:, -1, :]
        return out, cache, mask, positions[:, -1] + 1

    @torch.inference_mode()
    def score_batch(self, entries: Sequence[KVEntry], question: list[int]) -> np.ndarray:
        """Log-odds for documents sharing one question: their caches padded on the left to equal length."""
        hidden, *_ = self._question(entries, question, full_logits=False)
        return self.base.yes_no_log_odds(hidden)

    @torch.inference_mode()
    def generate_batch(self, entries: Sequence[KVEntry], question: list[int]) -> list[tuple[str, float]]:
        """Greedy short answers for documents sharing one question, continuing on their stacked caches."""
        logits, cache, mask, positions = self._question(entries, question, full_logits=True)
        texts, logprobs = greedy_continue(self.loaded.model, self.loaded.tokenizer, logits, cache, mask, positions)
        return list(zip(texts, logprobs.tolist(), strict=True))

    def build_missing(self, prompts: Sequence[PromptParts], *, progress: bool = True) -> dict[str, float]:
        """Build the caches missing from the store, with progress; the seconds each document's build took."""
        store, identity = self.builder.store, self.loaded.identity
        missing = [x for x in dict.fromkeys(p.prefix for p in prompts) if not store.contains(identity, self.variant, x)]
        seconds: dict[str, float] = {}
        if not missing:
            return seconds
        desc = f"building missing KV caches at query time ({self.identity})"
        with Progress(len(missing), desc, unit="doc", enabled=progress) as bar:
            for prefix in missing:
                began = time.perf_counter()
                self.builder.store_all(prefix)
                seconds[prefix] = time.perf_counter() - began
                bar.update()
        return seconds

    def _run(self, prompts: Sequence[PromptParts], run, desc: str, progress: bool) -> tuple[list, np.ndarray]:
        """run(entries, question) over batches of rows sharing a question, sorted by cache length.

        Missing caches are built first, with their own progress; building a document's cache is part of the
        query cost of the first row that reads it. Caches are read a chunk at a time so that long documents
        never hold the whole table's caches in memory.
        """
        built = self.build_missing(prompts, progress=progress)
        with Progress(len(prompts), desc, unit="row", enabled=progress) as bar:
            parts = [
                self._run_chunk(prompts[i : i + CHUNK_ROWS], run, bar, built)
                for i in range(0, len(prompts), CHUNK_ROWS)
            ]
        return [o for p in parts for o in p[0]], np.concatenate([p[1] for p in parts] or [np.zeros(0)])

    def _run_chunk(self, prompts: Sequence[PromptParts], run, bar: Progress, built: dict[str, float]):
        tokenizer = self.loaded.tokenizer
        questions = [tuple(tokenizer.encode(p.suffix, add_special_tokens=False)) for p in prompts]
        seconds = np.zeros(len(prompts), dtype=np.float64)
        entries = []
        for i, p in enumerate(prompts):  # reading (and checksumming) a cache is part of a row's query cost
            began = time.perf_counter()
            entries.append(self.entry(p.prefix))
            seconds[i] = time.perf_counter() - began + built.pop(p.prefix, 0.0)
        sort_key = [(q, e.n_kept) for q, e in zip(questions, entries, strict=True)]
        return timed_batches(len(prompts), lambda rows: run([entries[i] for i in rows], list(questions[rows[0]])),
                             batch_size=self.base.batch_size, bar=bar, sort_key=sort_key, group=questions,
                             seconds=seconds)  # fmt: skip

    def _tokens(self, prompts: Sequence[PromptParts]) -> np.ndarray:
        return np.array([len(self.loaded.tokenizer.encode(p.suffix, add_special_tokens=False)) for p in prompts])

    def unstored(self, prompts: Sequence[PromptParts]) -> np.ndarray:
        """(prompts,) bool: the document's cache of this variant is not in the store."""
        store, identity = self.builder.store, self.loaded.identity
        return np.array([not store.contains(identity, self.variant, p.prefix) for p in prompts], dtype=bool)

    def score(self, prompts: Sequence[PromptParts], *, desc: str = "scoring", progress: bool = True) -> ScoredRows:
        """Score every prompt on its document's stored cache, in batches of similar cache length (rows with no
        stored cache from scratch, when `scratch_when_missing`)."""

        def on_cache(rows: Sequence[PromptParts]) -> ScoredRows:
            scores, seconds = self._run(rows, self.score_batch, desc, progress)
            return ScoredRows(np.array(scores, dtype=np.float32), seconds, self._tokens(rows).astype(np.int64), 0)

        return self._answer(prompts, on_cache, lambda rows: self.base.score(rows, desc=desc, progress=progress))

    def generate(self, prompts: Sequence[PromptParts], *, desc: str = "extracting", progress: bool = True):
        """Greedy short answers on the stored caches (extraction), batched like `score` (from scratch where
        `score` would be)."""

        def on_cache(rows: Sequence[PromptParts]) -> GeneratedRows:
            answers, seconds = self._run(rows, self.generate_batch, desc, progress)
            return GeneratedRows.of(answers, seconds, self._tokens(rows).astype(np.int64), 0)

        return self._answer(prompts, on_cache, lambda rows: self.base.generate(rows, desc=desc, progress=progress))

    def _answer(self, prompts: Sequence[PromptParts], on_cache, from_scratch):
        """on_cache(prompts), except that with `scratch_when_missing` the rows with no stored cache are answered by
        from_scratch; the two answers (ScoredRows or GeneratedRows) merged back into the prompts' order."""
        scratch = self.unstored(prompts) if self.scratch_when_missing else np.zeros(len(prompts), bool)
        if not scratch.any():
            return on_cache(prompts)
        fresh = from_scratch([p for p, s in zip(prompts, scratch, strict=True) if s])
        if scratch.all():
            return fresh
        cached = on_cache([p for p, s in zip(prompts, scratch, strict=True) if not s])
        merged = {}
        for field in fields(fresh):  # the per-row columns; a count (truncated) and an absent column stay fresh's
            column = getattr(fresh, field.name)
            if not isinstance(column, (list, np.ndarray)):
                continue
            ours, theirs = iter(getattr(cached, field.name)), iter(column)
            values = [next(theirs) if s else next(ours) for s in scratch]
            merged[field.name] = values if isinstance(column, list) else np.array(values, dtype=column.dtype)
        return replace(fresh, **merged)
