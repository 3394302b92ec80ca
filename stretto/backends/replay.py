"""The replay backend: a physical operator answered from recorded scores and seconds, with no model.

Same contract as a live operator (template, identity, score(rows) -> ScoredRows), so the optimizer,
the executor and every baseline run unchanged on recordings; rows are matched by content key.
"""

from __future__ import annotations

import pandas as pd

from stretto.plan.template import ExtractTemplate, Template
from stretto.profiling.operator import ScoredRows
from stretto.profiling.profile import Profile, row_keys


class ReplayOperator:
    """A recorded filter or extract operator: its answers are the recording's, looked up by row content."""

    def __init__(self, template: Template, identity: str, recording: Profile) -> None:
        self.template, self._identity, self.recording = template, identity, recording

    @property
    def identity(self) -> str:
        return self._identity

    def score(self, rows: pd.DataFrame, *, progress: bool = True) -> ScoredRows:
        answers = self.recording.lookup(row_keys(rows, self.template), self.template, self._identity)
        return ScoredRows(
            answers["score"].to_numpy("float32"),
            answers["seconds"].to_numpy("float64"),
            answers["tokens"].to_numpy("int64"),
            truncated=0,
            values=tuple(answers["value"]) if isinstance(self.template, ExtractTemplate) else None,
        )
