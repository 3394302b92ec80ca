"""Baseline systems, each behind the optimizer interface (`optimize(problem) -> PhysicalPlan`).

They see exactly what Stretto's optimizer sees (the profiled sample's scores, costs and gold labels), so
every system in a comparison runs on the same LLM outputs.
"""
