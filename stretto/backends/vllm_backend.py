"""Yes/no scoring (and short generation) on a vLLM OpenAI-compatible server, with automatic prefix caching.

vLLM runs as a server (`vllm serve <model> --enable-prefix-caching`), in its own virtualenv or on another
machine: its pins (transformers >= 5.16) cannot share ours (kvpress: < 5.3), and a server is how vLLM is
used across processes, GPUs and clusters anyway. We render the same document-first prompt as the
transformers backend, so every question about a document shares its cached prefix blocks on the server,
and send it to /v1/completions with max_tokens=1 and the top logprobs of the first generated token:
score = logsumexp(Yes spellings) - logsumexp(No spellings), as in the transformers backend. A spelling
outside the top-k counts as no more likely than the least likely token returned.

Costs are measured here, on the client, as wall seconds of each batch of concurrent requests shared out
per row; the first call of a backend sends one warm-up request that is not counted. Server start-up is
not a per-row cost: `stretto.backends.vllm_server` reports it separately.
"""

from __future__ import annotations

import json
import math
import urllib.error
import urllib.request
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from stretto.backends.base import operator_identity
from stretto.backends.batching import encode_all, timed_batches
from stretto.backends.generation import MAX_ANSWER_TOKENS, GeneratedRows
from stretto.backends.model_loader import ModelSource, model_location, resolve
from stretto.backends.prompt import PromptParts
from stretto.backends.transformers_backend import NO_VARIANTS, YES_VARIANTS
from stretto.errors import ModelError
from stretto.profiling.operator import ScoredRows
from stretto.progress import Progress

TOP_LOGPROBS = 20  # vLLM's default cap on logprobs per position


@dataclass
class ServedModel:
    """What a client needs of a model that a server runs: its tokenizer (to render prompts) and its identity."""

    source: ModelSource
    tokenizer: Any
    max_context: int

    @property
    def identity(self) -> str:
        return self.source.identity


def served_model(name_or_path: str, cache_dir: Path | None = None) -> ServedModel:
    """The tokenizer of a model reference (an offline GGUF is converted once, like for loading it)."""
    from transformers import AutoConfig, AutoTokenizer

    source = resolve(name_or_path)
    location = model_location(source, cache_dir)
    try:
        config = AutoConfig.from_pretrained(location)
        return ServedModel(source, AutoTokenizer.from_pretrained(location), int(config.max_position_embeddings))
    except OSError as err:
        raise ModelError(f"cannot load the tokenizer of '{name_or_path}' ({source.kind}): {err}") from err


def served_weights_dir(name_or_path: str, cache_dir: Path | None = None) -> str:
    """What to pass to `vllm serve` for a model reference: a directory of safetensors or a hub id."""
    return model_location(resolve(name_or_path), cache_dir)


class VLLMClient:
    """A thin JSON client of one OpenAI-compatible server; errors name the server and what went wrong."""

    def __init__(self, url: str, *, timeout: float = 600.0) -> None:
        self.url = url.rstrip("/")
        self.base = self.url.removesuffix("/v1")
        self.timeout = timeout

    def _request(self, path: str, body: dict[str, Any] | None = None) -> Any:
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(
            f"{self.url}{path}",
            data=data,
            headers={"Content-Type": "application/json"},
            method="POST" if data else "GET",
        )
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                return json.loads(response.read())
        except urllib.error.HTTPError as err:
            detail = err.read().decode(errors="replace")[:300]
            raise ModelError(f"vLLM server {self.url} answered {err.code} to {path}: {detail}") from None
        except (urllib.error.URLError, ConnectionError, TimeoutError) as err:
            reason = getattr(err, "reason", err)
            if isinstance(reason, TimeoutError):
                raise ModelError(
                    f"vLLM server {self.url} did not answer {path} within {self.timeout:g} s: raise backend.timeout "
                    "(long documents prefill slowly on a CPU server) or send fewer at once (backend.concurrency)"
                ) from None
            raise ModelError(
                f"no vLLM server reachable at {self.url} ({reason}): start one with `make vllm-server` "
                "or point backend.url at a running `vllm serve`"
            ) from None

    def healthy(self) -> bool:
        try:
            with urllib.request.urlopen(f"{self.base}/health", timeout=5) as response:
                return response.status == 200
        except (urllib.error.URLError, ConnectionError, TimeoutError, OSError):
            return False

    def models(self) -> list[str]:
        return [m["id"] for m in self._request("/models")["data"]]

    def check_serves(self, model: str) -> None:
        served = self.models()
        if model not in served:
            raise ModelError(f"vLLM server {self.url} serves {served}, not '{model}' (vllm serve --served-model-name)")

    def complete(self, model: str, prompt: str | list[int], **params: Any) -> dict[str, Any]:
        body = {"model": model, "prompt": prompt, "temperature": 0.0, "add_special_tokens": False, **params}
        return self._request("/completions", body)


def yes_no_log_odds(top: dict[str, float]) -> float:
    """log p(yes) - log p(no) from the top logprobs of one position (missing spellings: at most the floor)."""
    floor = min(top.values())

    def mass(words: Sequence[str]) -> float:
        present = [top[w] for w in words if w in top]
        if not present:
            return floor
        peak = max(present)
        return peak + math.log(sum(math.exp(p - peak) for p in present))

    return mass(YES_VARIANTS) - mass(NO_VARIANTS)


class VLLMBackend:
    """The Scorer contract over a vLLM server: batches of concurrent requests, seconds shared per row."""

    def __init__(
        self,
        served: ServedModel,
        url: str,
        *,
        served_name: str,
        concurrency: int = 8,
        timeout: float = 600.0,
        max_tokens: int | None = None,
        on_long_text: str = "truncate",
    ) -> None:
        self.loaded = served  # LLMFilter renders prompts with loaded.tokenizer
        self.client = VLLMClient(url, timeout=timeout)
        self.served_name = served_name
        self.concurrency = concurrency
        self.max_tokens = min(max_tokens or served.max_context, served.max_context)
        self.on_long_text = on_long_text
        self._warm = False

    @property
    def identity(self) -> str:
        """The uncompressed operator of this model, served by vLLM (its costs are not transformers' costs)."""
        return operator_identity(self.loaded.identity, served=True)

    def warm_up(self) -> None:
        """Check the server serves this model and send one uncounted request (compilation, first allocation)."""
        if not self._warm:
            self.client.check_serves(self.served_name)
            self.client.complete(self.served_name, "Hello", max_tokens=1)
            self._warm = True

    def _score_one(self, ids: list[int]) -> float:
        answer = self.client.complete(self.served_name, ids, max_tokens=1, logprobs=TOP_LOGPROBS)
        return yes_no_log_odds(answer["choices"][0]["logprobs"]["top_logprobs"][0])

    def _concurrent(self, prompts: Sequence[PromptParts], one, desc: str, progress: bool):
        """one(ids) for every prompt, `concurrency` requests in flight; per-row seconds = batch wall time shared.

        Sends token ids built exactly as the transformers backend builds them (document first, each part
        tokenized on its own; tokenizing the joined text can merge across the boundary and moved scores by up
        to 0.15 in our check), so both backends see the same sequence.
        """
        self.warm_up()
        encoded = encode_all(self.loaded, prompts, self.max_tokens, self.on_long_text)
        ids = encoded.ids
        with ThreadPoolExecutor(self.concurrency) as pool, Progress(len(ids), desc, enabled=progress) as bar:
            outputs, seconds = timed_batches(len(ids), lambda rows: list(pool.map(one, [ids[i] for i in rows])),
                                             batch_size=self.concurrency * 4, bar=bar)  # fmt: skip
        return outputs, seconds, encoded.tokens, encoded.truncated

    def score(self, prompts: Sequence[PromptParts], *, desc: str = "vllm", progress: bool = True) -> ScoredRows:
        scores, seconds, tokens, truncated = self._concurrent(prompts, self._score_one, desc, progress)
        return ScoredRows(np.array(scores, dtype=np.float32), seconds, tokens, truncated=truncated)

    def _generate_one(self, ids: list[int]) -> tuple[str, float]:
        answer = self.client.complete(self.served_name, ids, max_tokens=MAX_ANSWER_TOKENS, stop=["\n"], logprobs=1)[
            "choices"
        ][0]
        chosen = (answer.get("logprobs") or {}).get("token_logprobs") or []
        return answer["text"], float(sum(p for p in chosen if p is not None))

    def generate(self, prompts: Sequence[PromptParts], *, desc: str = "vllm", progress: bool = True) -> GeneratedRows:
        """Greedy short answers (extraction), stopped at the newline; confidence = the answer's log-probability."""
        return GeneratedRows.of(*self._concurrent(prompts, self._generate_one, desc, progress))
