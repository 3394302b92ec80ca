"""`stretto cache build` and `stretto cache info`: the offline side of stored KV caches (paths.kv_dir) and of
the documents' embeddings (paths.embeddings_dir), the learned operators' inputs."""

from __future__ import annotations

import time

from omegaconf import DictConfig

from stretto.experiment.run import configured_family, configured_query, configured_source
from stretto.kvcache.store import KVStore
from stretto.operators.stored_embeddings import EmbeddingStore


def build(cfg: DictConfig) -> str:
    """Store the cache of every operator of the configured family (each model's variants, with one prefill per
    document) for every row the configured query reads; the models a vLLM server serves keep theirs there."""
    query, table = configured_query(cfg)
    spec = configured_family(cfg)
    source = configured_source(cfg, spec, stored=True)  # a from-scratch family too, when asked to build them
    lines = []
    for identity, variants, stats in source.build_caches(
        [op.template for op in query.operators], table.df, progress=cfg.progress, verify=True
    ):
        verified = (
            f"  {stats.bad} stored entr{'y' if stats.bad == 1 else 'ies'} failed verification (corrupt, truncated or "
            "unreadable; named in the warnings above): removed and rebuilt"
            if stats.bad
            else "  every stored entry passed verification (checksum over its tensors and metadata)"
        )
        lines += [
            f"KV caches for {identity}, {len(variants)} variant(s) "
            f"[{', '.join(v.name for v in variants)}] in {cfg.paths.kv_dir}",
            f"  documents {stats.documents}, built now {stats.built} (the rest were stored already and verified), "
            f"{stats.seconds:.1f} s ({stats.seconds / max(stats.built, 1):.2f} s per document built), "
            f"{stats.prefill_tokens} prefill tokens",
            verified,
        ]
    if not lines:
        lines.append(f"family '{cfg.family.get('name')}' stores no KV cache here (every model is served by vLLM)")
    store = EmbeddingStore(cfg.paths.embeddings_dir)
    for columns in {op.template.columns for op in query.operators}:
        began = time.perf_counter()
        built = store.build(table.df, columns, progress=cfg.progress)
        lines.append(
            f"embeddings of {len(built.keys)} documents ({', '.join(columns)}) by {built.embedder} in "
            f"{cfg.paths.embeddings_dir}: {time.perf_counter() - began:.1f} s now, "
            f"{built.build_seconds.mean() * 1000:.1f} ms/document when built"
        )
    return "\n".join([*lines, info(cfg)])


def info(cfg: DictConfig) -> str:
    """Entries and sizes per (model, variant) in the configured store."""
    store = KVStore(cfg.paths.kv_dir, budget_gb=cfg.paths.kv_budget_gb)
    rows = store.info()
    budget = cfg.paths.kv_budget_gb
    lines = [f"KV cache store {store.root}: {store.used_bytes() / 1024**2:.1f} MB of {budget} GB budget"]
    lines += [
        f"  {r['model']:<48} {r['variant']:<26} {r['entries']:>7} entries {r['mb']:>9.1f} MB "
        f"({r['mb_per_entry'] * 1024:.1f} KB/entry)"
        for r in rows
    ]
    return "\n".join(lines if rows else [*lines, "  (empty)"])
