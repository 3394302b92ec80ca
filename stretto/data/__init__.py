"""The data layer: validated tables and the named benchmark datasets."""

from stretto.data.datasets import DATASETS, available_datasets, load_dataset
from stretto.data.table import Table

__all__ = ["DATASETS", "Table", "available_datasets", "load_dataset"]
