"""The real offline Qwen2.5-Coder-0.5B on real Rotten Tomatoes reviews (loaded once per session)."""

import logging

import numpy as np
import pandas as pd
import pytest
from bf16_agreement import assert_same_decisions_and_ranks

from stretto.backends.model_loader import load_model
from stretto.backends.prompt import operator_prompt
from stretto.backends.transformers_backend import TransformersBackend
from stretto.data.datasets import load_dataset
from stretto.errors import ContextLengthError, ModelError
from stretto.evaluation.metrics import auc
from stretto.operators.llm_filter import LLMFilter
from stretto.plan.template import Template

pytestmark = pytest.mark.model
POSITIVE = Template("{reviewtext} is clearly positive")


@pytest.fixture(scope="module")
def balanced_reviews():
    """40 distinct reviews, 20 labelled POSITIVE and 20 NEGATIVE by humans, fixed seed."""
    df = load_dataset("movie")["reviews"].df.drop_duplicates("reviewid")
    pos = df[df.scoresentiment == "POSITIVE"].sample(20, random_state=7)
    neg = df[df.scoresentiment == "NEGATIVE"].sample(20, random_state=7)
    return pd.concat([pos, neg])


def test_sentiment_scores_rank_human_labels(qwen05, balanced_reviews):
    scored = LLMFilter(POSITIVE, TransformersBackend(qwen05)).score(balanced_reviews, progress=False)
    truth = (balanced_reviews.scoresentiment == "POSITIVE").to_numpy()
    assert scored.scores.dtype == np.float32 and np.isfinite(scored.scores).all()
    assert auc(scored.scores, truth) >= 0.75
    assert (scored.seconds > 0).all() and (scored.tokens > 20).all()


def test_yes_and_no_spelling_variants_are_all_counted(qwen05):
    backend = TransformersBackend(qwen05)
    assert backend.n_yes >= 2  # "Yes" and " Yes" are different tokens in the Qwen vocabulary
    assert backend.yes_no_rows.shape[0] - backend.n_yes >= 2
    assert backend.yes_no_rows.dtype.is_floating_point and backend.yes_no_rows.dtype.itemsize == 4


def _prompts(model, df):
    return [operator_prompt(POSITIVE, row, model.tokenizer) for row in df.to_dict("records")]


def test_score_does_not_depend_on_batch_company_bf16(qwen05, balanced_reviews):
    """A row scored alone and inside a batch of longer and shorter rows (left padding) takes the same decisions
    and ranks in bf16 (exactness: the fp32 test below). Rows attending to their pad tokens move by more than 1."""
    prompts = _prompts(qwen05, balanced_reviews.head(12))
    alone = TransformersBackend(qwen05, batch_size=1).score(prompts, progress=False).scores
    batched = TransformersBackend(qwen05, batch_size=12).score(prompts, progress=False).scores
    lengths = [len(qwen05.tokenizer.encode(p.prefix + p.suffix)) for p in prompts]
    assert max(lengths) - min(lengths) > 20  # the batch really needed padding
    assert_same_decisions_and_ranks(alone, batched)


def test_score_does_not_depend_on_batch_company_fp32(balanced_reviews):
    model = load_model("qwen-0.5b", dtype="float32")
    prompts = _prompts(model, balanced_reviews.head(6))
    alone = TransformersBackend(model, batch_size=1).score(prompts, progress=False).scores
    batched = TransformersBackend(model, batch_size=6).score(prompts, progress=False).scores
    np.testing.assert_allclose(alone, batched, atol=2e-3)


def test_long_text_is_truncated_with_a_warning_or_refused(qwen05, caplog):
    long_row = {"reviewtext": "The plot drags on. " * 200}
    prompt = operator_prompt(POSITIVE, long_row, qwen05.tokenizer)
    cut = TransformersBackend(qwen05, max_tokens=128)
    with caplog.at_level(logging.WARNING):
        scored = cut.score([prompt], progress=False)
    assert scored.truncated == 1 and scored.tokens[0] == 128 and np.isfinite(scored.scores[0])
    assert "exceeded 128 tokens" in caplog.text
    with pytest.raises(ContextLengthError, match="exceeds the context of 128 tokens"):
        TransformersBackend(qwen05, max_tokens=128, on_long_text="error").score([prompt], progress=False)
    with pytest.raises(ModelError, match="on_long_text"):
        TransformersBackend(qwen05, on_long_text="ignore")
