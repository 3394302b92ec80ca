"""The one batching-and-timing loop that every backend's cost figures rest on.

Rows are taken in a sort order (by length, so that a batch wastes little on padding), cut into batches of
at most `batch_size` (a batch also closes where the rows' group changes: rows of one batch must share what
the model runs on, e.g. one question over stored caches), and each batch is timed: its wall seconds are
shared equally among its rows. Outputs come back in input order. The transformers backend, the KV-cached
backend and the vLLM client all time their rows here, so their per-row seconds mean the same thing.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from stretto.backends.prompt import PromptParts
from stretto.errors import ContextLengthError
from stretto.progress import Progress

log = logging.getLogger(__name__)


def timed_batches(
    n: int,
    run: Callable[[list[int]], Sequence[Any]],
    *,
    batch_size: int,
    bar: Progress,
    sort_key: Sequence[Any] | None = None,
    group: Sequence[Hashable] | None = None,
    seconds: np.ndarray | None = None,
) -> tuple[list, np.ndarray]:
    """run(rows) -> one output per row of `rows` (positions 0..n-1), over batches of rows in the stable order
    of `sort_key` (input order without one), at most `batch_size` per batch and one `group` value per batch.

    Each row's seconds grow by its batch's wall time over the batch's rows (`seconds`, when given, holds what
    the rows already cost, e.g. reading their caches). Returns the outputs in input order and the seconds.
    """
    order = list(range(n)) if sort_key is None else sorted(range(n), key=sort_key.__getitem__)
    outputs: list = [None] * n
    seconds = np.zeros(n, dtype=np.float64) if seconds is None else seconds
    start = 0
    while start < n:
        rows = order[start : start + batch_size]
        if group is not None:
            same = next((k for k, i in enumerate(rows) if group[i] != group[rows[0]]), len(rows))
            rows = rows[:same]
        began = time.perf_counter()
        for i, out in zip(rows, run(rows), strict=True):
            outputs[i] = out
        seconds[rows] += (time.perf_counter() - began) / len(rows)
        bar.update(len(rows))
        start += len(rows)
    return outputs, seconds


def encode_prompt(loaded, parts: PromptParts, max_tokens: int, on_long_text: str) -> tuple[list[int], bool]:
    """Token ids of prefix + suffix, each tokenized on its own (so every question shares the document's ids);
    an over-long document is cut at its end (or refused). Every backend sends the model exactly these ids."""
    tok = loaded.tokenizer
    prefix = tok.encode(parts.prefix, add_special_tokens=False)
    suffix = tok.encode(parts.suffix, add_special_tokens=False)
    if len(prefix) + len(suffix) <= max_tokens:
        return prefix + suffix, False
    if on_long_text == "error" or len(suffix) >= max_tokens:
        raise ContextLengthError(
            f"a text of {len(prefix) + len(suffix)} tokens exceeds the context of {max_tokens} tokens "
            f"for model '{loaded.identity}' (set on_long_text=truncate to cut long documents at their end)"
        )
    return prefix[: max_tokens - len(suffix)] + suffix, True


@dataclass(frozen=True)
class EncodedPrompts:
    """The token ids a backend sends the model for each prompt, and how many prompts were cut to fit."""

    ids: list[list[int]]
    truncated: int

    @property
    def tokens(self) -> np.ndarray:
        return np.array([len(x) for x in self.ids], dtype=np.int64)


def encode_all(loaded, prompts: Sequence[PromptParts], max_tokens: int, on_long_text: str) -> EncodedPrompts:
    """`encode_prompt` for every prompt; the number cut at their end is counted and logged once."""
    encoded = [encode_prompt(loaded, p, max_tokens, on_long_text) for p in prompts]
    truncated = sum(cut for _, cut in encoded)
    if truncated:
        log.warning("%d of %d texts exceeded %d tokens and were cut at their end", truncated, len(prompts), max_tokens)
    return EncodedPrompts([e for e, _ in encoded], truncated)
