"""KV-variant frontier: cost and quality of every (model, press, ratio) operator on short, medium and long texts.

For movie reviews (short), IMDB reviews (medium) and Enron e-mails (long) it builds the caches of every
variant (one shared prefill per document and model), then scores a yes/no predicate on the stored
caches, one document at a time and in batches, and from scratch for comparison. Writes one CSV row per
(dataset, model, variant) and a frontier plot. All timings are measured side by side in one run.

    .venv/bin/python scripts/kv_frontier.py            # the committed results/kv_frontier.csv (needs `make scale`)
    .venv/bin/python scripts/kv_frontier.py --docs 20  # a quick look
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import pandas as pd

from stretto.backends.model_loader import load_model, resolve
from stretto.backends.prompt import operator_prompt
from stretto.backends.transformers_backend import TransformersBackend
from stretto.data.datasets import load_dataset
from stretto.evaluation.metrics import auc
from stretto.kvcache.backend import KVCachedBackend
from stretto.kvcache.build import KVBuilder
from stretto.kvcache.store import KVStore
from stretto.kvcache.variant import KVVariant
from stretto.plan.template import Template

FRONTIER = [KVVariant()] + [
    KVVariant(press, ratio)
    for press in ("expected_attention", "knorm", "tova", "streaming_llm")
    for ratio in (0.5, 0.75, 0.9)
]
GOLD_VARIANTS = [KVVariant(), KVVariant("knorm", 0.5), KVVariant("expected_attention", 0.5)]
FRAUD = "{text} refers to a fraudulent scheme (e.g. 'Raptor', 'Deathstar', 'Chewco', 'Fat Boy')"


def workloads(docs: int, seed: int) -> dict[str, tuple[pd.DataFrame, Template, np.ndarray]]:
    """(rows, template, human truth) per dataset; Enron keeps all its fraudulent mails so AUC is defined."""
    movie = load_dataset("movie")["reviews"].df.drop_duplicates("reviewid").sample(docs, random_state=seed)
    imdb = load_dataset("imdb_rt")["reviews"].df
    imdb = imdb[imdb.source == "imdb"].sample(docs, random_state=seed)
    enron = load_dataset("enron")["emails"].df
    fraud = enron[enron.fraudulent == 1]
    enron = pd.concat([fraud, enron[enron.fraudulent != 1].sample(max(docs - len(fraud), 0), random_state=seed)])
    return {
        "movie": (movie, Template("{reviewtext} is clearly positive"), (movie.scoresentiment == "POSITIVE").to_numpy()),
        "imdb": (imdb, Template("{text} is clearly positive"), (imdb.label.astype(int) == 1).to_numpy()),
        "enron": (enron, Template(FRAUD), (enron.fraudulent == 1).to_numpy()),
    }


BATCH_SIZES = {"single": 1, "batched": 8}


def timed_scores(backend, prompts) -> tuple[np.ndarray, float]:
    began = time.perf_counter()
    scores = backend.score(prompts, progress=False).scores
    return scores, (time.perf_counter() - began) / len(prompts)


def measure_model(name: str, variants, data, store: KVStore, max_tokens: int) -> list[dict]:
    loaded = load_model(name)
    bases = {k: TransformersBackend(loaded, batch_size=b, max_tokens=max_tokens) for k, b in BATCH_SIZES.items()}
    rows = []
    for dataset, (df, template, truth) in data.items():
        prompts = [operator_prompt(template, r, loaded.tokenizer) for r in df.to_dict("records")]
        builder = KVBuilder(loaded, variants, store, max_tokens=max_tokens)
        began = time.perf_counter()
        builder.build([p.prefix for p in prompts], progress=True)
        build_s = (time.perf_counter() - began) / len(prompts)  # one shared prefill for all variants
        _, scratch_single = timed_scores(bases["single"], prompts)
        _, scratch_batched = timed_scores(bases["batched"], prompts)
        question = len(loaded.tokenizer.encode(prompts[0].suffix, add_special_tokens=False))
        doc_tokens = np.mean([len(loaded.tokenizer.encode(p.prefix, add_special_tokens=False)) for p in prompts])
        sizes = {r["variant"]: r["mb_per_entry"] for r in store.info() if loaded.identity.split("@")[0] in r["model"]}
        for variant in variants:
            scores, single = timed_scores(KVCachedBackend(bases["single"], builder, variant), prompts)
            _, batched = timed_scores(KVCachedBackend(bases["batched"], builder, variant), prompts)
            rows.append(
                {
                    "dataset": dataset,
                    "model": loaded.source.name,
                    "press": variant.press,
                    "ratio": variant.ratio,
                    "docs": len(prompts),
                    "doc_tokens": round(float(doc_tokens), 1),
                    "build_s_per_doc": build_s,
                    "query_s_single": single,
                    "query_s_batched": batched,
                    "scratch_s_single": scratch_single,
                    "scratch_s_batched": scratch_batched,
                    "mb_per_doc": sizes.get(variant.name, float("nan")),
                    "auc_human": auc(scores, truth),
                    "speedup_single": scratch_single / single,
                    "speedup_batched": scratch_batched / batched,
                    "token_bound": (doc_tokens + question) / question,
                    "_scores": scores,
                }
            )
            print(
                f"{dataset:6} {loaded.source.name:28} {variant.name:24} auc {rows[-1]['auc_human']:.3f} "
                f"single {single * 1000:6.1f} ms batched {batched * 1000:6.1f} ms "
                f"(scratch {scratch_single * 1000:6.1f} / {scratch_batched * 1000:6.1f})",
                flush=True,
            )
    return rows


def agreement_with_gold(rows: list[dict], gold_model: str) -> None:
    """Share of decisions equal to the gold operator's, each operator thresholded at its own median."""
    gold = {r["dataset"]: r["_scores"] for r in rows if r["model"] == gold_model and r["ratio"] == 0}
    for r in rows:
        g = gold[r["dataset"]]
        r["agree_gold"] = float(np.mean((r["_scores"] > np.median(r["_scores"])) == (g > np.median(g))))


def plot(df: pd.DataFrame, path: Path) -> None:
    """Per dataset: query cost on stored caches against agreement with gold (top) and human-label AUC (bottom)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    datasets = list(dict.fromkeys(df.dataset))
    fig, axes = plt.subplots(2, len(datasets), figsize=(5 * len(datasets), 8.5), squeeze=False)
    markers = dict(zip(sorted(df.press.unique()), "os^vDP", strict=False))
    for col, dataset in enumerate(datasets):
        part = df[df.dataset == dataset]
        for row, metric in enumerate(("agree_gold", "auc_human")):
            ax = axes[row][col]
            for (model, press), group in part.groupby(["model", "press"]):
                size = "1.5b" if "1.5b" in model else "0.5b"
                ax.scatter(
                    group.query_s_batched * 1000,
                    group[metric],
                    marker=markers[press],
                    label=f"{size} {press}",
                    alpha=0.8,
                )
                for _, r in group.iterrows():
                    ax.annotate(
                        f"{r.ratio:g}",
                        (r.query_s_batched * 1000, r[metric]),
                        fontsize=7,
                        xytext=(3, 3),
                        textcoords="offset points",
                    )
            ax.set_title(f"{dataset} (~{part.doc_tokens.iloc[0]:.0f} tokens/doc, {part.docs.iloc[0]} docs)")
            ax.set_xlabel("query ms per doc on stored cache (batch 8)")
            ax.set_ylabel(
                {"agree_gold": "agreement with gold (1.5B, full cache)", "auc_human": "AUC vs human labels"}[metric]
            )
            ax.grid(alpha=0.3)
    axes[0][0].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--docs", type=int, default=60, help="documents per dataset")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--model", default="qwen-0.5b")
    parser.add_argument("--gold", default="qwen-1.5b")
    parser.add_argument("--max-tokens", type=int, default=2048, help="context cap; longer e-mails are cut")
    parser.add_argument("--store", type=Path, default=Path.home() / ".cache" / "stretto" / "kv-bench")
    parser.add_argument("--out", type=Path, default=Path("results/kv_frontier.csv"))
    parser.add_argument("--plot-only", action="store_true", help="redraw the PNG from an existing CSV")
    args = parser.parse_args()
    if args.plot_only:
        plot(pd.read_csv(args.out), args.out.with_suffix(".png"))
        return

    data = workloads(args.docs, args.seed)
    store = KVStore(args.store)
    rows = measure_model(args.model, FRONTIER, data, store, args.max_tokens)
    rows += measure_model(args.gold, GOLD_VARIANTS, data, store, args.max_tokens)
    agreement_with_gold(rows, resolve(args.gold).name)
    df = pd.DataFrame([{k: v for k, v in r.items() if k != "_scores"} for r in rows])
    args.out.parent.mkdir(parents=True, exist_ok=True)
    df.round(5).to_csv(args.out, index=False)
    plot(df, args.out.with_suffix(".png"))
    print(df.drop(columns=["scratch_s_single", "scratch_s_batched"]).round(3).to_string(index=False))


if __name__ == "__main__":
    main()
