"""The physical LLM extract operator: one model fills one [output] for every row it sees.

Its score is the answer's log-probability under the model (how sure it is), which a cascade
thresholds: a cheap extractor's value is final above its threshold, the rest go to the gold one.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

import pandas as pd

from stretto.backends.generation import GeneratedRows
from stretto.backends.prompt import PromptParts, row_prompts
from stretto.operators.llm_filter import LLMFilter
from stretto.plan.answers import normalize_answer
from stretto.plan.template import ExtractTemplate, Template
from stretto.profiling.operator import ScoredRows


class Generator(Protocol):
    loaded: object

    @property
    def identity(self) -> str: ...

    def generate(self, prompts: Sequence[PromptParts], *, desc: str = ..., progress: bool = ...) -> GeneratedRows: ...


@dataclass
class LLMExtract:
    template: ExtractTemplate
    backend: Generator

    @property
    def identity(self) -> str:
        return self.backend.identity

    def score(self, rows: pd.DataFrame, *, progress: bool = True) -> ScoredRows:
        prompts = row_prompts(self.template, rows, self.backend.loaded.tokenizer)
        answers = self.backend.generate(prompts, desc=self.template.text[:40], progress=progress)
        values = tuple(normalize_answer(t, self.template.choices, label=self.template.output) for t in answers.texts)
        return ScoredRows(answers.logprobs, answers.seconds, answers.tokens, answers.truncated, values)


def operator_for(template: Template, backend) -> LLMFilter | LLMExtract:
    """The filter or the extract operator of a template on one backend."""
    return LLMExtract(template, backend) if isinstance(template, ExtractTemplate) else LLMFilter(template, backend)
