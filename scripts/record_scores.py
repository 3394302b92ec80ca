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
    .venv/bin/python scripts/record_scores.py --workload movie_rt --chunk 500   # the 8,530-row scale table

`--chunk N` records N rows at a time (the table's order) and rewrites the recording after each chunk, so an
interrupted run leaves a usable recording of its first chunks and resumes where it stopped; each chunk's KV-cache
build seconds, measured before any scoring, go to <recording>_builds.csv. `--filters-only` leaves the extracts out
(a later run without it adds them: what is recorded is read back from the profile store).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import pandas as pd
from omegaconf import OmegaConf

from stretto.api import operator_source
from stretto.backends.model_loader import default_cache_dir
from stretto.data.datasets import load_dataset
from stretto.kvcache.build import BuildStats
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
    parser.add_argument("--chunk", type=int, default=None, help="record N rows at a time, saving after each")
    parser.add_argument("--filters-only", action="store_true", help="the workload's filters, not its extracts")
    parser.add_argument("--embeddings", action="store_true", help="record the documents' embeddings only")
    args = parser.parse_args()

    workload = OmegaConf.load(ROOT / "conf" / "workload" / f"{args.workload}.yaml")
    family = OmegaConf.load(ROOT / "conf" / "family" / f"{args.family}.yaml")
    # the relation the predicates read: the table itself, or (rotowire) its relational joins, one row per pair
    table = Workload.of(OmegaConf.to_container(workload, resolve=True)).relation(load_dataset(workload.dataset))
    if args.limit is not None:
        table = table.head(args.limit)
    extracts = [] if args.filters_only else workload.get("extracts") or []
    templates = [parse_template(f.template) for f in [*workload.filters, *extracts]]
    out = args.out or ROOT / "recordings" / f"{args.workload}.parquet"
    record_embeddings(table.df, templates, out.with_name(f"{out.stem}_embeddings.parquet"))
    if args.embeddings:
        return
    spec = FamilySpec.of(OmegaConf.to_container(family, resolve=True))
    source = operator_source(spec, "transformers")  # the family's operators on stored KV caches
    profiles = ProfileStore(default_cache_dir() / "profiles")
    step = args.chunk or len(table.df)
    chunks = [table.df.iloc[start : start + step] for start in range(0, len(table.df), step)]
    builds = BuildLog(out.with_name(f"{out.stem}_builds.csv"))
    began, recorded = time.perf_counter(), []
    for number, rows in enumerate(chunks):
        chunk_began = time.perf_counter()
        # offline, before any timing: the chunk's KV caches (their seconds are logged on their own, once)
        for identity, variants, stats in source.build_caches(templates, rows):
            print(f"{identity}: caches of {stats.documents} documents, {len(variants)} variant(s) "
                  f"({stats.built} built, {stats.seconds:.0f} s)")  # fmt: skip
            builds.add(number, identity, len(variants), stats)
        for identity in spec.identities:
            for template in templates:
                recorded.append(profiles.scores(rows, source.operator(template, identity)))
                mean = recorded[-1].records["seconds"].mean()
                print(f"  {identity} | {template.text[:50]}: {mean * 1000:.1f} ms/row")
        Profile.concat(recorded).save(out)  # the finished part is usable (replayed) after every chunk
        done, now = sum(map(len, chunks[: number + 1])), time.perf_counter()
        left = (len(chunks) - number - 1) * (now - chunk_began)  # at this chunk's pace (a resumed one is quick)
        print(f"chunk {number + 1}/{len(chunks)}: {done}/{len(table.df)} rows recorded in {out}, "
              f"{now - began:.0f} s so far, about {left / 60:.0f} min left at this chunk's pace")  # fmt: skip


class BuildLog:
    """The KV-cache build seconds of each chunk and model, as first measured, per document built (a resumed run,
    which finds the caches stored, keeps the first figures): `<recording>_builds.csv`."""

    COLUMNS = ("chunk", "model", "variants", "documents", "built", "seconds", "prefill_tokens", "seconds_per_document")

    def __init__(self, path: Path) -> None:
        self.path = path
        self.rows = pd.read_csv(path) if path.exists() else pd.DataFrame(columns=list(self.COLUMNS))

    def add(self, chunk: int, model: str, variants: int, stats: BuildStats) -> None:
        if ((self.rows["chunk"] == chunk) & (self.rows["model"] == model)).any() or stats.built == 0:
            return  # logged already, or resumed whole: nothing was built
        row = [chunk, model, variants, stats.documents, stats.built, round(stats.seconds, 3), stats.prefill_tokens,
               round(stats.seconds / stats.built, 4)]  # fmt: skip
        self.rows = pd.concat([self.rows, pd.DataFrame([row], columns=list(self.COLUMNS))], ignore_index=True)
        tmp = self.path.with_suffix(".tmp")
        self.rows.to_csv(tmp, index=False)
        tmp.replace(self.path)


def record_embeddings(rows, templates, out: Path) -> None:
    """Every document's embedding (the templates read one set of columns), built once and stored."""
    columns = {t.columns for t in templates}
    if len(columns) != 1:
        raise SystemExit(f"the workload's templates read different columns {sorted(columns)}: one set expected")
    embedder, columns = Embedder(), next(iter(columns))
    if out.exists():  # recorded already (a resumed run): kept as it is, with its first build seconds
        stored = EmbeddingTable.load(out)
        if stored.embedder == embedder.identity and stored.available(rows, columns) is not None:
            print(f"{out}: every document's embedding is recorded already")
            return
    embedded = EmbeddingTable.build(rows, columns, embedder, progress=True)
    embedded.save(out)
    per_doc = embedded.build_seconds.mean() * 1000
    print(f"wrote {out}: {len(embedded.keys)} documents, {per_doc:.1f} ms/document ({embedded.embedder})")


if __name__ == "__main__":
    main()
