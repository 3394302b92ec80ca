"""What every scoring backend gives an operator: per-row yes/no log-odds (or extracted values) and their cost."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

import numpy as np

if TYPE_CHECKING:
    from stretto.backends.model_loader import LoadedModel
    from stretto.operators.prompt import PromptParts


@dataclass(frozen=True)
class ScoredRows:
    """Per-row scores and the measured seconds each row cost (its share of its batch)."""

    scores: np.ndarray  # float32, log-odds of yes over no
    seconds: np.ndarray  # float64
    tokens: np.ndarray  # int64, tokens run through the model per row
    truncated: int  # rows whose document was cut to fit the context
    values: tuple[str | None, ...] | None = None  # an extraction's normalised answers (scores: their log-prob)


class YesNoScorer(Protocol):
    """A physical operator's engine: from-scratch prompts or stored KV caches, same contract."""

    loaded: LoadedModel

    @property
    def identity(self) -> str: ...

    def score(self, prompts: Sequence[PromptParts], *, desc: str = ..., progress: bool = ...) -> ScoredRows: ...
