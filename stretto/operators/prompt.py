"""Prompts laid out document-first: the row's text values, then the question.

The split matters: everything up to the end of the document is the prefix a KV cache can store
once per row; only the short question suffix changes from predicate to predicate.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from transformers import PreTrainedTokenizerBase

from stretto.plan.template import Template

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


def filter_prompt(template: Template, row: Mapping[str, str], tokenizer: PreTrainedTokenizerBase) -> PromptParts:
    """Render the yes/no prompt for one row, with the model's chat template when it has one."""
    document, question = context_block(template, row), yes_no_question(template)
    if getattr(tokenizer, "chat_template", None):
        rendered = tokenizer.apply_chat_template(
            [{"role": "user", "content": document + _SPLIT + question}],
            tokenize=False,
            add_generation_prompt=True,
        )
        prefix, suffix = rendered.split(_SPLIT)
        return PromptParts(prefix, suffix)
    return PromptParts(document, question + "\nAnswer:")
