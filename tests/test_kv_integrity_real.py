"""Stored KV caches of the real offline Qwen 0.5B: verified when building, and query-time builds that report
their progress."""

import logging

import pytest
import torch

import stretto.progress
from stretto.backends.prompt import operator_prompt
from stretto.backends.transformers_backend import TransformersBackend
from stretto.data.datasets import load_dataset
from stretto.kvcache.backend import KVCachedBackend
from stretto.kvcache.build import KVBuilder
from stretto.kvcache.store import KVStore
from stretto.kvcache.variant import KVVariant
from stretto.plan.template import Template

pytestmark = pytest.mark.model
FULL = KVVariant()


@pytest.fixture(scope="module")
def prefixes(qwen05):
    df = load_dataset("movie")["reviews"].df.drop_duplicates("reviewid").head(3)
    template = Template("{reviewtext} is clearly positive")
    return [operator_prompt(template, row, qwen05.tokenizer) for row in df.to_dict("records")]


def same(a, b) -> bool:
    return a.n_tokens == b.n_tokens and all(
        torch.equal(x.view(torch.uint8), y.view(torch.uint8))
        for x, y in zip(a.keys + a.values, b.keys + b.values, strict=True)
    )


def test_build_verifies_stored_entries_and_rebuilds_the_bad_ones(qwen05, prefixes, tmp_path, caplog):
    """`stretto cache build`'s builder: an entry whose header was edited (n_tokens) and one with a flipped tensor
    byte are found, reported by path, counted and rebuilt to what they were; the intact one is kept."""
    store = KVStore(tmp_path)
    texts = [p.prefix for p in prefixes]
    builder = KVBuilder(qwen05, [FULL], store)
    assert builder.build(texts, progress=False).built == 3
    before = [store.load(qwen05.identity, FULL, t) for t in texts]
    edited, flipped, intact = (store.path(qwen05.identity, FULL, t) for t in texts)
    n = str(before[0].n_tokens)
    other = n[:-1] + str((int(n[-1]) + 1) % 10)
    data = edited.read_bytes()
    assert f'"n_tokens":"{n}"'.encode() in data
    edited.write_bytes(data.replace(f'"n_tokens":"{n}"'.encode(), f'"n_tokens":"{other}"'.encode()))
    data = bytearray(flipped.read_bytes())
    data[-7] ^= 0x10
    flipped.write_bytes(bytes(data))
    untouched = intact.stat().st_mtime_ns
    with caplog.at_level(logging.WARNING):
        stats = builder.build(texts, progress=False)
    assert (stats.documents, stats.built, stats.bad) == (3, 2, 2)
    for path in (edited, flipped):
        assert f"discarding KV cache entry {path}" in caplog.text
    assert intact.stat().st_mtime_ns == untouched
    after = [store.load(qwen05.identity, FULL, t) for t in texts]
    assert all(same(a, b) for a, b in zip(before, after, strict=True))
    assert builder.build(texts, progress=False).bad == 0


def test_query_time_cache_build_reports_progress(qwen05, prefixes, tmp_path, caplog, capsys, monkeypatch):
    """Caches missing at query time are built with progress that names the phase and counts n/N: log lines
    with a rate (shown at once here; every 30 s in a real run), and a bar on stderr when progress is on."""
    monkeypatch.setattr(stretto.progress, "LOG_EVERY_S", 0.0)
    monkeypatch.setattr(stretto.progress, "QUIET_S", 0.0)

    def backend(store_dir):
        return KVCachedBackend(TransformersBackend(qwen05), KVBuilder(qwen05, [FULL], KVStore(store_dir)), FULL)

    with caplog.at_level(logging.INFO, logger="stretto.progress"):
        scored = backend(tmp_path / "a").score(prefixes, progress=False)
    phase = "building missing KV caches at query time"
    for n in (1, 2, 3):
        assert f"{phase} ({qwen05.identity}/none@0.00): {n}/3 docs in " in caplog.text
    assert "docs/s)" in caplog.text and "scoring: 3/3 rows" in caplog.text
    assert (scored.seconds > 0).all()
    capsys.readouterr()
    backend(tmp_path / "b").score(prefixes, progress=True)
    err = capsys.readouterr().err
    assert phase in err and "3/3" in err
