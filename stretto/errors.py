"""Every error Stretto raises on bad input: one small class per kind, all catchable as StrettoError."""


class StrettoError(Exception):
    """Base of all errors raised by Stretto on bad input or bad state."""


class DataError(StrettoError, ValueError):
    """A table, column or dataset is missing, empty or malformed."""


class ModelError(StrettoError, ValueError):
    """A model cannot be found, installed, verified or loaded."""


class QueryError(StrettoError, ValueError):
    """A query, template or target is malformed."""


class ContextLengthError(StrettoError, ValueError):
    """A text does not fit into the model's context window."""


class CacheError(StrettoError, ValueError):
    """A KV-cache variant, store entry or budget is invalid; corrupt entries are rebuilt, not trusted."""


class ProfileError(StrettoError, ValueError):
    """A profile or recording is missing rows or operators, is empty, or is corrupt."""


class OptimizerError(StrettoError, ValueError):
    """The optimizer was given an unusable candidate set or sample (no gold operator, empty sample)."""


class UncertifiableTargets(QueryError):
    """No plan, not even the gold operator alone on every row, can be certified at the targets against the labels
    of the sample (labels from another source than the gold operator: the truth)."""
