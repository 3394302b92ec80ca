"""Batched yes/no scoring with a Hugging Face causal LM on CPU or GPU.

score = log p(yes) - log p(no) of the first answer token, summed over the tokenizer's spelling
variants ("Yes"/" Yes", "No"/" No"). We project only the last position's hidden state onto the
handful of yes/no rows of the output embedding, in fp32: this is `logits_to_keep=1` taken one
step further (no 150k-wide vocabulary product at all), and it avoids bf16 logits, which come in
steps of 0.125 and would tie many rows.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from transformers import DynamicCache

from stretto.backends.base import operator_identity
from stretto.backends.batching import encode_all, encode_prompt, timed_batches
from stretto.backends.generation import GeneratedRows, greedy_continue
from stretto.backends.model_loader import LoadedModel
from stretto.backends.prompt import PromptParts
from stretto.errors import ModelError
from stretto.profiling.operator import ScoredRows
from stretto.progress import Progress

YES_VARIANTS = ("Yes", " Yes", "YES", " YES")
NO_VARIANTS = ("No", " No", "NO", " NO")
LONG_TEXT_POLICIES = ("truncate", "error")


def _single_token_ids(tokenizer, words: Sequence[str]) -> list[int]:
    ids = []
    for word in words:
        encoded = tokenizer.encode(word, add_special_tokens=False)
        if len(encoded) == 1 and encoded[0] not in ids:
            ids.append(encoded[0])
    return ids


class TransformersBackend:
    """Scores prompts with one loaded model; rows are length-sorted and left-padded into batches."""

    def __init__(
        self,
        loaded: LoadedModel,
        *,
        batch_size: int = 8,
        max_tokens: int | None = None,
        on_long_text: str = "truncate",
    ) -> None:
        if on_long_text not in LONG_TEXT_POLICIES:
            raise ModelError(f"on_long_text must be one of {LONG_TEXT_POLICIES}, got '{on_long_text}'")
        if batch_size < 1:
            raise ModelError(f"batch_size must be >= 1, got {batch_size}")
        self.loaded = loaded
        self.batch_size = batch_size
        self.max_tokens = min(max_tokens or loaded.max_context, loaded.max_context)
        self.on_long_text = on_long_text
        tokenizer = loaded.tokenizer
        self.pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
        yes, no = _single_token_ids(tokenizer, YES_VARIANTS), _single_token_ids(tokenizer, NO_VARIANTS)
        if not yes or not no:
            raise ModelError(f"model '{loaded.identity}' has no single-token 'Yes'/'No' in its vocabulary")
        self.n_yes = len(yes)
        head = loaded.model.get_output_embeddings().weight
        self.yes_no_rows = head[yes + no].detach().float()  # (n_yes + n_no, hidden)

    @property
    def identity(self) -> str:
        """The physical operator this backend implements: the model over its full, uncompressed context."""
        return operator_identity(self.loaded.identity)

    def encode(self, parts: PromptParts) -> tuple[list[int], bool]:
        return encode_prompt(self.loaded, parts, self.max_tokens, self.on_long_text)

    def _padded(self, batch: Sequence[list[int]]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Left-padded ids, attention mask and positions counted from each row's first real token."""
        width = max(len(ids) for ids in batch)
        input_ids = torch.full((len(batch), width), self.pad_id, dtype=torch.long)
        mask = torch.zeros((len(batch), width), dtype=torch.long)
        for i, ids in enumerate(batch):
            input_ids[i, width - len(ids) :] = torch.tensor(ids)
            mask[i, width - len(ids) :] = 1
        return input_ids, mask, (mask.cumsum(-1) - 1).clamp(min=0)

    @torch.inference_mode()
    def score_batch(self, batch: Sequence[list[int]]) -> np.ndarray:
        """Log-odds for a batch of token id lists (left padding, positions counted from each row's start)."""
        input_ids, mask, positions = self._padded(batch)
        device = self.loaded.model.device
        hidden = self.loaded.model.get_decoder()(
            input_ids=input_ids.to(device),
            attention_mask=mask.to(device),
            position_ids=positions.to(device),
            use_cache=False,
        ).last_hidden_state
        return self.yes_no_log_odds(hidden[:, -1, :])

    @torch.inference_mode()
    def generate_batch(self, batch: Sequence[list[int]]) -> tuple[list[str], np.ndarray]:
        """Greedy short answers for a batch of prompts run from scratch."""
        input_ids, mask, positions = self._padded(batch)
        model, device = self.loaded.model, self.loaded.model.device
        cache = DynamicCache(config=model.config)
        logits = model(
            input_ids=input_ids.to(device),
            attention_mask=mask.to(device),
            position_ids=positions.to(device),
            past_key_values=cache,
            use_cache=True,
            logits_to_keep=1,
        ).logits[:, -1, :]
        return greedy_continue(model, self.loaded.tokenizer, logits, cache, mask, mask.sum(-1))

    def yes_no_log_odds(self, last_hidden: torch.Tensor) -> np.ndarray:
        """fp32 log p(yes) - log p(no) from the last position's hidden state (batch, hidden)."""
        logits = last_hidden.float() @ self.yes_no_rows.to(last_hidden.device).T
        score = torch.logsumexp(logits[:, : self.n_yes], -1) - torch.logsumexp(logits[:, self.n_yes :], -1)
        return score.cpu().numpy().astype(np.float32)

    def _in_batches(self, prompts: Sequence[PromptParts], run, desc: str, progress: bool):
        """run(batch of token ids) -> one output per row, over length-sorted batches (the shared timing loop)."""
        encoded = encode_all(self.loaded, prompts, self.max_tokens, self.on_long_text)
        ids, tokens = encoded.ids, encoded.tokens
        with Progress(len(ids), desc, unit="row", enabled=progress) as bar:
            outputs, seconds = timed_batches(len(ids), lambda rows: run([ids[i] for i in rows]),
                                             batch_size=self.batch_size, bar=bar, sort_key=tokens)  # fmt: skip
        return outputs, seconds, tokens, encoded.truncated

    def score(self, prompts: Sequence[PromptParts], *, desc: str = "scoring", progress: bool = True) -> ScoredRows:
        """Score every prompt; batches are formed from length-sorted rows to waste little on padding."""
        scores, seconds, tokens, truncated = self._in_batches(prompts, self.score_batch, desc, progress)
        return ScoredRows(np.array(scores, dtype=np.float32), seconds, tokens, truncated)

    def generate(self, prompts: Sequence[PromptParts], *, desc: str = "extracting", progress: bool = True):
        """Greedy short answers (extraction), batched like `score`."""

        def run(batch: list[list[int]]) -> list[tuple[str, float]]:
            texts, logprobs = self.generate_batch(batch)
            return list(zip(texts, logprobs.tolist(), strict=True))

        answers, seconds, tokens, truncated = self._in_batches(prompts, run, desc, progress)
        return GeneratedRows.of(answers, seconds, tokens, truncated)
