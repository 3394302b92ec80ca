from stretto.backends.prompt import PromptParts, operator_prompt
from stretto.plan.template import Template


class PlainTokenizer:
    chat_template = None


class ChatTokenizer:
    chat_template = "x"

    def apply_chat_template(self, messages, tokenize, add_generation_prompt):
        return f"<user>{messages[0]['content']}</user><assistant>"


def test_single_column_prompt_is_document_first():
    parts = operator_prompt(Template("{review} is positive"), {"review": "Great film."}, PlainTokenizer())
    assert parts == PromptParts(
        "Text:\nGreat film.",
        "\n\nDoes the text satisfy this condition: the text is positive? Answer Yes or No.\nAnswer:",
    )


def test_chat_template_split_keeps_the_document_in_the_prefix():
    template = Template("{left} and {right} describe the same restaurant")
    parts = operator_prompt(template, {"left": "Arnie's, Main St", "right": "Arnies (Main Street)"}, ChatTokenizer())
    assert parts.prefix == "<user>left:\nArnie's, Main St\n\nright:\nArnies (Main Street)"
    assert parts.suffix.startswith("\n\nDoes the left and the right satisfy this condition: the left and the right")
    assert parts.suffix.endswith("Answer Yes or No.</user><assistant>")
