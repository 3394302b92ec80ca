"""The physical LLM filter operator: one model answers one template yes/no for every row it sees."""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from stretto.backends.base import Scorer
from stretto.backends.prompt import row_prompts
from stretto.plan.template import Template
from stretto.profiling.operator import ScoredRows


@dataclass
class LLMFilter:
    """Decision = score > threshold, where score is the log-odds of "Yes" over "No"."""

    template: Template
    backend: Scorer
    threshold: float = 0.0

    @property
    def identity(self) -> str:
        """Stable name of the physical operator: model weights x KV press x compression ratio."""
        return self.backend.identity

    def score(self, rows: pd.DataFrame, *, progress: bool = True) -> ScoredRows:
        prompts = row_prompts(self.template, rows, self.backend.loaded.tokenizer)
        return self.backend.score(prompts, desc=self.template.text[:40], progress=progress)
