"""Stream sources: growing stores, folders of arriving files, iterators, replay."""

from __future__ import annotations

import os
import threading
import time

import numpy as np
import pandas as pd
import pytest

import daskscale
from daskscale.datasets.stream import stream_batches, stream_to_store
from daskscale.errors import SchemaError
from daskscale.online import DirectorySource, IteratorSource, ReplaySource, StoreSource, as_source
from daskscale.storage.append import append_rows, close_stream


def test_growing_store_reads_only_whole_committed_chunks(tmp_path):
    path = stream_to_store(tmp_path / "g.zarr", 1000, 3, batch_rows=500, chunk_rows=1000, close=False)
    src = StoreSource(path, follow=True, poll_interval=0.01)
    it = iter(src)
    assert [len(next(it))] == [1000]
    # half a chunk committed: a follower must not read it yet
    X, y = next(stream_batches(1500, 3, batch_rows=500, start=1000))
    append_rows(path, X, y)
    got = []
    reader = threading.Thread(target=lambda: got.extend(it), daemon=True)
    reader.start()
    time.sleep(0.3)
    assert got == [] and src.position == 1000
    append_rows(path, X + 1, y)  # completes the chunk
    time.sleep(0.3)
    assert [len(b) for b in got] == [1000]
    append_rows(path, X[:200], y[:200])  # a short tail: read once the stream is closed
    close_stream(path)
    reader.join(10)
    assert not reader.is_alive()
    assert [b.position for b in got] == [2000, 2200]
    np.testing.assert_array_equal(got[1].X, X[:200])


def test_follower_with_concurrent_writer_reads_every_row_once(tmp_path):
    path = tmp_path / "w.zarr"
    stream_to_store(path, 300, 4, batch_rows=300, chunk_rows=300, close=False)
    def write():
        for i, (X, y) in enumerate(stream_batches(3000, 4, batch_rows=300, start=300)):
            time.sleep(0.02)
            append_rows(path, X, y)
        close_stream(path)
    w = threading.Thread(target=write)
    w.start()
    batches = list(StoreSource(path, follow=True, poll_interval=0.01, batch_size=600))
    w.join()
    X = np.concatenate([b.X for b in batches])
    np.testing.assert_array_equal(X, daskscale.open_dataset(path).X.values)
    starts = [0] + [b.position for b in batches[:-1]]
    assert all(s % 300 == 0 for s in starts) and batches[-1].position == 3000


def test_follower_stops_after_idle_timeout(tmp_path):
    path = stream_to_store(tmp_path / "i.zarr", 100, 2, batch_rows=100, close=False)
    t = time.monotonic()
    assert [len(b) for b in StoreSource(path, follow=True, idle_timeout=0.3, poll_interval=0.05)] == [100]
    assert time.monotonic() - t < 5


def _csv(path, n=5, seed=0, n_features=3):
    rng = np.random.default_rng(seed)
    df = pd.DataFrame(rng.normal(size=(n, n_features)), columns=[f"f{i}" for i in range(n_features)])
    df["y"] = rng.integers(0, 2, n)
    df.to_csv(path, index=False)
    return df


def test_directory_reads_complete_files_once_in_name_order(tmp_path):
    a = _csv(tmp_path / "001.csv", seed=1)
    b = pd.DataFrame({"f0": [1.0], "f1": [2.0], "f2": [3.0], "y": [1]})
    b.to_parquet(tmp_path / "002.parquet")
    _csv(tmp_path / "003.csv.part", seed=3)  # still being written: ignored
    _csv(tmp_path / ".004.csv", seed=4)      # hidden temporary name: ignored
    src = DirectorySource(tmp_path, settle_seconds=0)
    got = list(src)
    assert [g.where for g in got] == ["001.csv", "002.parquet"]
    np.testing.assert_allclose(got[0].X, a[["f0", "f1", "f2"]].to_numpy(), rtol=1e-6)
    assert got[1].position == ["001.csv", "002.parquet"]
    os.rename(tmp_path / "003.csv.part", tmp_path / "003.csv")  # renamed into place: now complete
    assert [g.where for g in src] == ["003.csv"]
    assert list(src) == []  # nothing is read twice


def test_directory_waits_until_file_settles(tmp_path):
    _csv(tmp_path / "001.csv")
    assert list(DirectorySource(tmp_path, settle_seconds=60)) == []
    old = time.time() - 120
    os.utime(tmp_path / "001.csv", (old, old))
    assert len(list(DirectorySource(tmp_path, settle_seconds=60))) == 1


def test_directory_skips_and_counts_corrupt_files(tmp_path):
    _csv(tmp_path / "001.csv")
    (tmp_path / "002.parquet").write_bytes(b"PAR1 this is not parquet")
    pd.DataFrame({"f0": ["a"], "f1": ["b"], "f2": ["c"], "y": [0]}).to_csv(tmp_path / "003.csv", index=False)
    _csv(tmp_path / "004.csv", seed=4)
    src = DirectorySource(tmp_path, settle_seconds=0)
    assert [g.where for g in src] == ["001.csv", "004.csv"]
    assert [s["where"] for s in src.skipped] == ["002.parquet", "003.csv"]
    assert "non-numeric" in src.skipped[1]["reason"]
    assert src.position == ["001.csv", "002.parquet", "003.csv", "004.csv"]


def test_directory_source_rejects_missing_folder(tmp_path):
    with pytest.raises(SchemaError, match="not a directory"):
        DirectorySource(tmp_path / "nope")


def test_iterator_source_resumes_by_skipping_consumed_items():
    frames = [pd.DataFrame({"a": [float(i)], "y": [i % 2]}) for i in range(5)]
    src = IteratorSource(lambda: iter(frames))
    first = [b for _, b in zip(range(2), src)]
    assert [b.position for b in first] == [1, 2]
    again = IteratorSource(lambda: iter(frames), start=src.position)
    rest = list(again)
    assert [b.X[0, 0] for b in rest] == [2.0, 3.0, 4.0] and rest[-1].position == 5


def test_replay_source_paces_rows(tmp_path):
    small_store = stream_to_store(tmp_path / "r.zarr", 20_000, 4, batch_rows=5000)
    t = time.perf_counter()
    batches = list(ReplaySource(small_store, batch_size=5000, rate=40_000))
    took = time.perf_counter() - t
    assert [len(b) for b in batches] == [5000] * 4
    assert took >= 15_000 / 40_000  # the 4th batch is due 0.375 s after the first
    assert isinstance(as_source(small_store), StoreSource)
    with pytest.raises(SchemaError):
        as_source(small_store.parent / "missing")
