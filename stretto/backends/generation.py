"""Greedy short answers for extraction: continue a prompt already in a KV cache until a newline.

Both transformers paths (prompt from scratch, question on a stored cache) end in the same state: a
cache holding the prompt, the logits of its last position, and each row's next position. From
there the loop is the same: pick the most likely token, stop a row at a newline or end-of-text,
and sum the chosen tokens' log-probabilities (the answer's confidence, which a cascade thresholds).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

MAX_ANSWER_TOKENS = 12  # values are short: a title, a name, one class


@dataclass(frozen=True)
class GeneratedRows:
    """Per row: the raw answer text, its log-probability, what it cost, tokens run through the model."""

    texts: list[str]
    logprobs: np.ndarray  # float32, sum over the answer's tokens (the stop token included)
    seconds: np.ndarray  # float64
    tokens: np.ndarray  # int64
    truncated: int

    @classmethod
    def of(cls, answers: list[tuple[str, float]], seconds: np.ndarray, tokens: np.ndarray, truncated: int):
        """From one (text, log-probability) answer per row."""
        logprobs = np.array([a[1] for a in answers], dtype=np.float32)
        return cls([a[0] for a in answers], logprobs, seconds, tokens, truncated)


def stop_ids(tokenizer) -> set[int]:
    ids = {tokenizer.eos_token_id, tokenizer.pad_token_id}
    for word in ("<|im_end|>", "<|endoftext|>", "<|eot_id|>"):
        token = tokenizer.convert_tokens_to_ids(word)
        if isinstance(token, int) and token != tokenizer.unk_token_id:
            ids.add(token)
    return {i for i in ids if i is not None}


@torch.inference_mode()
def greedy_continue(
    model,
    tokenizer,
    logits: torch.Tensor,
    cache,
    mask: torch.Tensor,
    positions: torch.Tensor,
    max_new_tokens: int = MAX_ANSWER_TOKENS,
) -> tuple[list[str], np.ndarray]:
    """logits: (batch, vocab) at the prompt's last position; mask: (batch, cached length); positions: (batch,)
    the next position of each row. Returns the answer texts (stop token excluded) and their log-probabilities."""
    batch = logits.shape[0]
    stops = stop_ids(tokenizer)
    chosen: list[list[int]] = [[] for _ in range(batch)]
    done = np.zeros(batch, dtype=bool)
    total = np.zeros(batch, dtype=np.float32)
    device = model.device
    for step in range(max_new_tokens):
        logprobs = torch.log_softmax(logits.float(), dim=-1)
        token = logprobs.argmax(-1)
        for i in range(batch):
            if done[i]:
                continue
            t = int(token[i])
            total[i] += float(logprobs[i, t])
            if t in stops or "\n" in tokenizer.decode([t]):
                done[i] = True
            else:
                chosen[i].append(t)
        if done.all() or step == max_new_tokens - 1:
            break
        mask = torch.cat([mask, torch.ones((batch, 1), dtype=mask.dtype)], dim=1)
        width = mask.shape[1]
        logits = model(
            input_ids=token[:, None].to(device),
            attention_mask=mask.to(device),
            position_ids=(positions + step)[:, None].to(device),
            cache_position=torch.tensor([width - 1], device=device),
            past_key_values=cache,
            use_cache=True,
            logits_to_keep=1,
        ).logits[:, -1, :]
    return [tokenizer.decode(ids, skip_special_tokens=True) for ids in chosen], total
