"""Normalised extraction answers: what a generated string means as a value, and when two values agree.

Small models pad answers ("Title: The Matrix.", "'positive'", "None of the above"); the gold
extractor's value is the label, so both sides go through the same normalisation before they are
compared. None stands for "no value" (the model said none / null / n/a, or nothing at all).
"""

from __future__ import annotations

import numbers
import re
from collections.abc import Sequence

import pandas as pd

NO_VALUE = frozenset({"", "none", "null", "n/a", "na", "nil", "unknown", "not mentioned", "no value", "-"})
_NUMERAL = re.compile(r"[+-]?\d+(\.\d+)?")
_QUOTES = "\"'`\u201c\u201d\u2018\u2019*"


def normalize_answer(raw: str | None, choices: Sequence[str] = (), *, label: str | None = None) -> str | None:
    """First line, without quotes, trailing punctuation or a leading 'label:'; None for 'none'/'null'/empty.

    With `choices` (categorical output) the answer is lowercased and mapped to the one choice it starts
    with or contains as a word; an answer matching no choice (or several) is kept lowercased, so it counts
    as wrong against the gold value instead of being forced into a class.
    """
    if raw is None:
        return None
    text = raw.strip().split("\n", 1)[0].strip()
    if label:
        text = re.sub(rf"^{re.escape(label.replace('_', ' '))}\s*:\s*", "", text, flags=re.IGNORECASE)
    text = re.sub(r"\s+", " ", text.strip(_QUOTES + " ")).rstrip(".!;:,").strip(_QUOTES + " ")
    if text.lower() in NO_VALUE:
        return None
    if not choices:
        return text
    lowered = text.lower()
    if lowered in choices:
        return lowered
    starts = [c for c in choices if lowered.startswith(c)]
    if len(starts) == 1:
        return starts[0]
    words = [c for c in choices if re.search(rf"\b{re.escape(c)}\b", lowered)]
    return words[0] if len(words) == 1 else lowered


def as_number(value: object) -> float | None:
    """The value as a number when it is one or is written in digits ("12", "12.0", "-3.5"), else None."""
    if isinstance(value, numbers.Real) and not isinstance(value, bool):
        return float(value)
    if isinstance(value, str) and _NUMERAL.fullmatch(value.strip()):
        return float(value)
    return None


def _missing(value: object) -> bool:
    return value is None or (pd.api.types.is_scalar(value) and pd.isna(value))


def same_answer(a: str | float | None, b: str | float | None) -> bool:
    """Values agree when both are missing, both are numbers of equal value ("12" == "12.0" == 12; a truth
    column of counts holds numbers), or they are equal as text ignoring case and spacing."""
    if _missing(a) or _missing(b):
        return _missing(a) and _missing(b)
    number_a, number_b = as_number(a), as_number(b)
    if number_a is not None and number_b is not None:
        return number_a == number_b
    return " ".join(str(a).casefold().split()) == " ".join(str(b).casefold().split())
