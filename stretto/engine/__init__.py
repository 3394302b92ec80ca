"""The engine: one query (sample -> profile -> optimize -> execute) and a multi-table pipeline of them.

A plain library (no Hydra, no MLflow): `query.py` runs one semantic query over one table, `pipeline.py` runs
relational steps, blocking and semantic joins around it.
"""

from stretto.engine.pipeline import PipelineRun, run_pipeline
from stretto.engine.query import (
    EmbeddingSource,
    Optimizer,
    one_operator_plan,
    plan_problem,
    profile_query,
    run_query,
)
from stretto.engine.record import Costs, QueryRun

__all__ = [
    "Costs",
    "EmbeddingSource",
    "Optimizer",
    "PipelineRun",
    "QueryRun",
    "one_operator_plan",
    "plan_problem",
    "profile_query",
    "run_pipeline",
    "run_query",
]
