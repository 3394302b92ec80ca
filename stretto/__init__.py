"""Stretto: semantic queries over tables with end-to-end precision and recall guarantees.

The front door is `stretto.query(...)` (stretto/api.py); `import stretto` also adds `df.stretto.sem_filter(...)`
to pandas DataFrames (stretto/accessor.py). Both load models and torch only when a query runs.
"""

from typing import Any

from stretto import accessor as accessor  # registers the `df.stretto` accessor

__all__ = ["Answer", "Costs", "family_spec", "query"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from stretto import api

        return getattr(api, name)
    raise AttributeError(f"module 'stretto' has no attribute {name!r}")
