"""`stretto cache build` and `stretto cache info`: the offline side of stored KV caches."""

from __future__ import annotations

import time

from omegaconf import DictConfig

from stretto.backends.prompt import filter_prompt
from stretto.experiment.run import configured_model, configured_query, kv_builder, kv_variants
from stretto.kvcache.store import KVStore


def build(cfg: DictConfig) -> str:
    """Store every configured variant's cache for every row the configured query reads."""
    query, table = configured_query(cfg)
    variants = kv_variants(cfg.kv)
    loaded = configured_model(cfg)
    builder = kv_builder(cfg, loaded, variants)
    rows = table.df.to_dict("records")
    # The cached prefix depends only on which columns a template reads, not on its question.
    templates = {f.template.columns: f.template for f in query.filters}.values()
    prefixes = [filter_prompt(t, row, loaded.tokenizer).prefix for t in templates for row in rows]
    began = time.perf_counter()
    stats = builder.build(prefixes, progress=cfg.progress, verify=True)
    seconds = time.perf_counter() - began
    verified = (
        f"  {stats.bad} stored entr{'y' if stats.bad == 1 else 'ies'} failed verification (corrupt, truncated or "
        "unreadable; named in the warnings above): removed and rebuilt\n"
        if stats.bad
        else "  every stored entry passed verification (checksum over its tensors and metadata)\n"
    )
    return (
        f"KV caches for {loaded.identity}, {len(variants)} variant(s) "
        f"[{', '.join(v.name for v in variants)}] in {cfg.kv.store_dir}\n"
        f"  documents {stats.documents}, built now {stats.built} (the rest were stored already and verified), "
        f"{seconds:.1f} s, {stats.prefill_tokens} prefill tokens\n" + verified + info(cfg)
    )


def info(cfg: DictConfig) -> str:
    """Entries and sizes per (model, variant) in the configured store."""
    store = KVStore(cfg.kv.store_dir, budget_gb=cfg.kv.budget_gb)
    rows = store.info()
    lines = [f"KV cache store {store.root}: {store.used_bytes() / 1024**2:.1f} MB of {cfg.kv.budget_gb} GB budget"]
    lines += [
        f"  {r['model']:<48} {r['variant']:<26} {r['entries']:>7} entries {r['mb']:>9.1f} MB "
        f"({r['mb_per_entry'] * 1024:.1f} KB/entry)"
        for r in rows
    ]
    return "\n".join(lines if rows else [*lines, "  (empty)"])
