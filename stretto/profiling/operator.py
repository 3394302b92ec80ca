"""What profiling sees of a physical operator: who it is, what it asks, and what it answered on rows at what cost.

Every backend returns `ScoredRows`; every operator (LLM, replayed, learned) is a `CandidateOperator`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np
import pandas as pd

from stretto.plan.template import Template


@dataclass(frozen=True)
class ScoredRows:
    """Per-row scores and the measured seconds each row cost (its share of its batch)."""

    scores: np.ndarray  # float32, log-odds of yes over no
    seconds: np.ndarray  # float64
    tokens: np.ndarray  # int64, tokens run through the model per row
    truncated: int  # rows whose document was cut to fit the context
    values: tuple[str | None, ...] | None = None  # an extraction's normalised answers (scores: their log-prob)


class CandidateOperator(Protocol):
    """A physical filter operator as profiling sees it: who it is, what it asks, and its scores."""

    template: Template

    @property
    def identity(self) -> str: ...

    def score(self, rows: pd.DataFrame, *, progress: bool = ...) -> ScoredRows: ...
