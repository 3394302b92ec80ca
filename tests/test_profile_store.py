"""The profile store's integrity: every read verified, damaged files reported by name, removed and re-profiled."""

import logging

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from stretto.errors import ProfileError
from stretto.plan.template import Template
from stretto.profiling.operator import ScoredRows
from stretto.profiling.profile import Profile, ProfileStore, row_keys

TEMPLATE = Template("{text} is clearly positive")


class FakeOperator:
    """Deterministic scores, seconds, tokens and (extraction-like) values from the text; counts its calls."""

    template = TEMPLATE
    identity = "fake@1"

    def __init__(self) -> None:
        self.calls: list[int] = []

    def score(self, rows: pd.DataFrame, *, progress: bool = True) -> ScoredRows:
        self.calls.append(len(rows))
        n = np.array([len(t) for t in rows["text"]])
        values = tuple(None if i % 3 == 0 else f"value {t[-3:]}" for i, t in enumerate(rows["text"]))
        return ScoredRows((n / 7 - 2).astype(np.float32), n / 1000.0, (n * 2).astype(np.int64), 0, values)


def rows(n: int = 24) -> pd.DataFrame:
    return pd.DataFrame({"text": [f"review number {i} says {'good' if i % 2 else 'bad'} things" for i in range(n)]})


def stored(tmp_path):
    store, op, df = ProfileStore(tmp_path), FakeOperator(), rows()
    first = store.scores(df, op, progress=False)
    path = store.path(row_keys(df, TEMPLATE), TEMPLATE, op.identity)
    assert path.is_file() and op.calls == [24]
    return store, op, df, first, path


def assert_same(a: Profile, b: Profile) -> None:
    pd.testing.assert_frame_equal(a.records, b.records, check_exact=True)


def test_every_single_byte_flip_is_detected_or_changes_nothing(tmp_path):
    """Flip every byte of a profile file in turn: each read either fails with the file's name or returns exactly
    the stored contents; never silently different contents."""
    _, _, _, first, path = stored(tmp_path)
    clean = path.read_bytes()
    detected = 0
    for position in range(len(clean)):
        damaged = bytearray(clean)
        damaged[position] ^= 0x5A
        path.write_bytes(bytes(damaged))
        try:
            got = Profile.load(path, require_checksum=True)
        except ProfileError as err:
            assert str(path) in str(err), position
            detected += 1
            continue
        assert got.records.equals(first.records), position  # a flip in unused bytes (e.g. statistics)
        assert list(got.records.dtypes) == list(first.records.dtypes), position
    assert detected > len(clean) // 2


def test_store_reports_removes_and_reprofiles_flipped_files(tmp_path, caplog):
    """Through the store, for a seeded sample of flipped positions: either a warning naming the file, the file
    removed, re-profiled and stored whole again, or the stored answers read as they were."""
    store, op, df, first, path = stored(tmp_path)
    clean = path.read_bytes()
    detected = 0
    for position in np.random.default_rng(0).choice(len(clean), size=150, replace=False):
        damaged = bytearray(clean)
        damaged[position] ^= 0xFF
        path.write_bytes(bytes(damaged))
        calls = len(op.calls)
        caplog.clear()
        with caplog.at_level(logging.WARNING, logger="stretto.profiling.profile"):
            got = store.scores(df, op, progress=False)
        assert_same(got, first)  # what the caller receives is always right
        if len(op.calls) > calls:
            assert f"discarding stored profile {path}" in caplog.text, position
            assert_same(Profile.load(path, require_checksum=True), first)
            detected += 1
        else:
            assert not caplog.text, position
    assert detected > 50


def test_flipped_row_key_is_reported_removed_and_reprofiled(tmp_path, caplog):
    store, op, df, first, path = stored(tmp_path)
    data = path.read_bytes()
    key = first.records["row_key"].iloc[5].encode()
    at = data.index(key)  # Parquet stores the 16-hex-digit keys as plain bytes
    swapped = b"1" if key[:1] != b"1" else b"2"
    path.write_bytes(data[:at] + swapped + data[at + 1 :])
    with caplog.at_level(logging.WARNING):
        again = store.scores(df, op, progress=False)
    assert "does not match its checksum" in caplog.text and str(path) in caplog.text
    assert op.calls == [24, 24] and path.is_file()
    assert_same(again, first)
    assert_same(store.scores(df, op, progress=False), first)  # the rewritten file is whole: read, not re-profiled
    assert op.calls == [24, 24]


@pytest.mark.parametrize("damage", ["truncated", "empty", "not parquet", "no checksum", "other rows"])
def test_damaged_or_unverifiable_file_is_reported_removed_and_reprofiled(tmp_path, caplog, damage):
    store, op, df, first, path = stored(tmp_path)
    data = path.read_bytes()
    if damage == "truncated":
        path.write_bytes(data[: len(data) // 2])
    elif damage == "empty":
        path.write_bytes(b"")
    elif damage == "not parquet":
        path.write_bytes(b"not parquet")
    elif damage == "no checksum":  # written before profiles carried one: cannot be trusted
        first.records.to_parquet(path, index=False)
    else:  # whole and checksummed, but not the answers its name promises
        Profile(first.records.iloc[:3]).save(path)
    with caplog.at_level(logging.WARNING):
        again = store.scores(df, op, progress=False)
    assert f"discarding stored profile {path}" in caplog.text
    assert op.calls == [24, 24]
    assert_same(again, first)
    assert_same(Profile.load(path, require_checksum=True), first)


def test_load_names_the_file_and_the_reason(tmp_path):
    _, _, _, first, path = stored(tmp_path)
    data = bytearray(path.read_bytes())
    key = first.records["row_key"].iloc[0].encode()
    data[bytes(data).index(key)] ^= 0x01
    path.write_bytes(bytes(data))
    with pytest.raises(ProfileError, match=rf"profile {path} does not match its checksum"):
        Profile.load(path)
    path.write_bytes(bytes(data[:40]))
    with pytest.raises(ProfileError, match=rf"profile {path} is corrupt or not Parquet"):
        Profile.load(path)


def test_write_is_atomic_and_carries_only_our_checksum(tmp_path, monkeypatch):
    _, _, _, first, path = stored(tmp_path)
    clean = path.read_bytes()
    assert set(pq.read_schema(path).metadata) == {b"stretto.sha256"}

    def dies(table, where, **kw):
        with open(where, "wb") as f:
            f.write(b"half a file")
        raise OSError("disk full")

    monkeypatch.setattr(pq, "write_table", dies)
    with pytest.raises(OSError, match="disk full"):
        Profile(first.records.iloc[:3]).save(path)
    assert path.read_bytes() == clean and sorted(p.name for p in tmp_path.iterdir()) == [path.name]


def test_recordings_without_a_checksum_still_load(tmp_path):
    """Committed recordings predate checksums: read unverified unless a checksum is required (the store)."""
    _, _, _, first, path = stored(tmp_path)
    first.records.to_parquet(path, index=False)
    assert_same(Profile.load(path), first)
    with pytest.raises(ProfileError, match="carries no checksum"):
        Profile.load(path, require_checksum=True)


@pytest.mark.model
def test_real_profile_with_an_altered_score_or_key_is_reprofiled(qwen05, tmp_path, caplog):
    """A profile scored by the real Qwen 0.5B, altered as a flipped byte alters it (a score, a row key, keeping the
    old checksum), then truncated: each is reported by file name, removed and re-profiled to the same answers."""
    from stretto.backends.transformers_backend import TransformersBackend
    from stretto.data.datasets import load_dataset
    from stretto.operators.llm_filter import LLMFilter

    df = load_dataset("movie")["reviews"].df.drop_duplicates("reviewid").head(6)
    template = Template("{reviewtext} is clearly positive")
    op = LLMFilter(template, TransformersBackend(qwen05, batch_size=6))
    store = ProfileStore(tmp_path)
    first = store.scores(df, op, progress=False)
    path = store.path(row_keys(df, template), template, op.identity)
    clean = pq.read_table(path)

    def altered(column: str, value) -> None:
        table = clean.set_column(
            clean.schema.get_field_index(column),
            clean.schema.field(column),
            pa.array(
                [value if i == 2 else v for i, v in enumerate(clean.column(column).to_pylist())],
                clean.schema.field(column).type,
            ),
        )
        pq.write_table(table.replace_schema_metadata(clean.schema.metadata), path)  # the old checksum

    damages = [
        lambda: altered("score", -float(clean.column("score")[2].as_py())),
        lambda: altered("row_key", "0123456789abcdef"),
        lambda: path.write_bytes(path.read_bytes()[:-20]),
    ]
    for damage in damages:
        damage()
        caplog.clear()
        with caplog.at_level(logging.WARNING):
            again = store.scores(df, op, progress=False)
        assert f"discarding stored profile {path}" in caplog.text
        np.testing.assert_allclose(again.records["score"], first.records["score"], atol=1e-3)
        assert list(again.records["row_key"]) == list(first.records["row_key"])
        assert_same(Profile.load(path, require_checksum=True), again)


def record_scores_script():
    import importlib.util
    from pathlib import Path

    script = Path(__file__).resolve().parents[1] / "scripts" / "record_scores.py"
    spec = importlib.util.spec_from_file_location("record_scores", script)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_a_recording_measures_a_slowed_pass_again_with_the_same_answers(tmp_path):
    record_scores = record_scores_script()

    class Slowed(FakeOperator):
        """Its first answer on the third chunk takes five times as long (another job held the machine)."""

        def score(self, rows, *, progress=True):
            scored = super().score(rows, progress=progress)
            if len(self.calls) == 3:  # the third chunk's first measurement
                return ScoredRows(scored.scores, scored.seconds * 5, scored.tokens, 0, scored.values)
            return scored

    store, op, df = ProfileStore(tmp_path / "profiles"), Slowed(), rows(48)
    passes = record_scores.Passes(store, tmp_path / "retimed.csv")
    means = [passes.add(chunk, df.iloc[chunk * 8 : chunk * 8 + 8], op) for chunk in range(6)]
    slowed = means[2]
    assert slowed > 4 * np.median(means)  # the third pass was slowed
    passes.retime()
    again = [float(p.records["seconds"].mean()) for p in passes.profiles]
    assert again[2] == pytest.approx(slowed / 5) and again[:2] + again[3:] == means[:2] + means[3:]
    assert len(op.calls) == 7  # six passes, one measured again; the others kept
    kept = passes.profiles[2].records
    first = Profile.of_scores(row_keys(df.iloc[16:24], TEMPLATE), TEMPLATE, op.identity,
                              FakeOperator().score(df.iloc[16:24]))  # fmt: skip
    np.testing.assert_array_equal(kept["score"].to_numpy(), first.records["score"].to_numpy())
    logged = pd.read_csv(tmp_path / "retimed.csv")
    assert logged[["chunk", "operator"]].values.tolist() == [[2, "fake@1"]]
    assert logged["seconds_per_row_before"].iloc[0] == pytest.approx(slowed, abs=1e-4)


def test_a_recording_resumed_on_a_new_machine_reads_its_answers_back_from_the_committed_recording(tmp_path):
    """With an empty profile store (a fresh machine), the chunks the recording holds are not scored again: their
    answers and first seconds go into the store as they were; a chunk it lacks is reported as such."""
    record_scores = record_scores_script()
    op, df = FakeOperator(), rows(16)
    first = ProfileStore(tmp_path / "old").scores(df.iloc[:8], op, progress=False)
    recorded = Profile.load(first.save(tmp_path / "recording.parquet"))
    store = ProfileStore(tmp_path / "new")
    assert record_scores.seed(store, recorded, df.iloc[:8], TEMPLATE, op.identity)
    assert not record_scores.seed(store, recorded, df.iloc[8:], TEMPLATE, op.identity)  # never recorded
    assert not record_scores.seed(store, recorded, df.iloc[:8], TEMPLATE, "other@1")
    again = store.scores(df.iloc[:8], op, progress=False)
    assert op.calls == [8]  # the first recording's one call; nothing scored again
    assert_same(again, first)


def test_passes_read_back_from_a_recording_made_on_another_machine_are_not_called_slowed(tmp_path):
    """A resumed recording on a faster machine: the passes an earlier run measured on a slower one keep their
    seconds and are not re-measured; only this run's passes make the usual pass and can be called slowed."""
    record_scores = record_scores_script()

    class Slower(FakeOperator):
        def score(self, rows, *, progress=True):
            scored = super().score(rows, progress=progress)
            return ScoredRows(scored.scores, scored.seconds * 3, scored.tokens, 0, scored.values)

    slower, op, df = Slower(), FakeOperator(), rows(64)
    earlier = Profile.concat(ProfileStore(tmp_path / "old").scores(df.iloc[c * 8 : c * 8 + 8], slower, progress=False)
                             for c in range(4))  # fmt: skip
    store = ProfileStore(tmp_path / "new")
    passes = record_scores.Passes(store, tmp_path / "retimed.csv")
    for chunk in range(8):
        part = df.iloc[chunk * 8 : chunk * 8 + 8]
        if chunk < 4:
            assert record_scores.seed(store, earlier, part, TEMPLATE, op.identity)
        passes.add(chunk, part, op, judged=chunk >= 4)
    passes.retime()
    assert op.calls == [8] * 4  # only this run's four chunks were scored; none measured again
    assert not (tmp_path / "retimed.csv").exists()
    kept = [float(p.records["seconds"].mean()) for p in passes.profiles]
    assert min(kept[:4]) > 2.5 * max(kept[4:])  # the slower machine's seconds, as recorded


def test_one_machine_records_again_the_chunks_logged_on_another_and_logs_them_once_saved(tmp_path):
    """`--one-machine`: chunks built elsewhere (or never logged) are recorded again; a chunk's new row replaces the
    other machine's only when `save` runs (after the chunk's answers are in the recording), so an interrupted run
    records that chunk again when resumed."""
    record_scores = record_scores_script()
    here = record_scores.machine()
    path = tmp_path / "builds.csv"
    pd.DataFrame([[0, "m@1", 3, 8, 8, 4.0, 100, 0.5, f"not {here}"],  # another machine, whichever runs this
                  [1, "m@1", 3, 8, 8, 2.0, 100, 0.25, here]], columns=record_scores.BuildLog.COLUMNS
                 ).to_csv(path, index=False)  # fmt: skip
    log = record_scores.BuildLog(path)
    assert log.chunks_not_on(here, range(3)) == {0, 2}
    stats = record_scores.BuildStats(documents=8, built=8, seconds=1.6, prefill_tokens=100)
    log.add(0, "m@1", 3, stats, replace=True)
    assert record_scores.BuildLog(path).chunks_not_on(here, range(3)) == {0, 2}  # not saved yet: still AMD's
    log.save()
    saved = record_scores.BuildLog(path)
    assert saved.chunks_not_on(here, range(3)) == {2}
    assert saved.rows.loc[saved.rows["chunk"] == 0, "seconds_per_document"].tolist() == [0.2]
    log.add(1, "m@1", 3, record_scores.BuildStats(documents=8, built=0, seconds=0.0, prefill_tokens=0))
    assert len(record_scores.BuildLog(path).rows) == 2  # resumed whole on this machine: nothing new to log


def test_an_extract_slower_than_the_same_operators_filters_is_not_called_slowed(tmp_path):
    """An operator's usual pass is per predicate: decoding an extract costs it ~2x a filter's one step, on every
    chunk; judged against its filters' passes, every extract pass would be measured again for nothing."""
    record_scores = record_scores_script()

    class Extracting(FakeOperator):
        template = Template("the [sentiment] (positive/negative) of {text}")

        def score(self, rows, *, progress=True):
            scored = super().score(rows, progress=progress)
            return ScoredRows(scored.scores, scored.seconds * 2.2, scored.tokens, 0, scored.values)

    store, df = ProfileStore(tmp_path / "profiles"), rows(48)
    passes = record_scores.Passes(store, tmp_path / "retimed.csv")
    extract = Extracting()
    for chunk in range(6):
        part = df.iloc[chunk * 8 : chunk * 8 + 8]
        passes.add(chunk, part, FakeOperator())
        passes.add(chunk, part, extract)
    passes.retime()
    assert extract.calls == [8] * 6 and not (tmp_path / "retimed.csv").exists()


def test_a_remeasured_chunk_must_answer_as_recorded_and_be_a_chunk_of_the_recording(tmp_path):
    """`--remeasure N`: chunk N (as printed, from 1) is scored again on this machine for its seconds; the answers
    must be the recording's, else nothing is kept; a chunk number outside the recording is refused."""
    record_scores = record_scores_script()
    assert record_scores.chunk_indices([1, 3], 6) == {0, 2}
    with pytest.raises(ValueError, match=r"--remeasure \[0, 7\]: this recording has chunks 1..6"):
        record_scores.chunk_indices([0, 7, 2], 6)
    op, df = FakeOperator(), rows(16)
    recorded = ProfileStore(tmp_path / "a").scores(df, op, progress=False)
    again = ProfileStore(tmp_path / "b").scores(df.iloc[:8], op, progress=False)
    record_scores.same_answers(recorded, again, op.identity, 0)  # same answers: kept
    changed = Profile(again.records.assign(score=again.records["score"] + 1.0))
    with pytest.raises(SystemExit, match="fake@1 answered chunk 1 differently"):
        record_scores.same_answers(recorded, changed, op.identity, 0)
