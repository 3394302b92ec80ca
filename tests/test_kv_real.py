"""Stored KV caches with the real offline Qwen 0.5B: equivalence, batching, sharing, resuming, repair."""

import logging

import numpy as np
import pytest
import torch
from bf16_agreement import assert_same_decisions_and_ranks

from stretto.backends.model_loader import LoadedModel, load_model
from stretto.backends.prompt import operator_prompt
from stretto.backends.transformers_backend import TransformersBackend
from stretto.data.datasets import load_dataset
from stretto.errors import CacheError
from stretto.kvcache.backend import KVCachedBackend
from stretto.kvcache.build import KVBuilder
from stretto.kvcache.store import KVStore
from stretto.kvcache.variant import KVVariant, make_press
from stretto.plan.template import Template

pytestmark = pytest.mark.model
POSITIVE = Template("{reviewtext} is clearly positive")
FULL, KNORM, TOVA = KVVariant(), KVVariant("knorm", 0.5), KVVariant("tova", 0.75)


@pytest.fixture(scope="module")
def reviews():
    return load_dataset("movie")["reviews"].df.drop_duplicates("reviewid").head(8)


def prompts(model: LoadedModel, df):
    return [operator_prompt(POSITIVE, row, model.tokenizer) for row in df.to_dict("records")]


def cached(model, store, variant, batch_size=8, variants=(FULL, KNORM, TOVA)):
    base = TransformersBackend(model, batch_size=batch_size)
    return KVCachedBackend(base, KVBuilder(model, list(variants), store), variant)


def test_full_cache_decides_and_ranks_as_from_scratch_bf16(qwen05, reviews, tmp_path):
    """In bf16 the stored cache takes the decisions and ranks of a from-scratch prompt (exactness: the fp32 test)."""
    p = prompts(qwen05, reviews)
    scratch = TransformersBackend(qwen05, batch_size=1).score(p, progress=False).scores
    stored = cached(qwen05, KVStore(tmp_path), FULL, batch_size=1, variants=[FULL]).score(p, progress=False).scores
    assert_same_decisions_and_ranks(scratch, stored)


def test_full_cache_equals_from_scratch_fp32_and_batching_is_exact(reviews, tmp_path):
    model = load_model("qwen-0.5b", dtype="float32")
    p = prompts(model, reviews.head(5))
    scratch = TransformersBackend(model, batch_size=1).score(p, progress=False).scores
    store = KVStore(tmp_path)
    one = cached(model, store, FULL, batch_size=1, variants=[FULL]).score(p, progress=False).scores
    batched = cached(model, store, FULL, batch_size=5, variants=[FULL]).score(p, progress=False).scores
    np.testing.assert_allclose(one, scratch, atol=1e-4)
    np.testing.assert_allclose(batched, one, atol=1e-3)  # caches of different lengths, left-padded and masked


def test_scoring_never_mutates_the_stored_cache(qwen05, reviews, tmp_path):
    store = KVStore(tmp_path)
    backend = cached(qwen05, store, KNORM, batch_size=1)
    p = prompts(qwen05, reviews.head(2))
    entry = backend.entry(p[0].prefix)
    before = [t.clone() for t in entry.keys + entry.values]
    first = backend.score(p, progress=False).scores
    assert all(torch.equal(a, b) for a, b in zip(before, entry.keys + entry.values, strict=True))
    assert entry.n_kept < entry.n_tokens  # compressed
    np.testing.assert_array_equal(first, backend.score(p, progress=False).scores)


def test_one_prefill_feeds_every_press_bit_identically(qwen05, reviews, tmp_path):
    """Shared-prefill caches equal what kvpress's own hooks store when each press runs alone."""
    from transformers import DynamicCache

    builder = KVBuilder(qwen05, [FULL, KNORM, TOVA], KVStore(tmp_path), min_kept_tokens=1)
    ids = builder.prefix_ids(prompts(qwen05, reviews.head(1))[0].prefix)
    shared = builder.prefill(ids)
    for variant in (KNORM, TOVA):
        press, cache = make_press(variant), DynamicCache(config=qwen05.model.config)
        with torch.inference_mode(), press(qwen05.model):
            qwen05.model(input_ids=torch.tensor([ids]), past_key_values=cache, use_cache=True)
        alone = [layer.keys[0] for layer in cache.layers]
        assert all(torch.equal(a, b) for a, b in zip(shared[variant].keys, alone, strict=True))
        assert shared[variant].n_kept == int(len(ids) * (1 - variant.ratio))


def test_short_texts_keep_a_minimum_of_tokens(qwen05, tmp_path):
    builder = KVBuilder(qwen05, [KVVariant("knorm", 0.9)], KVStore(tmp_path), min_kept_tokens=16)
    entry = builder.prefill(builder.prefix_ids("Text:\nGreat."))[KVVariant("knorm", 0.9)]
    assert entry.n_kept == 16 or entry.n_kept == entry.n_tokens


def test_build_resumes_and_corrupt_entries_are_rebuilt(qwen05, reviews, tmp_path, caplog):
    store = KVStore(tmp_path)
    p = prompts(qwen05, reviews)
    builder = KVBuilder(qwen05, [FULL, KNORM], store)
    assert builder.build([x.prefix for x in p[:3]], progress=False).built == 3
    stats = builder.build([x.prefix for x in p], progress=False)  # as after an interruption at row 3
    assert (stats.documents, stats.built) == (8, 5)
    backend = KVCachedBackend(TransformersBackend(qwen05), builder, KNORM)
    before = backend.score(p[:1], progress=False).scores
    path = store.path(qwen05.identity, KNORM, p[0].prefix)
    path.write_bytes(path.read_bytes()[:100])  # truncated on disk
    with caplog.at_level(logging.WARNING):
        after = backend.score(p[:1], progress=False).scores
    assert "discarding KV cache entry" in caplog.text and path.is_file()
    np.testing.assert_array_equal(before, after)


def test_press_that_cannot_hook_the_architecture_is_refused(tmp_path):
    from transformers import GPT2Config, GPT2LMHeadModel

    from stretto.backends.model_loader import ModelSource

    tiny = GPT2LMHeadModel(GPT2Config(n_layer=1, n_embd=16, n_head=2, vocab_size=50, n_positions=64))
    loaded = LoadedModel(ModelSource("hf_dir", "tiny-gpt2", "/nowhere", "tiny-gpt2@0"), tiny, None)
    with pytest.raises(CacheError, match="cannot hook model 'tiny-gpt2@0'"):
        KVBuilder(loaded, [KNORM], KVStore(tmp_path))
    KVBuilder(loaded, [FULL], KVStore(tmp_path))  # uncompressed caches need no hook


def test_extraction_on_the_stored_cache_generates_what_from_scratch_generates(reviews, tmp_path):
    """Greedy answers continue the document's cache exactly as a from-scratch prompt would (fp32), in batches of
    caches of different lengths too; the operator normalises them into the template's choices."""
    from stretto.operators.llm_extract import LLMExtract
    from stretto.plan.template import ExtractTemplate

    model = load_model("qwen-0.5b", dtype="float32")
    template = ExtractTemplate("the [sentiment] (positive/negative) of {reviewtext}")
    p = [operator_prompt(template, row, model.tokenizer) for row in reviews.head(5).to_dict("records")]
    scratch = TransformersBackend(model, batch_size=1).generate(p, progress=False)
    store = KVStore(tmp_path)
    batched = cached(model, store, FULL, batch_size=5, variants=[FULL]).generate(p, progress=False)
    assert batched.texts == scratch.texts
    np.testing.assert_allclose(batched.logprobs, scratch.logprobs, atol=1e-3)
    assert (scratch.logprobs < 0).all() and (batched.seconds > 0).all()
    values = LLMExtract(template, cached(model, store, FULL, variants=[FULL])).score(reviews.head(5), progress=False)
    assert set(values.values) <= {"positive", "negative"}
    np.testing.assert_allclose(values.scores, batched.logprobs, atol=1e-3)


def test_rows_without_a_stored_cache_are_read_from_scratch_not_built(qwen05, reviews, tmp_path):
    """scratch_when_missing (how a query reads an uncompressed operator): stored rows from their caches, the
    rest from scratch, in the prompts' order, and nothing is built."""
    p = prompts(qwen05, reviews.head(6))
    store = KVStore(tmp_path)
    builder = KVBuilder(qwen05, [FULL], store)
    builder.build([x.prefix for x in p[::2]], progress=False)  # rows 0, 2, 4 stored
    base = TransformersBackend(qwen05, batch_size=8)
    mixed = KVCachedBackend(base, builder, FULL, scratch_when_missing=True).score(p, progress=False)
    on_cache = KVCachedBackend(base, builder, FULL).score(p[::2], progress=False)
    scratch = base.score(p[1::2], progress=False)
    np.testing.assert_array_equal(mixed.scores[::2], on_cache.scores)
    np.testing.assert_array_equal(mixed.scores[1::2], scratch.scores)
    np.testing.assert_array_equal(mixed.tokens[1::2], scratch.tokens)  # the whole prompt ran, not the question
    answers = KVCachedBackend(base, builder, FULL, scratch_when_missing=True).generate(p, progress=False)
    assert answers.texts[::2] == KVCachedBackend(base, builder, FULL).generate(p[::2], progress=False).texts
    assert answers.texts[1::2] == base.generate(p[1::2], progress=False).texts  # extractions merge the same way
    assert [store.contains(qwen05.identity, FULL, x.prefix) for x in p] == [True, False] * 3
    with pytest.raises(ValueError, match="compressed"):
        KVCachedBackend(base, KVBuilder(qwen05, [KNORM], store), KNORM, scratch_when_missing=True)


def test_an_asked_column_shares_its_documents_cache_and_stays_exact_fp32(tmp_path):
    """{?name}: both teams of a rotowire game are asked on the game report's one stored cache, and each answer
    equals its from-scratch prompt's in fp32 (the asked name is in the question, after the stored prefix)."""
    from stretto.plan.workload import Workload

    workload = Workload.of({"dataset": "rotowire", "table": "teams", "filters": [{"template": "{?name} won the game"
                            " according to {report}"}], "joins": [{"table": "teams_to_games", "on": "name"},
                           {"table": "reports", "on": "game_id"}]})  # fmt: skip
    pairs = workload.relation(load_dataset("rotowire")).df
    game = pairs[pairs.game_id == pairs.game_id.iloc[0]].head(2)
    assert len(game) == 2 and game.name.nunique() == 2  # two teams, one report
    model = load_model("qwen-0.5b", dtype="float32")
    template = workload.filters[0].template
    p = [operator_prompt(template, row, model.tokenizer) for row in game.to_dict("records")]
    assert p[0].prefix == p[1].prefix and p[0].suffix != p[1].suffix
    store = KVStore(tmp_path)
    stored = cached(model, store, FULL, batch_size=1, variants=[FULL]).score(p, progress=False).scores
    assert len(store.info()) == 1  # one stored cache serves both teams
    scratch = TransformersBackend(model, batch_size=1).score(p, progress=False).scores
    np.testing.assert_allclose(stored, scratch, atol=1e-4)
    assert abs(stored[0] - stored[1]) > 1e-3  # the question differs, so the answers do
