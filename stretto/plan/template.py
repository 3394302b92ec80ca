"""Question templates: natural language with {column} placeholders, e.g. "{reviewtext} is clearly positive"."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

from stretto.errors import QueryError

_FIELD = re.compile(r"\{([A-Za-z_][\w.]*)\}")


@dataclass(frozen=True)
class Template:
    """A predicate over the text columns it names; the columns are derived from the text."""

    text: str

    def __post_init__(self) -> None:
        if not self.columns:
            raise QueryError(
                f"template '{self.text}' names no column: write the text column in braces, "
                "e.g. '{reviewtext} is clearly positive'"
            )
        leftover = _FIELD.sub("", self.text)
        if "{" in leftover or "}" in leftover:
            raise QueryError(f"template '{self.text}' has an unbalanced or malformed '{{...}}' placeholder")

    @property
    def columns(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(_FIELD.findall(self.text)))

    def claim(self, names: Mapping[str, str] | None = None) -> str:
        """The predicate as a sentence about the context blocks: each {column} becomes names[column] or "the column"."""
        names = names or {}
        return _FIELD.sub(lambda m: names.get(m.group(1), f"the {m.group(1)}"), self.text)

    def check_columns(self, available: list[str] | tuple[str, ...], table: str) -> None:
        missing = [c for c in self.columns if c not in available]
        if missing:
            raise QueryError(
                f"template '{self.text}' refers to column(s) {missing} that table '{table}' does not have; "
                f"available columns: {list(available)}"
            )
