"""Prompts laid out document-first: the row's text values, then the question.

The split matters: everything up to the end of the document is the prefix a KV cache can store
once per row; only the short question suffix changes from predicate to predicate.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import pandas as pd
from transformers import PreTrainedTokenizerBase

from stretto.plan.template import ExtractTemplate, Template

_SPLIT = "\u2063STRETTO-SPLIT\u2063"  # invisible separator that never occurs in data


@dataclass(frozen=True)
class PromptParts:
    prefix: str  # chat header + the row's text values (cacheable per row)
    suffix: str  # the question + the assistant turn opening (changes per predicate)


def context_block(template: Template, row: Mapping[str, str]) -> str:
    """The row's document: a single column is "the text"; several columns are each labelled by name. A
    {?column} the template asks about is not part of it (its value goes into the question)."""
    documents = template.document_columns
    if len(documents) == 1:
        return f"Text:\n{row[documents[0]]}"
    return "\n\n".join(f"{column}:\n{row[column]}" for column in documents)


def _wording(template: Template, row: Mapping[str, str]) -> tuple[dict[str, str], str]:
    """How the question names each column (a single document is "the text", an asked column is its value)
    and what it asks about (the document)."""
    documents = template.document_columns
    asked = {column: str(row[column]) for column in template.asked_columns}
    if len(documents) == 1:
        return {documents[0]: "the text"} | asked, "the text"
    return asked, "the " + " and the ".join(documents)


def yes_no_question(template: Template, row: Mapping[str, str]) -> str:
    """Ranks as well as a 'Claim: ... Is the claim true?' form (sentiment AUC .843 vs .844 on the 1,000 movie
    reviews) but its log-odds are less one-sided (4% vs 1% of rows above 0 for 'mentions excellent acting')."""
    names, subject = _wording(template, row)
    return f"\n\nDoes {subject} satisfy this condition: {template.claim(names)}? Answer Yes or No."


def extract_question(template: ExtractTemplate, row: Mapping[str, str]) -> str:
    """Asks for the bare value on one line, so generation can stop at the newline."""
    names, subject = _wording(template, row)
    allowed = f" ({' / '.join(template.choices)})" if template.choices else ""
    return (
        f"\n\nFrom {subject}, extract {template.request(names)}{allowed}. "
        "Reply with the value only, on one line, or 'none' if it is not there."
    )


def row_prompts(template: Template, rows: pd.DataFrame, tokenizer: PreTrainedTokenizerBase) -> list[PromptParts]:
    """One prompt per row, in row order."""
    return [operator_prompt(template, row, tokenizer) for row in rows.to_dict("records")]


def operator_prompt(template: Template, row: Mapping[str, str], tokenizer: PreTrainedTokenizerBase) -> PromptParts:
    """Render the prompt for one row (yes/no, or an extraction), with the model's chat template when it has one.

    The document part is the same for every template over the same document columns: one stored cache serves
    them all, and every row with the same document (a report asked about each of its teams with {?name}).
    """
    if isinstance(template, ExtractTemplate):
        question = extract_question(template, row)
    else:
        question = yes_no_question(template, row)
    document = context_block(template, row)
    if getattr(tokenizer, "chat_template", None):
        rendered = tokenizer.apply_chat_template(
            [{"role": "user", "content": document + _SPLIT + question}],
            tokenize=False,
            add_generation_prompt=True,
        )
        prefix, suffix = rendered.split(_SPLIT)
        return PromptParts(prefix, suffix)
    return PromptParts(document, question + "\nAnswer:")
