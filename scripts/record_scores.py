"""Record every operator's scores and seconds on a whole table, once, for the replay backend.

For each model of the operator family it builds the stored KV caches of every document (one shared
prefill per document feeds all variants), then answers every workload predicate with every variant
on the stored caches (extractions too: greedy answers and their log-probabilities). Answers are
profiled through the same ProfileStore the optimizer uses, so an interrupted recording resumes where it
stopped. The output is one Parquet file per workload (rows x operators x predicates floats) that audits and
sweeps replay in seconds, with no model. Beside it, every document's MiniLM embedding (the input of the learned
operators), with its build seconds: recordings/<workload>_embeddings.parquet (`--embeddings` records only that).

    .venv/bin/python scripts/record_scores.py --workload movie   # recordings/movie.parquet (+ _embeddings)
    .venv/bin/python scripts/record_scores.py --workload enron   # recordings/enron.parquet (+ _embeddings)
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from omegaconf import OmegaConf

from stretto.api import operator_source
from stretto.backends.model_loader import default_cache_dir
from stretto.data.datasets import load_dataset
from stretto.operators.embedding import Embedder
from stretto.operators.family import FamilySpec
from stretto.operators.stored_embeddings import EmbeddingTable
from stretto.plan.template import parse_template
from stretto.plan.workload import Workload
from stretto.profiling.profile import Profile, ProfileStore

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workload", default="movie", help="a file in conf/workload/")
    parser.add_argument("--family", default="default", help="a file in conf/family/")
    parser.add_argument("--limit", type=int, default=None, help="first N rows only (a quick look)")
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument("--embeddings", action="store_true", help="record the documents' embeddings only")
    args = parser.parse_args()

    workload = OmegaConf.load(ROOT / "conf" / "workload" / f"{args.workload}.yaml")
    family = OmegaConf.load(ROOT / "conf" / "family" / f"{args.family}.yaml")
    # the relation the predicates read: the table itself, or (rotowire) its relational joins, one row per pair
    table = Workload.of(OmegaConf.to_container(workload, resolve=True)).relation(load_dataset(workload.dataset))
    if args.limit is not None:
        table = table.head(args.limit)
    templates = [parse_template(f.template) for f in [*workload.filters, *(workload.get("extracts") or [])]]
    out = args.out or ROOT / "recordings" / f"{args.workload}.parquet"
    record_embeddings(table.df, templates, out.with_name(f"{out.stem}_embeddings.parquet"))
    if args.embeddings:
        return
    spec = FamilySpec.of(OmegaConf.to_container(family, resolve=True))
    source = operator_source(spec, "transformers")  # the family's operators on stored KV caches
    profiles = ProfileStore(default_cache_dir() / "profiles")
    began = time.perf_counter()
    for identity, variants, stats in source.build_caches(templates, table.df):  # offline, before any timing
        print(f"{identity}: caches of {stats.documents} documents, {len(variants)} variant(s) "
              f"({stats.built} built, {stats.seconds:.0f} s)")  # fmt: skip
    recorded = []
    for identity in spec.identities:
        for template in templates:
            recorded.append(profiles.scores(table.df, source.operator(template, identity)))
            mean = recorded[-1].records["seconds"].mean()
            print(f"  {identity} | {template.text[:50]}: {mean * 1000:.1f} ms/row")
    print(f"recorded in {time.perf_counter() - began:.0f} s")
    Profile.concat(recorded).save(out)
    print(f"wrote {out}")


def record_embeddings(rows, templates, out: Path) -> None:
    """Every document's embedding (the templates read one set of columns), built once and stored."""
    columns = {t.columns for t in templates}
    if len(columns) != 1:
        raise SystemExit(f"the workload's templates read different columns {sorted(columns)}: one set expected")
    embedded = EmbeddingTable.build(rows, next(iter(columns)), Embedder(), progress=True)
    embedded.save(out)
    per_doc = embedded.build_seconds.mean() * 1000
    print(f"wrote {out}: {len(embedded.keys)} documents, {per_doc:.1f} ms/document ({embedded.embedder})")


if __name__ == "__main__":
    main()
