"""The KV-cache store and variants, with small random tensors (no model)."""

import logging

import pytest
import torch

from stretto.errors import CacheError
from stretto.kvcache.store import KVEntry, KVStore
from stretto.kvcache.variant import KVVariant


def entry(tokens: int = 5, layers: int = 2, seed: int = 0) -> KVEntry:
    g = torch.Generator().manual_seed(seed)
    keys = [torch.randn(2, tokens, 4, generator=g).to(torch.bfloat16) for _ in range(layers)]
    values = [torch.randn(2, tokens, 4, generator=g).to(torch.bfloat16) for _ in range(layers)]
    return KVEntry(keys, values, n_tokens=tokens + 3)


def test_variant_validation_and_identity():
    assert KVVariant("knorm", 0.5).operator_identity("qwen@abc") == "qwen@abc/knorm@0.50"
    assert KVVariant("tova", 0.0) == KVVariant()  # every press at ratio 0 is the full cache
    with pytest.raises(CacheError, match="unknown press 'snapkv'"):
        KVVariant("snapkv", 0.5)
    for ratio in (1.0, -0.1, 1.5):
        with pytest.raises(CacheError, match=r"outside \[0, 1\)"):
            KVVariant("knorm", ratio)
    with pytest.raises(CacheError, match="press 'none' cannot compress"):
        KVVariant("none", 0.5)


def test_round_trip_is_exact(tmp_path):
    store, e = KVStore(tmp_path), entry()
    store.save("m@1", KVVariant("knorm", 0.5), "doc text", e)
    back = store.load("m@1", KVVariant("knorm", 0.5), "doc text")
    assert back.n_tokens == 8 and back.n_kept == 5
    assert all(torch.equal(a, b) for a, b in zip(e.keys + e.values, back.keys + back.values, strict=True))


def test_key_separates_model_version_variant_and_text(tmp_path):
    store = KVStore(tmp_path)
    store.save("m@1", KVVariant(), "doc", entry())
    assert store.load("m@2", KVVariant(), "doc") is None  # another model version: a miss, rebuilt by the builder
    assert store.load("m@1", KVVariant("knorm", 0.5), "doc") is None
    assert store.load("m@1", KVVariant(), "doc ") is None
    assert store.load("m@1", KVVariant(), "doc") is not None


def test_entry_claiming_another_model_is_discarded(tmp_path, caplog):
    store = KVStore(tmp_path)
    path = store.save("m@1", KVVariant(), "doc", entry())
    other = store.path("m@2", KVVariant(), "doc")
    other.parent.mkdir(parents=True, exist_ok=True)
    path.rename(other)  # a file under model 2's key whose metadata says model 1
    assert store.load("m@2", KVVariant(), "doc") is None
    assert "built by 'm@1'" in caplog.text and not other.exists()


@pytest.mark.parametrize("damage", ["truncate", "flip"])
def test_corrupt_or_truncated_entry_is_reported_and_removed(tmp_path, caplog, damage):
    store = KVStore(tmp_path)
    path = store.save("m@1", KVVariant(), "doc", entry())
    data = bytearray(path.read_bytes())
    if damage == "truncate":
        data = data[: len(data) // 2]
    else:
        data[-3] ^= 0xFF  # one flipped bit in the last tensor's bytes
    path.write_bytes(bytes(data))
    assert store.load("m@1", KVVariant(), "doc") is None
    assert "discarding KV cache entry" in caplog.text and not path.exists()


def test_budget_and_info(tmp_path):
    store = KVStore(tmp_path, budget_gb=1e-6)  # about 1 KB
    with pytest.raises(CacheError, match="would exceed its budget"):
        store.save("m@1", KVVariant(), "doc", entry(tokens=200))
    store = KVStore(tmp_path)
    store.save("m@1", KVVariant(), "a", entry())
    store.save("m@1", KVVariant(), "b", entry(seed=1))
    store.save("m@1", KVVariant("tova", 0.5), "a", entry(tokens=3))
    rows = {r["variant"]: r for r in store.info()}
    assert rows["none@0.00"]["entries"] == 2 and rows["tova@0.50"]["entries"] == 1
    assert rows["none@0.00"]["mb_per_entry"] > rows["tova@0.50"]["mb_per_entry"]
    assert store.used_bytes() == sum(p.stat().st_size for p in tmp_path.rglob("*.safetensors"))


def test_edited_header_is_detected(tmp_path, caplog):
    """The checksum covers the metadata: editing n_tokens (which moves the question's positions) is caught."""
    store = KVStore(tmp_path)
    path = store.save("m@1", KVVariant(), "doc", entry())
    data = path.read_bytes()
    assert b'"n_tokens":"8"' in data
    path.write_bytes(data.replace(b'"n_tokens":"8"', b'"n_tokens":"4"'))  # same length: a well-formed file
    with caplog.at_level(logging.WARNING):
        assert store.load("m@1", KVVariant(), "doc") is None
    assert f"discarding KV cache entry {path}: its checksum does not match" in caplog.text and not path.exists()


def test_every_single_byte_flip_is_detected_or_changes_nothing(tmp_path, caplog):
    """Flip every byte of an entry in turn (header and tensors): each read is either discarded with a warning
    naming the file or returns exactly the stored entry."""
    store, e = KVStore(tmp_path), entry()
    path = store.save("m@1", KVVariant("knorm", 0.5), "doc", e)
    clean = path.read_bytes()
    detected = 0
    for position in range(len(clean)):
        damaged = bytearray(clean)
        damaged[position] ^= 0x01  # keeps a digit a digit: "n_tokens":"8" becomes "9"
        path.write_bytes(bytes(damaged))
        caplog.clear()
        with caplog.at_level(logging.WARNING):
            back = store.load("m@1", KVVariant("knorm", 0.5), "doc")
        if back is None:
            assert f"discarding KV cache entry {path}" in caplog.text and not path.exists(), position
            detected += 1
            continue
        assert not caplog.text and back.n_tokens == e.n_tokens, position  # e.g. a flip in the header's padding
        assert all(
            a.dtype == b.dtype and torch.equal(a.view(torch.uint8), b.view(torch.uint8))
            for a, b in zip(e.keys + e.values, back.keys + back.values, strict=True)
        ), position
    assert detected > len(clean) * 0.9


def test_entry_under_another_texts_name_is_discarded(tmp_path, caplog):
    store = KVStore(tmp_path)
    path = store.save("m@1", KVVariant(), "doc", entry())
    other = store.path("m@1", KVVariant(), "another doc")
    other.parent.mkdir(parents=True, exist_ok=True)
    path.rename(other)
    assert store.load("m@1", KVVariant(), "another doc") is None
    assert "of another text" in caplog.text and not other.exists()


def test_check_reports_missing_ok_and_bad(tmp_path, caplog):
    store = KVStore(tmp_path)
    assert store.check("m@1", KVVariant(), "doc") == "missing"
    path = store.save("m@1", KVVariant(), "doc", entry())
    assert store.check("m@1", KVVariant(), "doc") == "ok"
    path.write_bytes(path.read_bytes()[:-1])
    assert store.check("m@1", KVVariant(), "doc") == "bad" and not path.exists()
    assert not list(tmp_path.rglob("*.tmp*"))  # atomic writes leave no temporary files behind
