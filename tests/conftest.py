"""Shared fixtures. The real offline model is loaded once per test session (converted once per machine)."""

from __future__ import annotations

import pytest

from stretto.backends.model_loader import LoadedModel, load_model


@pytest.fixture(scope="session")
def qwen05() -> LoadedModel:
    return load_model("qwen-0.5b")
