"""Baseline systems. Abacus-style and gold alone implement the optimizer's interface (`optimize(problem) ->
PhysicalPlan`) and see exactly what Stretto's optimizer sees (the profiled sample's scores, costs and gold
labels). LOTUS and BARGAIN run as their authors run them, over the whole table: the engine scores their proxy on
every row and answers their oracle calls with the gold operator (`table_thresholds`, engine/on_table.py).
Only Stretto bounds a conjunction's result end to end; LOTUS and BARGAIN bound each filter (proxy.py says why
that does not compose), Abacus-style bounds nothing.
"""
