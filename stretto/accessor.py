"""`df.stretto`: LOTUS-style semantic operators on a pandas DataFrame, answered as one guaranteed query.

    df.stretto.sem_filter("{review} is clearly positive").sem_filter("{review} mentions excellent acting")
      .sem_extract("the movie [title] mentioned in {review}").run(precision=0.9, recall=0.9)

LOTUS runs each operator as it is called and splits the targets per operator; here the chain is collected
and `run` hands the whole conjunction to `stretto.query`, so the targets hold for the end result.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import pandas as pd

if TYPE_CHECKING:
    from stretto.api import Answer


@dataclass(frozen=True)
class SemanticChain:
    """The semantic operators called so far on one DataFrame; nothing runs until `run`."""

    df: pd.DataFrame
    filters: tuple[str, ...] = ()
    extracts: tuple[str, ...] = ()

    def sem_filter(self, template: str) -> SemanticChain:
        return SemanticChain(self.df, (*self.filters, template), self.extracts)

    def sem_extract(self, template: str) -> SemanticChain:
        return SemanticChain(self.df, self.filters, (*self.extracts, template))

    def run(self, **options: Any) -> Answer:
        """`stretto.query(df, filters, extracts, **options)`: precision=, recall=, alpha=, system=, backend=, ..."""
        from stretto.api import query  # models and torch load only when a query runs

        return query(self.df, self.filters, self.extracts, **options)


@pd.api.extensions.register_dataframe_accessor("stretto")
class StrettoAccessor:
    def __init__(self, df: pd.DataFrame) -> None:
        self._df = df

    def sem_filter(self, template: str) -> SemanticChain:
        return SemanticChain(self._df).sem_filter(template)

    def sem_extract(self, template: str) -> SemanticChain:
        return SemanticChain(self._df).sem_extract(template)
