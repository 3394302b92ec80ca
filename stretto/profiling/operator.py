"""What profiling sees of a physical operator: who it is, what it asks, and what it answered on rows at what cost.

Every backend returns `ScoredRows`; every operator (LLM, replayed, learned) is a `CandidateOperator`, named by
an `OperatorId`.
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


FULL_CACHE = "none@0.00"  # the variant name of an uncompressed cache (kvcache.variant.KVVariant().name)


@dataclass(frozen=True)
class OperatorId:
    """A physical operator's identity: model weights x KV press@ratio, served by vLLM or not, and for the gold
    operator at a moved threshold that threshold. `str()` is the form stored in recordings and profiles,
    `model/press@ratio[+vllm][>threshold]`; `parse` reads it back exactly."""

    model: str  # the model's identity (weights), e.g. qwen2.5-0.5b@1a2b3c or org/name on the hub
    press: str = "none"
    ratio: float = 0.0
    served: bool = False  # answered by a vLLM server (its costs are its own)
    threshold: float | None = None  # the gold operator's moved threshold

    @property
    def variant(self) -> str:
        return f"{self.press}@{self.ratio:.2f}"

    @property
    def full_cache(self) -> bool:
        """The operator runs on the uncompressed cache."""
        return self.variant == FULL_CACHE

    def __str__(self) -> str:
        served = "+vllm" if self.served else ""
        moved = f">{self.threshold:g}" if self.threshold is not None else ""
        return f"{self.model}/{self.variant}{served}{moved}"

    @classmethod
    def parse(cls, identity: str) -> OperatorId:
        rest, moved, threshold = identity.partition(">")
        served = rest.endswith("+vllm")
        model, slash, variant = rest.removesuffix("+vllm").rpartition("/")
        press, at, ratio = variant.rpartition("@")
        try:
            parsed = cls(model, press, float(ratio), served, float(threshold) if moved else None)
        except ValueError:
            parsed = None
        if parsed is None or not (model and slash and press and at) or str(parsed) != identity:
            raise ValueError(f"'{identity}' is not an operator identity (model/press@ratio[+vllm][>threshold])")
        return parsed

    @classmethod
    def maybe(cls, identity: str) -> OperatorId | None:
        """The parsed identity, or None for a name that is not one (a test's or a learned operator's)."""
        try:
            return cls.parse(identity)
        except ValueError:
            return None


class CandidateOperator(Protocol):
    """A physical filter operator as profiling sees it: who it is, what it asks, and its scores."""

    template: Template

    @property
    def identity(self) -> str: ...

    def score(self, rows: pd.DataFrame, *, progress: bool = ...) -> ScoredRows: ...
