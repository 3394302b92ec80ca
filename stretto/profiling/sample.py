"""Profiling: a seeded uniform sample of the table, answered by every candidate operator and the gold one."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from stretto.errors import OptimizerError
from stretto.plan.template import Template
from stretto.profiling.operator import CandidateOperator
from stretto.profiling.profile import Profile, ProfileStore, profile_of, row_keys
from stretto.progress import phase


def profiling_sample(n_rows: int, fraction: float, seed: int, *, size: int | None = None) -> np.ndarray:
    """Sorted row positions of a uniform sample without replacement: `size` rows when set (it wins over the
    fraction; more rows than the table has is an error), else round(fraction * n_rows), at least one."""
    if n_rows < 1:
        raise OptimizerError("cannot profile an empty table")
    if size is not None:
        check_sample_size(size, n_rows)
        count = int(size)
    else:
        if isinstance(fraction, bool) or not 0.0 < float(fraction) <= 1.0:
            raise OptimizerError(f"sample fraction {fraction!r} is outside (0, 1]")
        count = max(1, round(fraction * n_rows))
    return np.sort(np.random.default_rng(seed).choice(n_rows, size=count, replace=False))


def check_sample_size(size: object, n_rows: int | None = None) -> None:
    """A sample size is a whole number of rows >= 1, and at most the table's rows when they are known."""
    if isinstance(size, bool) or not isinstance(size, (int, np.integer)) or size < 1:
        raise OptimizerError(f"sample size {size!r} is not a whole number of rows >= 1")
    if n_rows is not None and size > n_rows:
        raise OptimizerError(
            f"sample size {size} is larger than the table ({n_rows} rows): lower profiling.size or leave it "
            "null to sample profiling.fraction of the rows"
        )


def profile_rows(
    rows: pd.DataFrame,
    operators: Sequence[CandidateOperator],
    *,
    store: ProfileStore | None = None,
    progress: bool = True,
) -> Profile:
    """Every operator's answers on these rows (from the store when it has them; duplicates scored once)."""
    if rows.empty:
        raise OptimizerError("the profiling sample is empty")
    profiles = []
    for i, op in enumerate(operators, 1):
        with phase(f"profiling {op.identity} ({i}/{len(operators)})"):
            profiles.append(profile_of(rows, op, store, progress=progress))
    return Profile.concat(profiles)


def sample_seconds(
    profile: Profile, rows: pd.DataFrame, templates: Sequence[Template], operators: Sequence[str]
) -> float:
    """What profiling these rows cost: every operator's measured seconds on every row, per template."""
    total = 0.0
    for template in templates:
        keys = list(dict.fromkeys(row_keys(rows, template)))  # duplicate texts were scored once
        for op in operators:  # gold labels may cover only the rows where they matter (engine.query.gold_labels)
            total += float(np.nansum(profile.lookup(keys, template, op, partial=True)["seconds"]))
    return total
