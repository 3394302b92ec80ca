"""What every job of the harness returns: one typed result for `stretto run` (with or without an optimizer),
`compare`'s cells and `pipeline`, and for a sweep's cell that was not run again."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from stretto.engine.pipeline import BlockingReport
from stretto.execution.cascade_executor import PlanExecution
from stretto.optimizer.physical_plan import PhysicalPlan
from stretto.plan.query import Query
from stretto.plan.targets import Targets


@dataclass(frozen=True)
class Skipped:
    """A sweep's cell that was not run: it finished before, or another live process is running it."""

    run_id: str  # its MLflow run
    status: str  # "finished" or "running"
    cell: str  # the cell key
    sweep: str

    def line(self) -> str:
        """What a sweep prints for it."""
        if self.status == "running":
            doing = "is being run by another process"
            return f"cell {self.cell} of sweep '{self.sweep}' {doing} (MLflow run {self.run_id}): skipped"
        return f"cell {self.cell} of sweep '{self.sweep}' finished before (MLflow run {self.run_id}): skipped"


@dataclass(frozen=True)
class JobResult:
    """One job's figures (the metrics MLflow records and metrics.json holds), where its result table landed,
    and what produced it. A skipped cell has its recorded metrics (none while another process runs it) and
    `skipped`; the other fields are then empty."""

    metrics: dict[str, float]
    result_csv: Path | None = None
    mlflow_run_id: str | None = None  # None: not tracked, or MLflow failed (the CLI says why)
    plan: PhysicalPlan | None = None
    execution: PlanExecution | None = None  # per-step statistics; `kept`: which rows of the table are in the result
    query: Query | None = None
    targets: Targets | None = None
    operator: str | None = None  # the single-operator job's operator (optimizer=none)
    blocking: BlockingReport | None = None  # a pipeline's semantic-join blocking
    skipped: Skipped | None = None

    @property
    def kept(self) -> np.ndarray | None:
        return None if self.execution is None else self.execution.kept
