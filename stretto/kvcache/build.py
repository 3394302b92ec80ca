"""Offline build of KV caches: one prefill per document feeds every press of the same model.

A press only changes what is stored, not the forward pass (it compresses a layer's keys and values
after that layer has attended over the full prefix), so we run the prefill once, let each press
compress a copy of every layer's keys/values in a forward hook, and keep the full cache for ratio 0.
The result is bit-identical to running each press separately, at one prefill per document.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass

import torch
from transformers import DynamicCache

from stretto.backends.model_loader import LoadedModel
from stretto.errors import CacheError, ContextLengthError
from stretto.kvcache.store import KVEntry, KVStore
from stretto.kvcache.variant import KVVariant, make_press
from stretto.progress import Progress

log = logging.getLogger(__name__)
QUESTION_RESERVE = 128  # tokens kept free in the context for the question appended at query time


@dataclass(frozen=True)
class BuildStats:
    documents: int
    built: int  # documents that needed a prefill (the others were already stored: resumed)
    seconds: float
    prefill_tokens: int
    bad: int = 0  # stored entries that failed verification (reported, removed and rebuilt)


def attention_layers(loaded: LoadedModel) -> list[torch.nn.Module]:
    """The attention modules a press hooks; a clear error for architectures kvpress cannot compress."""
    decoder = loaded.model.get_decoder()
    layers = getattr(decoder, "layers", None)
    attns = [getattr(layer, "self_attn", None) for layer in layers or []]
    rotary = getattr(decoder, "rotary_emb", None)
    if (
        not attns
        or rotary is None
        or any(a is None or not hasattr(a, "q_proj") or not hasattr(a, "layer_idx") for a in attns)
    ):
        raise CacheError(
            f"KV compression presses cannot hook model '{loaded.identity}' ({type(loaded.model).__name__}): "
            "they need decoder layers with a Llama-style self_attn (q_proj/k_proj, layer_idx) and rotary "
            "embeddings. Use ratio 0 (no press) with this model."
        )
    for attn in attns:
        attn.rotary_emb = rotary  # presses read it from the attention module, as kvpress's own hook sets up
    return attns


class KVBuilder:
    """Builds and stores the caches of one model for a set of variants."""

    def __init__(
        self,
        loaded: LoadedModel,
        variants: Sequence[KVVariant],
        store: KVStore,
        *,
        min_kept_tokens: int = 16,
        max_tokens: int | None = None,
        on_long_text: str = "truncate",
    ) -> None:
        self.loaded, self.store = loaded, store
        self.variants = list(dict.fromkeys(variants))
        self.min_kept_tokens = min_kept_tokens
        self.max_prefix = min(max_tokens or loaded.max_context, loaded.max_context) - QUESTION_RESERVE
        self.on_long_text = on_long_text
        self.presses = {v: make_press(v) for v in self.variants if v.compressed}
        self.layers = attention_layers(loaded) if self.presses else []
        for press in self.presses.values():
            press.post_init_from_model(loaded.model)

    def prefix_ids(self, prefix: str) -> list[int]:
        ids = self.loaded.tokenizer.encode(prefix, add_special_tokens=False)
        if len(ids) <= self.max_prefix:
            return ids
        if self.on_long_text == "error":
            raise ContextLengthError(
                f"a document of {len(ids)} tokens exceeds the {self.max_prefix} tokens a cache may hold for "
                f"model '{self.loaded.identity}' (context minus {QUESTION_RESERVE} for the question)"
            )
        log.warning("a document of %d tokens was cut to %d to fit the context", len(ids), self.max_prefix)
        return ids[: self.max_prefix]

    @torch.inference_mode()
    def prefill(self, ids: list[int]) -> dict[KVVariant, KVEntry]:
        """One forward pass over the prefix; every variant's cache for it."""
        n = len(ids)
        for variant, press in self.presses.items():
            # Short texts: keep at least min_kept_tokens, or the press would leave almost nothing.
            press.compression_ratio = min(variant.ratio, max(0.0, 1.0 - self.min_kept_tokens / n))
        captured: dict[KVVariant, tuple[list, list]] = {v: ([], []) for v in self.presses}

        def compress_copies(module, args, kwargs, output):
            layer = kwargs["past_key_values"].layers[module.layer_idx]
            for variant, press in self.presses.items():
                if press.compression_ratio > 0:
                    keys, values = press.compress(
                        module, kwargs["hidden_states"], layer.keys, layer.values, output[1], kwargs
                    )
                else:
                    keys, values = layer.keys, layer.values
                captured[variant][0].append(keys[0].clone())
                captured[variant][1].append(values[0].clone())
            return output

        hooks = [attn.register_forward_hook(compress_copies, with_kwargs=True) for attn in self.layers]
        try:
            cache = DynamicCache(config=self.loaded.model.config)
            device = self.loaded.model.device
            self.loaded.model.get_decoder()(
                input_ids=torch.tensor([ids], device=device), past_key_values=cache, use_cache=True
            )
        finally:
            for hook in hooks:
                hook.remove()
        entries = {v: KVEntry(list(k), list(vals), n) for v, (k, vals) in captured.items()}
        full = KVEntry([layer.keys[0] for layer in cache.layers], [layer.values[0] for layer in cache.layers], n)
        entries |= {v: full for v in self.variants if not v.compressed}
        return entries

    def store_all(self, prefix: str) -> int:
        """Prefill this document once and store every variant's cache; returns the prefill tokens."""
        ids = self.prefix_ids(prefix)
        for variant, entry in self.prefill(ids).items():
            self.store.save(self.loaded.identity, variant, prefix, entry)
        return len(ids)

    def build(
        self, prefixes: Sequence[str], *, progress: bool = True, verify: bool = True, desc: str = "building KV caches"
    ) -> BuildStats:
        """Build every document's caches; documents already stored for all variants are skipped (resume).

        With `verify`, every stored entry is read and checked first: a bad one is reported, removed and
        rebuilt (counted in `bad`). Without it, an entry that exists counts as stored (a later read checks it).
        """
        began, built, tokens, bad = time.perf_counter(), 0, 0, 0
        identity = self.loaded.identity
        unique = list(dict.fromkeys(prefixes))
        with Progress(len(unique), f"{desc} ({identity})", unit="doc", enabled=progress) as bar:
            for prefix in unique:
                if verify:
                    states = [self.store.check(identity, v, prefix) for v in self.variants]
                    bad += states.count("bad")
                    stored = all(s == "ok" for s in states)
                else:
                    stored = all(self.store.contains(identity, v, prefix) for v in self.variants)
                if not stored:
                    built, tokens = built + 1, tokens + self.store_all(prefix)
                bar.update()
        return BuildStats(len(unique), built, time.perf_counter() - began, tokens, bad)
