"""What every scoring backend gives an operator: per-row yes/no log-odds (or extracted values) and their cost."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Protocol

from stretto.profiling.operator import FULL_CACHE, OperatorId, ScoredRows

if TYPE_CHECKING:
    from stretto.backends.model_loader import LoadedModel
    from stretto.backends.prompt import PromptParts


class Scorer(Protocol):
    """A physical operator's engine: from-scratch prompts or stored KV caches, same contract."""

    loaded: LoadedModel

    @property
    def identity(self) -> str: ...

    def score(self, prompts: Sequence[PromptParts], *, desc: str = ..., progress: bool = ...) -> ScoredRows: ...


__all__ = ["FULL_CACHE", "OperatorId", "ScoredRows", "Scorer", "operator_identity"]


def operator_identity(model_identity: str, press: str = "none", ratio: float = 0.0, *, served: bool = False) -> str:
    """Stable identity of a physical operator: model weights x KV variant (press@ratio), +vllm when served."""
    return str(OperatorId(model_identity, press, ratio, served))
