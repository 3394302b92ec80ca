"""Qwen 0.5B at ratio 0 on transformers vs a vLLM server: rows per second, cold vs prefix-hit, and agreement.

On 300 movie reviews and 100 e-mails, two questions per document:
- transformers, cold: the prompt from scratch (batches of 8 sorted by length);
  transformers, prefix-hit: the same questions on each document's stored full KV cache (built beforehand: the
  offline step, not counted).
- vLLM, cold: the first question on each document, on a freshly started server (nothing cached);
  vLLM, prefix-hit: the second question on the same documents (their prefix blocks are cached on the server).
agreement: share of rows where vLLM's decision equals transformers' (same question, cold) at the median of the
transformers scores (half the rows on each side: the hardest single threshold). transformers runs in bf16 with
fp32 scoring (our default), the server in float32 (its default here: bf16 logits come in 0.125 steps).
transformers runs before the server starts (vLLM keeps one of the two cores busy); server start-up is reported
on its own row. Warm-up is excluded on both sides: transformers scores 8 documents untimed before the cold
timing (first kernel runs), the server answers one untimed request.

    make vllm-env && .venv/bin/python scripts/vllm_bench.py        # results/vllm_bench.csv
    .venv/bin/python scripts/vllm_bench.py --resume                # keep the rows measured so far, do the rest

Every measured row is written at once, and the transformers reference scores (what agreement compares
against) are kept in outputs/vllm_bench_reference.npz, so `--resume` after an interruption measures only
what is missing. Long e-mails prefill slowly on one CPU core: requests wait up to --timeout seconds.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import pandas as pd

from stretto.backends.model_loader import load_model
from stretto.backends.transformers_backend import TransformersBackend
from stretto.backends.vllm_backend import VLLMBackend, served_model
from stretto.backends.vllm_server import DEFAULT_VENV, LocalServer
from stretto.data.datasets import load_dataset
from stretto.operators.family import FamilySpec, LiveFamily
from stretto.operators.llm_filter import LLMFilter
from stretto.plan.template import Template

ROOT = Path(__file__).resolve().parents[1]
MODEL = "qwen-0.5b"
WORKLOADS = {  # dataset: (table, rows, first question, second question)
    "movie": ("reviews", 300, "{reviewtext} is clearly positive", "{reviewtext} mentions excellent acting"),
    "enron": ("emails", 100, "{text} discusses financial matters", "{text} references a meeting or event"),
}


def timed(operator: LLMFilter, rows: pd.DataFrame) -> tuple[np.ndarray, float]:
    began = time.perf_counter()
    scores = operator.score(rows, progress=False).scores
    return scores, len(rows) / (time.perf_counter() - began)


def agreement(reference: np.ndarray, other: np.ndarray) -> float:
    threshold = float(np.median(reference))
    return float(np.mean((reference > threshold) == (other > threshold)))


def save(rows: list[dict], out: Path) -> None:
    """Written after every measurement: an interrupted run keeps what it measured (in a stable row order)."""
    order = {"movie": 0, "enron": 1, "-": 2, "transformers": 0, "vllm": 1, "startup": 0, "cold": 1, "prefix-hit": 2}
    rows = sorted(rows, key=lambda r: (order[r["dataset"]], order[r["backend"]], order[r["phase"]]))
    out.parent.mkdir(parents=True, exist_ok=True)
    pd.DataFrame(rows).to_csv(out, index=False)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--venv", type=Path, default=DEFAULT_VENV)
    parser.add_argument("--out", type=Path, default=ROOT / "results" / "vllm_bench.csv")
    parser.add_argument("--resume", action="store_true", help="keep rows already in --out, measure the rest")
    parser.add_argument("--timeout", type=float, default=1800.0, help="seconds a request may wait on the server")
    args = parser.parse_args()

    data = {d: load_dataset(d)[table].df.head(n) for d, (table, n, _, _) in WORKLOADS.items()}
    loaded = load_model(MODEL)
    spec = FamilySpec.of({"models": [{"model": MODEL}], "gold": {"model": MODEL}})
    family = LiveFamily(spec, loaded={MODEL: loaded})
    reference_file = ROOT / "outputs" / "vllm_bench_reference.npz"
    rows = pd.read_csv(args.out).to_dict("records") if args.resume and args.out.exists() else []
    reference = dict(np.load(reference_file)) if args.resume and reference_file.exists() else {}
    done = {(r["backend"], r["dataset"], r["phase"]) for r in rows}
    scratch = TransformersBackend(loaded)
    for dataset, (_, _, first, second) in WORKLOADS.items():
        docs = data[dataset]
        cold = [q for q in (first, second) if not (q in reference and ("transformers", dataset, "cold") in done)]
        if cold:
            LLMFilter(Template(first), scratch).score(docs.head(8), progress=False)  # warm-up (first kernels): untimed
        for question in cold:  # from scratch: nothing is reused, both questions are cold
            reference[question], rps = timed(LLMFilter(Template(question), scratch), docs)
            measured = ("transformers", dataset, "cold", question)  # a remeasured reference replaces its row
            rows = [r for r in rows if (r["backend"], r["dataset"], r["phase"], r["question"]) != measured]
            rows.append({"backend": "transformers", "dataset": dataset, "phase": "cold", "question": question,
                         "rows_per_second": rps, "agreement": 1.0, "dtype": "bfloat16"})  # fmt: skip
            reference_file.parent.mkdir(parents=True, exist_ok=True)
            np.savez(reference_file, **reference)
        if ("transformers", dataset, "prefix-hit") not in done:
            stored = family.operator(Template(second), spec.gold_identity)
            stored.score(docs, progress=False)  # builds any missing cache (the offline step) and warms it: not timed
            scores, rps = timed(stored, docs)
            rows.append({"backend": "transformers", "dataset": dataset, "phase": "prefix-hit", "question": second,
                         "rows_per_second": rps, "agreement": agreement(reference[second], scores),
                         "dtype": "bfloat16"})  # fmt: skip
        print(*rows[-3:], sep="\n", flush=True)
        save(rows, args.out)

    if all(("vllm", d, phase) in done for d in WORKLOADS for phase in ("cold", "prefix-hit")):
        save(rows, args.out)
        print(pd.read_csv(args.out).to_string(index=False))
        return
    server = LocalServer(MODEL, MODEL, venv=args.venv, log_path=ROOT / "outputs" / "vllm_bench_server.log")
    server.log_path.parent.mkdir(parents=True, exist_ok=True)
    with server:
        rows = [r for r in rows if r["phase"] != "startup"]  # a fresh server: the cache is empty again
        rows.append({"backend": "vllm", "dataset": "-", "phase": "startup", "seconds": server.startup_seconds,
                     "dtype": server.dtype})  # fmt: skip
        backend = VLLMBackend(served_model(MODEL), server.url, served_name=MODEL, timeout=args.timeout)
        backend.warm_up()
        for dataset, (_, _, first, second) in WORKLOADS.items():
            if ("vllm", dataset, "cold") in done and ("vllm", dataset, "prefix-hit") in done:
                continue
            rows = [r for r in rows if (r["backend"], r["dataset"]) != ("vllm", dataset)]  # both phases, in order
            for phase, question in (("cold", first), ("prefix-hit", second)):  # the second question reuses the prefix
                scores, rps = timed(LLMFilter(Template(question), backend), data[dataset])
                rows.append({"backend": "vllm", "dataset": dataset, "phase": phase, "question": question,
                             "rows_per_second": rps, "agreement": agreement(reference[question], scores),
                             "dtype": server.dtype})  # fmt: skip
                print(rows[-1], flush=True)
                save(rows, args.out)
    save(rows, args.out)
    print(pd.read_csv(args.out).to_string(index=False))


if __name__ == "__main__":
    main()
