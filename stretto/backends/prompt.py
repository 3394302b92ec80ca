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
    """The row's values: a single column is "the text"; several columns are each labelled by name."""
    if len(template.columns) == 1:
        return f"Text:\n{row[template.columns[0]]}"
    return "\n\n".join(f"{column}:\n{row[column]}" for column in template.columns)


def yes_no_question(template: Template) -> str:
    """Ranks as well as a 'Claim: ... Is the claim true?' form (sentiment AUC .843 vs .844 on the 1,000 movie
    reviews) but its log-odds are less one-sided (4% vs 1% of rows above 0 for 'mentions excellent acting')."""
    if len(template.columns) == 1:
        condition, subject = template.claim({template.columns[0]: "the text"}), "the text"
    else:
        condition, subject = template.claim(), "the " + " and the ".join(template.columns)
    return f"\n\nDoes {subject} satisfy this condition: {condition}? Answer Yes or No."


def extract_question(template: ExtractTemplate) -> str:
    """Asks for the bare value on one line, so generation can stop at the newline."""
    if len(template.columns) == 1:
        request, subject = template.request({template.columns[0]: "the text"}), "the text"
    else:
        request, subject = template.request(), "the " + " and the ".join(template.columns)
    allowed = f" ({' / '.join(template.choices)})" if template.choices else ""
    return (
        f"\n\nFrom {subject}, extract {request}{allowed}. "
        "Reply with the value only, on one line, or 'none' if it is not there."
    )


def row_prompts(template: Template, rows: pd.DataFrame, tokenizer: PreTrainedTokenizerBase) -> list[PromptParts]:
    """One prompt per row, in row order."""
    return [operator_prompt(template, row, tokenizer) for row in rows.to_dict("records")]


def operator_prompt(template: Template, row: Mapping[str, str], tokenizer: PreTrainedTokenizerBase) -> PromptParts:
    """Render the prompt for one row (yes/no, or an extraction), with the model's chat template when it has one.

    The document part is the same for every template over the same columns: one stored cache serves both.
    """
    question = extract_question(template) if isinstance(template, ExtractTemplate) else yes_no_question(template)
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
