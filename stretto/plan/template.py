"""Question templates: natural language with {column} placeholders, e.g. "{reviewtext} is clearly positive".

A template that also names an output in brackets is an extraction: "the movie [title] mentioned in
{reviewtext}" fills a column `title`; "the [sentiment] (positive/negative) of {reviewtext}" lists the
allowed answers, which makes the output categorical. The text alone determines the template, so profiles,
recordings and plans that store only the text rebuild the same operator (`parse_template`).

A field written {?column} is asked about: its value goes into the question, not into the document a KV cache
stores. "{?name} won the game according to {report}" stores each report once and asks about every team in it.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

from stretto.errors import QueryError

_FIELD = re.compile(r"\{(\??)([A-Za-z_][\w.]*)\}")  # {column}, or {?column}: asked about, in the question
_OUTPUT = re.compile(r"\[([A-Za-z_]\w*)\](?:\s*\(([^)]*)\))?")


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
        both = set(self.asked_columns) & {column for asked, column in _FIELD.findall(self.text) if not asked}
        if both:
            raise QueryError(f"template '{self.text}' writes {sorted(both)} both as {{column}} and as {{?column}}")
        if not self.document_columns:
            raise QueryError(
                f"template '{self.text}' asks about every column it names: write the document as {{column}}, "
                "e.g. '{?name} won the game according to {report}'"
            )

    @property
    def columns(self) -> tuple[str, ...]:
        """Every column the template reads, document and asked, in order of first mention."""
        return tuple(dict.fromkeys(column for _, column in _FIELD.findall(self.text)))

    @property
    def asked_columns(self) -> tuple[str, ...]:
        """The {?column} fields: their values go into the question."""
        return tuple(dict.fromkeys(column for asked, column in _FIELD.findall(self.text) if asked))

    @property
    def document_columns(self) -> tuple[str, ...]:
        """The {column} fields: the document, the part of the prompt a KV cache stores."""
        return tuple(c for c in self.columns if c not in self.asked_columns)

    def claim(self, names: Mapping[str, str] | None = None) -> str:
        """The predicate as a sentence about the context blocks: each {column} becomes names[column] or "the column"."""
        names = names or {}
        return _FIELD.sub(lambda m: names.get(m.group(2), f"the {m.group(2)}"), self.text)

    def check_columns(self, available: list[str] | tuple[str, ...], table: str) -> None:
        missing = [c for c in self.columns if c not in available]
        if missing:
            raise QueryError(
                f"template '{self.text}' refers to column(s) {missing} that table '{table}' does not have; "
                f"available columns: {list(available)}"
            )


@dataclass(frozen=True)
class ExtractTemplate(Template):
    """An extraction: the [output] column it fills and, for categorical outputs, the allowed answers."""

    def __post_init__(self) -> None:
        super().__post_init__()
        found = _OUTPUT.findall(self.text)
        if len(found) != 1:
            raise QueryError(
                f"extract template '{self.text}' must name exactly one output in brackets, "
                f"e.g. 'the movie [title] mentioned in {{reviewtext}}' (found {len(found)})"
            )
        if self.output in self.columns:
            raise QueryError(f"extract template '{self.text}' writes [{self.output}], a column it also reads")

    @property
    def output(self) -> str:
        return _OUTPUT.search(self.text).group(1)

    @property
    def choices(self) -> tuple[str, ...]:
        """Allowed answers, lowercase ('(positive/negative)' or '(yes, no)'); empty for free text."""
        listed = _OUTPUT.search(self.text).group(2)
        if not listed:
            return ()
        return tuple(c.strip().lower() for c in re.split(r"[/,|]", listed) if c.strip())

    def request(self, names: dict[str, str] | None = None) -> str:
        """What to extract, as a phrase: the output in plain words, the columns named as in `claim`."""
        return _OUTPUT.sub(lambda m: m.group(1).replace("_", " "), self.claim(names))


def parse_template(text: str) -> Template:
    """A filter template, or an extraction when the text names an [output]."""
    return ExtractTemplate(text) if _OUTPUT.search(text) else Template(text)
