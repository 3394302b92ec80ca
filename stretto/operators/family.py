"""Operator families: the physical operators a logical filter may use, and where their answers come from.

A family is (model x KV variant) for a few models plus the gold operator. `LiveFamily` answers with the
real models on stored KV caches (models load on first use); `ReplayFamily` answers from recorded
scores, so the optimizer and executor can be exercised, swept and audited without any model.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from stretto.backends.model_loader import LoadedModel, default_cache_dir, load_model, resolve
from stretto.backends.replay import ReplayOperator
from stretto.errors import OptimizerError
from stretto.kvcache.build import BuildStats
from stretto.kvcache.variant import KVVariant
from stretto.operators.llm_extract import operator_for
from stretto.plan.template import Template
from stretto.profiling.operator import CandidateOperator, OperatorId, ScoredRows
from stretto.profiling.profile import Profile


@dataclass(frozen=True)
class FamilySpec:
    """Which (model, variant) operators exist, which one is gold, and which models a vLLM server serves."""

    members: tuple[tuple[str, KVVariant], ...]
    gold: tuple[str, KVVariant]
    served: tuple[tuple[str, str], ...] = ()  # (model, server URL): its uncompressed operator runs there
    # The gold operator says yes when its log-odds exceed this (0 by default). Small models' raw yes/no
    # scores can be one-sided (Qwen 0.5B said yes to 94% of restaurant candidate pairs at 0): a threshold
    # calibrated on labelled data makes the labels every guarantee is relative to mean what they should.
    gold_threshold: float = 0.0

    @classmethod
    def of(cls, config: Mapping[str, Any]) -> FamilySpec:
        """From the `family` config: models: [{model, variants: [{press, ratio}]}], gold: {model, press, ratio,
        threshold (optional)}, serve: {model: url} (optional)."""
        if not config.get("gold"):
            raise OptimizerError("the operator family names no gold operator (family.gold: {model, press, ratio})")
        members = tuple((m["model"], KVVariant(**v)) for m in config.get("models", []) for v in m.get("variants", [{}]))
        gold_cfg = dict(config["gold"])
        threshold = float(gold_cfg.pop("threshold", 0.0) or 0.0)
        gold = (gold_cfg.pop("model"), KVVariant(**gold_cfg))
        served = tuple(sorted((config.get("serve") or {}).items()))
        unknown = [m for m, _ in served if m not in {name for name, _ in (*members, gold)}]
        if unknown:
            raise OptimizerError(f"family.serve names model(s) {unknown} that are not in the family")
        return cls(tuple(dict.fromkeys([*members, gold])), gold, served, threshold)

    def server(self, model: str, variant: KVVariant) -> str | None:
        """The vLLM server URL of this operator, if a server runs it (only uncompressed operators can)."""
        return None if variant.compressed else dict(self.served).get(model)

    def thresholded(self, model: str, variant: KVVariant) -> bool:
        """Whether this is the gold operator with its decision threshold moved away from 0."""
        return (model, variant) == self.gold and self.gold_threshold != 0.0

    def identity(self, model: str, variant: KVVariant, *, shifted: bool = True) -> str:
        """model weights x press x ratio, marked +vllm when a vLLM server answers (its costs are its own), and
        >threshold for the gold operator at a moved threshold (`shifted=False`: the operator without it)."""
        moved = self.gold_threshold if shifted and self.thresholded(model, variant) else None
        served = bool(self.server(model, variant))
        return str(OperatorId(resolve(model).identity, variant.press, variant.ratio, served, moved))

    @property
    def identities(self) -> list[str]:
        """Every operator, gold included."""
        return [self.identity(m, v) for m, v in self.members]

    @property
    def gold_identity(self) -> str:
        return self.identity(*self.gold)

    def without_compression(self) -> FamilySpec:
        members = tuple((m, v) for m, v in self.members if not v.compressed)
        return FamilySpec(members, self.gold, self.served, self.gold_threshold)


@dataclass
class ThresholdedGold:
    """The gold operator with its decision threshold moved to 0: scores are log-odds minus the threshold."""

    inner: CandidateOperator
    threshold: float
    identity: str

    @property
    def template(self) -> Template:
        return self.inner.template

    def score(self, rows, *, progress: bool = True) -> ScoredRows:
        scored = self.inner.score(rows, progress=progress)
        return replace(scored, scores=(scored.scores - self.threshold).astype(np.float32))


class LiveFamily:
    """Real models on stored KV caches (caches missing from the store are built on first use)."""

    def __init__(
        self,
        spec: FamilySpec,
        *,
        cache_dir: Path | None = None,
        batch_size: int = 8,
        dtype: str = "bfloat16",
        device: str = "cpu",
        budget_gb: float | None = None,
        loaded: Mapping[str, LoadedModel] | None = None,
        stored: bool = True,
        kv_dir: Path | None = None,
        max_tokens: int | None = None,
        on_long_text: str = "truncate",
    ) -> None:
        """`loaded`: models already in memory, by family name (they are not loaded again). `stored=False` runs
        every prompt from scratch: for rows that are never seen twice (a semantic join's candidate pairs),
        where storing a cache per row costs more than it saves; only uncompressed operators exist then.
        `kv_dir`: the KV cache store (default <cache_dir>/kv); `max_tokens` / `on_long_text`: what a prompt
        longer than the model's context (or max_tokens) does, `truncate` its document or raise an `error`."""
        if not stored and any(v.compressed for _, v in spec.members):
            raise OptimizerError(
                "compressed KV variants answer from stored caches: store them (family.stored=true, "
                "stored=True) or drop the compressed variants"
            )
        self.stored = stored
        self.spec = spec
        self.cache_dir = cache_dir or default_cache_dir()
        self.kv_dir = kv_dir or self.cache_dir / "kv"
        self.batch_size, self.dtype, self.device, self.budget_gb = batch_size, dtype, device, budget_gb
        self.max_tokens, self.on_long_text = max_tokens, on_long_text
        self._models: dict[str, LoadedModel] = dict(loaded or {})
        self._served: dict[str, Any] = {}  # model -> its VLLMBackend (one client per served model)
        self._by_identity = {spec.identity(m, v): (m, v) for m, v in spec.members}

    def model(self, name: str) -> LoadedModel:
        if name not in self._models:
            self._models[name] = load_model(name, cache_dir=self.cache_dir, dtype=self.dtype, device=self.device)
        return self._models[name]

    def operator(self, template: Template, identity: str) -> CandidateOperator:
        if identity not in self._by_identity:
            raise OptimizerError(f"operator '{identity}' is not in the family {sorted(self._by_identity)}")
        name, variant = self._by_identity[identity]
        if self.spec.thresholded(name, variant):
            return ThresholdedGold(self._operator(template, name, variant), self.spec.gold_threshold, identity)
        return self._operator(template, name, variant)

    def _operator(self, template: Template, name: str, variant: KVVariant) -> CandidateOperator:
        from stretto.backends.transformers_backend import TransformersBackend
        from stretto.kvcache.backend import KVCachedBackend
        from stretto.kvcache.build import KVBuilder

        url = self.spec.server(name, variant)
        if url is not None:
            from stretto.backends.vllm_backend import VLLMBackend, served_model

            if name not in self._served:
                self._served[name] = VLLMBackend(served_model(name, self.cache_dir), url, served_name=name)
            return operator_for(template, self._served[name])
        loaded = self.model(name)
        long_text = {"max_tokens": self.max_tokens, "on_long_text": self.on_long_text}
        base = TransformersBackend(loaded, batch_size=self.batch_size, **long_text)
        if not self.stored:
            return operator_for(template, base)
        builder = KVBuilder(loaded, self.stored_variants(name), self.store(), **long_text)
        # A query never builds an uncompressed cache: rows without one are read from scratch (`cache build`
        # stores them for the queries to come); compressed variants with missing caches are cold_operators.
        scratch = not variant.compressed
        return operator_for(template, KVCachedBackend(base, builder, variant, scratch_when_missing=scratch))

    def cold_operators(self, templates: Sequence[Template], rows: pd.DataFrame, identities: Sequence[str]) -> list[str]:
        """Those of `identities` that are compressed and lack a stored cache for some of these rows: using them
        would build caches at query time (a one-off query must not pay an offline build), so the engine leaves
        them out; `stretto cache build` (build_caches) stores them for a table many queries will hit."""
        cold = []
        store = self.store()
        for identity in identities:
            name, variant = self._by_identity[identity]
            if not variant.compressed or self.spec.server(name, variant) is not None:
                continue
            loaded = self.model(name)
            prefixes = cached_prefixes(templates, rows, loaded.tokenizer)
            if not all(store.contains(loaded.identity, variant, prefix) for prefix in prefixes):
                cold.append(identity)
        return cold

    def build_caches(
        self, templates: Sequence[Template], rows: pd.DataFrame, *, progress: bool = True, verify: bool = True
    ) -> list[tuple[str, list[KVVariant], BuildStats]]:
        """Store the KV cache of every operator of the family for every row (offline work, reported on its own):
        per model one prefill per document feeds all its variants; stored entries are kept (verified when
        `verify`: a bad one is reported, removed and rebuilt). Per model: (identity, variants, build stats).
        The cached prefix depends only on the document columns a template reads: one template per such set is built."""
        from stretto.kvcache.build import KVBuilder

        out = []
        for name in dict.fromkeys(model for model, _ in self.spec.members):
            variants = self.stored_variants(name)
            if not variants:
                continue
            loaded = self.model(name)
            builder = KVBuilder(
                loaded, variants, self.store(), max_tokens=self.max_tokens, on_long_text=self.on_long_text
            )
            prefixes = cached_prefixes(templates, rows, loaded.tokenizer)
            out.append((loaded.identity, variants, builder.build(prefixes, progress=progress, verify=verify)))
        return out

    def stored_variants(self, name: str) -> list[KVVariant]:
        """The variants of one model whose caches live in the store (a served model's full cache is the server's)."""
        return [v for m, v in self.spec.members if m == name and self.spec.server(m, v) is None]

    def store(self):
        from stretto.kvcache.store import KVStore

        return KVStore(self.kv_dir, budget_gb=self.budget_gb)


def cached_prefixes(templates: Sequence[Template], rows: pd.DataFrame, tokenizer) -> list[str]:
    """The prompt prefixes whose KV caches these templates read on these rows: a prefix depends only on the
    document columns a template reads (not on a {?column} it asks about), so one template per such set."""
    from stretto.backends.prompt import operator_prompt

    records = rows.to_dict("records")
    distinct = {t.document_columns: t for t in templates}.values()
    return [operator_prompt(t, row, tokenizer).prefix for t in distinct for row in records]


class ReplayFamily:
    """Answers from a recording of every operator's scores and seconds: no model, same contract."""

    def __init__(self, spec: FamilySpec, recording: Profile) -> None:
        self.spec, self.recording = spec, recording
        # a gold operator at a moved threshold answers with the recorded operator's scores, shifted
        self._recorded = {spec.identity(m, v): spec.identity(m, v, shifted=False) for m, v in spec.members}
        recorded = set(recording.operators)
        missing = [i for i in self._recorded.values() if i not in recorded]
        if missing:
            raise OptimizerError(f"the recording has no answers of operator(s) {missing}; recorded: {sorted(recorded)}")

    def operator(self, template: Template, identity: str) -> CandidateOperator:
        recorded = self._recorded.get(identity, identity)
        if recorded != identity:
            return ThresholdedGold(
                ReplayOperator(template, recorded, self.recording), self.spec.gold_threshold, identity
            )
        return ReplayOperator(template, identity, self.recording)
