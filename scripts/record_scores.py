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
build seconds, measured before any scoring, go to <recording>_builds.csv. `--filters-only` leaves the extracts out,
`--extracts NAME ...` keeps only those (a later run without it adds the others: what is recorded is read back from
the profile store).

The recorded seconds are what the replay charges, so they must be the operators' own: record on an otherwise idle
machine. A pass (one operator answering one predicate on one chunk) slower per row than SLOWED x its operator's
usual pass on that predicate (its lower quartile) was slowed by something else (another job, a paused process) and
is measured again after the chunk, its answers checked to be the very same; each such pass is logged to
<recording>_retimed.csv. A resumed run checks the passes already recorded the same way. Two CPUs give different
seconds (and different last bits of the same fp32 answers): `--one-machine` records again, on this machine, each
chunk the builds log names another machine for (caches, every pass), so that a recording begun on one machine and
finished on another becomes one machine's; resumable like any run (a chunk is logged as this machine's once its
answers are saved).
`--remeasure N ...` scores chunks N (numbered as printed) again on this machine for their seconds, keeping their
KV-cache builds: for a chunk measured while other work ran, before a later run could judge it against its usual
passes; the answers must come out the very same, else the run stops and the recording keeps the old ones.
"""

from __future__ import annotations

import argparse
import os
import platform
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
from stretto.profiling.profile import COLUMNS, Profile, ProfileError, ProfileStore, row_keys

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
    named = "only these extracts, by their [output] name (a later run without it adds the others)"
    parser.add_argument("--extracts", nargs="+", default=None, metavar="NAME", help=named)
    one_machine = "record again, on this machine, each chunk the builds log does not name it for"
    parser.add_argument("--one-machine", action="store_true", help=one_machine)
    remeasure = (
        "score these chunks (numbered as printed, from 1) again on this machine, keeping their KV-cache builds: a "
        "chunk measured while other work ran; the answers must come out the same"
    )
    parser.add_argument("--remeasure", type=int, nargs="+", default=[], metavar="CHUNK", help=remeasure)
    args = parser.parse_args()

    workload = OmegaConf.load(ROOT / "conf" / "workload" / f"{args.workload}.yaml")
    family = OmegaConf.load(ROOT / "conf" / "family" / f"{args.family}.yaml")
    # the relation the predicates read: the table itself, or (rotowire) its relational joins, one row per pair
    table = Workload.of(OmegaConf.to_container(workload, resolve=True)).relation(load_dataset(workload.dataset))
    if args.limit is not None:
        table = table.head(args.limit)
    try:  # a misspelt extract or a chunk the recording lacks stops here, exit 2, before any model loads
        extracts = [] if args.filters_only else chosen(workload.get("extracts") or [], args.extracts)
        step = args.chunk or len(table.df)
        rescored = chunk_indices(args.remeasure, -(-len(table.df) // step))
    except ValueError as err:
        parser.error(str(err))
    templates = [parse_template(f.template) for f in [*workload.filters, *extracts]]
    out = args.out or ROOT / "recordings" / f"{args.workload}.parquet"
    record_embeddings(table.df, templates, out.with_name(f"{out.stem}_embeddings.parquet"))
    if args.embeddings:
        return
    spec = FamilySpec.of(OmegaConf.to_container(family, resolve=True))
    source = operator_source(spec, "transformers")  # the family's operators on stored KV caches
    profiles = ProfileStore(default_cache_dir() / "profiles")
    chunks = [table.df.iloc[start : start + step] for start in range(0, len(table.df), step)]
    builds = BuildLog(out.with_name(f"{out.stem}_builds.csv"))
    began, passes = time.perf_counter(), Passes(profiles, out.with_name(f"{out.stem}_retimed.csv"))
    recorded = Profile.load(out) if out.exists() else Profile.empty()  # a resumed run, maybe on a new machine
    # --one-machine: the chunks an earlier run recorded on another machine are built and scored again here
    again = builds.chunks_not_on(machine(), range(len(chunks))) if args.one_machine else set()
    for number, rows in enumerate(chunks):
        chunk_began = time.perf_counter()
        # each pass the committed recording holds is read back as it was (measured by an earlier run, maybe on
        # another machine: not judged by this run's usual pass), e.g. the filters of a run that adds the extracts
        seeded = {(t.text, i): number not in again | rescored and seed(profiles, recorded, rows, t, i)
                  for t in templates for i in spec.identities}  # fmt: skip
        complete = all(seeded.values())
        if complete:
            print(f"chunk {number + 1}/{len(chunks)}: every answer is in {out} already")
        else:  # offline, before any timing: the chunk's KV caches (their seconds are logged on their own, once)
            for identity, variants, stats in source.build_caches(templates, rows):
                print(f"{identity}: caches of {stats.documents} documents, {len(variants)} variant(s) "
                      f"({stats.built} built, {stats.seconds:.0f} s)")  # fmt: skip
                builds.add(number, identity, len(variants), stats, replace=number in again)
        for identity in spec.identities:
            for template in templates:
                judged, operator = not seeded[template.text, identity], source.operator(template, identity)
                if number in again | rescored:
                    profiles.forget(rows, operator)  # the store may hold the recording's answers (seeded earlier)
                mean = passes.add(number, rows, operator, judged=judged)
                if number in rescored:
                    same_answers(recorded, passes.profiles[-1], operator.identity, number)
                if judged:
                    print(f"  {identity} | {template.text[:50]}: {mean * 1000:.1f} ms/row")
        if complete:
            continue
        passes.retime()
        # the finished part is usable (replayed) after every chunk; rows this run does not cover (--limit) are kept
        Profile.concat([recorded, *passes.profiles]).save(out)
        builds.save()  # after the recording: a chunk recorded again is this machine's once its answers are
        done, now = sum(map(len, chunks[: number + 1])), time.perf_counter()
        left = (len(chunks) - number - 1) * (now - chunk_began)  # at this chunk's pace (a resumed one is quick)
        print(f"chunk {number + 1}/{len(chunks)}: {done}/{len(table.df)} rows recorded in {out}, "
              f"{now - began:.0f} s so far, about {left / 60:.0f} min left at this chunk's pace")  # fmt: skip


def chunk_indices(numbers: list[int], count: int) -> set[int]:
    """The chunks numbered as printed (1..count) as 0-based indices; a clear error for any other number."""
    wrong = [n for n in numbers if not 1 <= n <= count]
    if wrong:
        raise ValueError(f"--remeasure {wrong}: this recording has chunks 1..{count} at this --chunk size")
    return {n - 1 for n in numbers}


def same_answers(recorded: Profile, again: Profile, identity: str, chunk: int) -> None:
    """A chunk scored again on this machine gives the recording's answers (fp32: the very same), only new seconds."""
    keys = again.records.drop_duplicates(["row_key", "template"]).set_index(["row_key", "template"])["score"]
    mine = recorded.records[recorded.records["operator"] == identity]
    before = mine.drop_duplicates(["row_key", "template"]).set_index(["row_key", "template"])["score"]
    if not before.reindex(keys.index).equals(keys):
        raise SystemExit(f"{identity} answered chunk {chunk + 1} differently when scored again: not re-measured")


def chosen(extracts: list, names: list[str] | None) -> list:
    """The workload's extracts named on the command line (all of them when none is)."""
    if names is None:
        return list(extracts)
    outputs = {parse_template(e.template).output: e for e in extracts}
    if unknown := sorted(set(names) - set(outputs)):
        raise ValueError(f"--extracts: no extract named {unknown} in the workload; its extracts are {sorted(outputs)}")
    return [outputs[name] for name in names]


def seed(store: ProfileStore, recorded: Profile, rows: pd.DataFrame, template, identity: str) -> bool:
    """Put the recording's answers of one operator on these rows into the profile store (where a resumed run reads
    them, with their first seconds); False where the recording lacks any of them. The committed recording is the
    authority: it replaces what the store holds (answers measured on another machine differ in the last bits)."""
    keys = row_keys(rows, template)
    path = store.path(keys, template, identity)
    try:
        found = recorded.lookup(keys, template, identity)
    except ProfileError:
        return False
    records = found.reset_index().drop_duplicates("row_key").assign(template=template.text, operator=identity)
    Profile(records[list(COLUMNS)]).save(path)
    return True


#: A pass (one operator answering one predicate on one chunk) slower per row than this times the operator's usual
#: pass on that predicate (the lower quartile of its passes: something else on the machine only ever slows a pass,
#: so the median of a recording made beside other jobs is itself slowed) was slowed by another job or a paused
#: process: it is measured again, so the recorded seconds are the operator's own. The answers come out the same (fp32,
#: deterministic); only seconds change.
SLOWED = 1.25


class Passes:
    """Every pass of the recording so far, measured through the profile store, and the re-measuring of slowed ones
    (each logged to `<recording>_retimed.csv`: chunk, operator, template, the seconds per row before and after)."""

    def __init__(self, profiles: ProfileStore, log_path: Path, tries: int = 2) -> None:
        self.store, self.log_path, self.tries = profiles, log_path, tries
        self.items: list[tuple[int, pd.DataFrame, object, Profile]] = []
        self.judged: list[bool] = []

    @property
    def profiles(self) -> list[Profile]:
        return [profile for *_, profile in self.items]

    def add(self, chunk: int, rows: pd.DataFrame, operator, *, judged: bool = True) -> float:
        """One pass, scored or read back from the store. `judged=False`: read back from the committed recording,
        measured by an earlier run, maybe on another machine: kept as it is, and not part of this run's usual pass
        (a faster machine would otherwise call every pass of a slower one slowed)."""
        self.items.append((chunk, rows, operator, self.store.scores(rows, operator)))
        self.judged.append(judged)
        return float(self.items[-1][3].records["seconds"].mean())

    def retime(self) -> None:
        """Measure again each pass slower than SLOWED x its usual pass (at most `tries` times a run)."""
        for _ in range(self.tries):
            slowed = self._slowed()
            if not slowed:
                return
            for i, usual in slowed:
                chunk, rows, operator, profile = self.items[i]
                before = float(profile.records["seconds"].mean())
                self.store.forget(rows, operator)
                again = self.store.scores(rows, operator)
                answers = [p.records.set_index("row_key")["score"].sort_index() for p in (profile, again)]
                if not answers[0].equals(answers[1]):  # fp32 on the same machine: the very same answers
                    raise SystemExit(f"{operator.identity} answered chunk {chunk} differently when measured again")
                self.items[i] = (chunk, rows, operator, again)
                after = float(again.records["seconds"].mean())
                print(f"  re-measured {operator.identity} | {operator.template.text[:50]} on chunk {chunk}: "
                      f"{before * 1000:.1f} -> {after * 1000:.1f} ms/row (usual {usual * 1000:.1f})")  # fmt: skip
                self._log(chunk, operator, before, after, usual)

    def _slowed(self) -> list[tuple[int, float]]:
        means = pd.DataFrame(  # an operator's usual pass per predicate: an extract's decoding costs ~2x a filter's
            [((op.identity, op.template.text), float(p.records["seconds"].mean())) for _, _, op, p in self.items],
            columns=["op", "s"],
        )[self.judged]
        usual = means.groupby("op")["s"].transform(lambda s: s.quantile(0.25))
        enough = means.groupby("op")["s"].transform("size") >= 4  # a quartile of a few passes says little
        slowed = enough & (means["s"] > SLOWED * usual)
        return [(int(i), float(usual[i])) for i in slowed.index[slowed]]

    def _log(self, chunk: int, operator, before: float, after: float, usual: float) -> None:
        row = pd.DataFrame([{"chunk": chunk, "operator": operator.identity, "template": operator.template.text,
                             "seconds_per_row_before": round(before, 4), "seconds_per_row_after": round(after, 4),
                             "usual_pass": round(usual, 4)}])  # fmt: skip
        logged = pd.concat([pd.read_csv(self.log_path), row]) if self.log_path.exists() else row
        tmp = self.log_path.with_suffix(".tmp")
        logged.to_csv(tmp, index=False)
        tmp.replace(self.log_path)


class BuildLog:
    """The KV-cache build seconds of each chunk and model, as first measured, per document built (a resumed run,
    which finds the caches stored, keeps the first figures): `<recording>_builds.csv`."""

    COLUMNS = ("chunk", "model", "variants", "documents", "built", "seconds", "prefill_tokens", "seconds_per_document",
               "machine")  # fmt: skip

    def __init__(self, path: Path) -> None:
        self.path = path
        self.rows = pd.read_csv(path) if path.exists() else pd.DataFrame(columns=list(self.COLUMNS))

    def chunks_not_on(self, this: str, chunks) -> set[int]:
        """The chunks whose caches were built on another machine, or whose builds were never logged."""
        return {c for c in chunks if set(self.rows.loc[self.rows["chunk"] == c, "machine"]) != {this}}

    def add(self, chunk: int, model: str, variants: int, stats: BuildStats, *, replace: bool = False) -> None:
        """Log a chunk's builds; `replace`: the chunk is recorded again on this machine (its row says so even where
        the caches were found stored: built 0, no seconds), written by `save` once the chunk's answers are."""
        logged = (self.rows["chunk"] == chunk) & (self.rows["model"] == model)
        if replace:
            self.rows = self.rows[~logged]
        elif logged.any() or stats.built == 0:
            return  # logged already, or resumed whole: nothing was built
        per_document = round(stats.seconds / stats.built, 4) if stats.built else float("nan")
        row = [chunk, model, variants, stats.documents, stats.built, round(stats.seconds, 3), stats.prefill_tokens,
               per_document, machine()]  # fmt: skip
        self.rows = pd.concat([self.rows, pd.DataFrame([row], columns=list(self.COLUMNS))], ignore_index=True)
        if not replace:
            self.save()

    def save(self) -> None:
        tmp = self.path.with_suffix(".tmp")
        self.rows.to_csv(tmp, index=False)
        tmp.replace(self.path)


def machine() -> str:
    """The CPU this run measures on (its seconds are that machine's: a chunk is built and scored on one)."""
    cpuinfo = Path("/proc/cpuinfo")  # Linux, as every recording so far; platform.processor() is often empty
    lines = cpuinfo.read_text().splitlines() if cpuinfo.exists() else []
    names = [line.split(":", 1)[1].strip() for line in lines if line.startswith("model name")]
    return f"{names[0] if names else platform.machine()} ({os.cpu_count()} cores)"


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
