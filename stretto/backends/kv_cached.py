"""Scoring on stored KV caches: only the question suffix runs through the model at query time.

Caches of different lengths are left-padded into one batch with an attention mask that hides the
padding; each row's question tokens get the positions right after its *original* (uncompressed)
document, as if the document were still there. The stored tensors are never mutated: appending
the question concatenates into new tensors.
"""

from __future__ import annotations

import time
from collections.abc import Sequence

import numpy as np
import torch
from tqdm.auto import tqdm
from transformers import DynamicCache

from stretto.backends.base import ScoredRows
from stretto.backends.transformers_backend import TransformersBackend
from stretto.kvcache.build import KVBuilder
from stretto.kvcache.store import KVEntry
from stretto.kvcache.variant import KVVariant
from stretto.operators.prompt import PromptParts

CHUNK_ROWS = 256  # rows whose caches are held in memory at once


class KVCachedBackend:
    """One (model, press, ratio) physical operator answering from the store; missing caches are built."""

    def __init__(self, base: TransformersBackend, builder: KVBuilder, variant: KVVariant) -> None:
        if variant not in builder.variants:
            raise ValueError(f"builder does not build variant {variant.name}")
        self.base, self.builder, self.variant = base, builder, variant
        self.loaded = base.loaded

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

    @torch.inference_mode()
    def score_batch(self, entries: Sequence[KVEntry], question: list[int]) -> np.ndarray:
        """Log-odds for documents sharing one question: their caches padded on the left to equal length."""
        width = max(e.n_kept for e in entries)
        q = len(question)
        batch, n_layers = len(entries), len(entries[0].keys)
        mask = torch.zeros((batch, width + q), dtype=torch.long)
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
        positions = torch.stack([torch.arange(e.n_tokens, e.n_tokens + q) for e in entries])
        device = self.loaded.model.device
        hidden = self.loaded.model.get_decoder()(
            input_ids=torch.tensor([question] * batch, device=device),
            attention_mask=mask.to(device),
            position_ids=positions.to(device),
            cache_position=torch.arange(width, width + q, device=device),
            past_key_values=cache,
            use_cache=True,
        ).last_hidden_state
        return self.base.yes_no_log_odds(hidden[:, -1, :])

    def score(self, prompts: Sequence[PromptParts], *, desc: str = "scoring", progress: bool = True) -> ScoredRows:
        """Score every prompt on its document's stored cache, in batches of similar cache length.

        Caches are read a chunk at a time so that long documents never hold the whole table's caches in memory.
        """
        if len(prompts) > CHUNK_ROWS:
            parts = [
                self.score(prompts[i : i + CHUNK_ROWS], desc=f"{desc} [{i // CHUNK_ROWS + 1}]", progress=progress)
                for i in range(0, len(prompts), CHUNK_ROWS)
            ]
            return ScoredRows(
                np.concatenate([p.scores for p in parts]),
                np.concatenate([p.seconds for p in parts]),
                np.concatenate([p.tokens for p in parts]),
                sum(p.truncated for p in parts),
            )
        tokenizer = self.loaded.tokenizer
        questions = [tuple(tokenizer.encode(p.suffix, add_special_tokens=False)) for p in prompts]
        seconds = np.zeros(len(prompts), dtype=np.float64)
        entries = []
        for i, p in enumerate(prompts):  # reading (and checksumming) a cache is part of a row's query cost
            began = time.perf_counter()
            entries.append(self.entry(p.prefix))
            seconds[i] = time.perf_counter() - began
        order = sorted(range(len(prompts)), key=lambda i: (questions[i], entries[i].n_kept))
        scores = np.zeros(len(prompts), dtype=np.float32)
        bar = tqdm(total=len(prompts), desc=desc, unit="row", disable=not progress)
        start = 0
        while start < len(order):
            rows = [order[start]]
            while (
                len(rows) < self.base.batch_size
                and start + len(rows) < len(order)
                and questions[order[start + len(rows)]] == questions[rows[0]]
            ):
                rows.append(order[start + len(rows)])
            began = time.perf_counter()
            scores[rows] = self.score_batch([entries[i] for i in rows], list(questions[rows[0]]))
            seconds[rows] += (time.perf_counter() - began) / len(rows)
            bar.update(len(rows))
            start += len(rows)
        bar.close()
        return ScoredRows(scores, seconds, np.array([len(q) for q in questions], dtype=np.int64), 0)
