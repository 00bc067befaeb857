"""The input boundary and block streaming: one Source per input, bounded read-ahead, prefetch
overlap, seeded shuffles, batch sizes, the per-process state."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest

from daskscale.engine.prefetch import epoch_units, iter_blocks, iter_units, mini_batches, split_blocks
from daskscale.engine.source import ArrayReader, DaskReader, Source, ZarrReader


class CountingReader(ArrayReader):
    """A real ArrayReader that records when each block read starts and how many are unconsumed."""

    def __init__(self, *a, delay=0.0, **k):
        super().__init__(*a, **k)
        self.delay, self.read_count, self.starts = delay, 0, {}
        self.lock = threading.Lock()

    def read(self, i):
        with self.lock:
            self.read_count += 1
            self.starts[i] = time.perf_counter()
        time.sleep(self.delay)
        return super().read(i)


@pytest.mark.parametrize("max_in_flight", [1, 2, 3])
def test_iter_blocks_holds_at_most_max_in_flight_blocks_ahead(max_in_flight):
    r = CountingReader(np.arange(40.0).reshape(20, 2), np.arange(20), [2] * 10)
    consumed, worst = 0, 0
    for i, (X, y) in iter_blocks(r, range(10), max_in_flight=max_in_flight):
        consumed += 1
        time.sleep(0.005)  # let the prefetch thread run as far ahead as it is allowed to
        worst = max(worst, r.read_count - consumed)
        assert X.shape == (2, 2) and y.tolist() == [2 * i, 2 * i + 1]
    assert consumed == 10
    assert worst <= max_in_flight


def test_units_are_joined_in_the_prefetch_thread_with_bounded_read_ahead():
    r = CountingReader(np.arange(40.0).reshape(20, 2), np.arange(20), [2] * 10)
    units = epoch_units(range(10), 0, seed=3, group=3)  # 3, 3, 3 and 1 blocks
    joined_by = []

    def join(unit, parts):
        joined_by.append(threading.current_thread().name)
        return np.concatenate([y for _, y in parts])

    consumed, worst = 0, 0
    for unit, y in iter_units(r, units, max_in_flight=2, join=join):
        consumed += len(unit)
        time.sleep(0.005)
        worst = max(worst, r.read_count - consumed)
        # the unit's rows, block by block in the unit's order
        assert y.tolist() == [v for i in unit for v in (2 * i, 2 * i + 1)]
    assert consumed == 10 and len(joined_by) == len(units)
    assert all(name.startswith("daskscale-prefetch") for name in joined_by)
    assert worst <= 3  # at most one whole unit (3 blocks) ahead of the one consumed


def test_a_store_with_a_separate_target_is_read_with_that_target(small_store):
    from daskscale.storage import load_xy

    X, y = load_xy(small_store)
    other = 1 - y.compute()  # not the store's own target
    own, given = Source.of(small_store), Source.of(small_store, other)
    assert own.kind == "store" and isinstance(own.reader, ZarrReader)
    assert given.kind == "dask" and not isinstance(given.reader, ZarrReader)
    a, b = given.rows(1)
    Xb, yb = given.read(1)
    np.testing.assert_array_equal(yb, other[a:b])
    np.testing.assert_array_equal(Xb, own.read(1)[0])


@pytest.mark.parametrize("k", [1, 2, 3])
def test_the_next_unit_is_read_while_the_current_one_trains(k):
    # reading a unit takes 10 ms a block; "training" on it takes longer: once the first unit is
    # in, the consumer should find every next one already read (no wait in next())
    r = CountingReader(np.zeros((12, 1)), None, [1] * 12, delay=0.02)
    units = epoch_units(range(12), 0, seed=None, shuffle=False, group=k)
    it = iter_units(r, units, max_in_flight=2)
    waits = []
    for _ in units:
        t = time.perf_counter()
        next(it)
        waits.append(time.perf_counter() - t)
        time.sleep(0.06 * k + 0.04)
    assert waits[0] >= 0.02 * k  # the first unit had to be read
    assert max(waits[1:]) < 0.01 * k, waits  # the others were read during training (else >= 0.02 k)


def test_next_block_is_read_while_the_current_one_trains():
    r = CountingReader(np.zeros((6, 1)), None, [1] * 6, delay=0.02)
    it = iter_blocks(r, range(6), max_in_flight=2)
    waits = []
    for _ in range(6):
        t = time.perf_counter()
        next(it)
        waits.append(time.perf_counter() - t)
        time.sleep(0.05)  # "training", longer than a read
    assert waits[0] >= 0.02 and max(waits[1:]) < 0.01, waits


def test_epoch_order_is_seeded_complete_and_changes_between_epochs():
    e0 = epoch_units(range(50), 0, seed=3)
    assert e0 == epoch_units(range(50), 0, seed=3)
    assert sorted(b for u in e0 for b in u) == list(range(50))
    assert e0 != epoch_units(range(50), 1, seed=3)
    assert e0 != epoch_units(range(50), 0, seed=4)
    grouped = epoch_units(range(7), 2, seed=3, group=3)
    assert [len(u) for u in grouped] == [3, 3, 1]


def test_batch_size_is_independent_of_block_size():
    for n in (10, 999, 5000):
        batches = mini_batches(n, 128)
        assert all(b.stop - b.start == 128 for b in batches[:-1]) and 0 < batches[-1].stop - batches[-1].start <= 128
        assert np.concatenate([np.arange(n)[b] for b in batches]).tolist() == list(range(n))  # each row once, in order
    assert mini_batches(100, None) == mini_batches(100, 500) == [slice(0, 100)]


def test_validation_split_is_by_whole_blocks():
    tr, va = split_blocks(20, 0.25, seed=1)
    assert len(va) == 5 and not set(tr) & set(va) and len(tr) + len(va) == 20
    assert split_blocks(1, 0.5, seed=1)[1].size == 0  # never hold out the only block


def test_zarr_reader_reads_the_store_blocks(small_store):
    import daskscale

    ds = daskscale.open_dataset(small_store)
    r = ZarrReader(small_store, ds["X"].data.chunks[0])
    X, y = r.read(2)
    np.testing.assert_array_equal(X, ds["X"].values[10_000:15_000])
    np.testing.assert_array_equal(y, ds["y"].values[10_000:15_000])


def _store(path, n_rows, chunk_rows, compressor="default"):
    import dask.array as da

    from daskscale.storage import layout, write_store

    X = da.random.default_rng(3).standard_normal((n_rows, 7), chunks=(chunk_rows, 7), dtype=np.float32)
    y = (X[:, 0] > 0).astype(np.int64)
    return write_store(path, X, y, attrs=layout.make_attrs(target="y", classes=[0, 1], n_rows=n_rows),
                       chunk_rows=chunk_rows, compressor=compressor)


@pytest.mark.parametrize("compressor", ["default", None, "zstd"])
def test_zarr_reader_blocks_equal_what_zarr_reads(tmp_path, compressor):
    """Whole chunks decoded from their files (blosc or raw) or read by zarr (other codecs, blocks
    that are not one chunk): the same arrays either way, the short last chunk included."""
    import zarr
    from zarr.codecs import ZstdCodec

    from daskscale.adapters.zarr import ChunkFile

    path = _store(tmp_path / "s.zarr", 1050, 200, ZstdCodec() if compressor == "zstd" else compressor)
    g = zarr.open_group(str(path), mode="r")
    assert (ChunkFile.of(g["X"]) is None) == (compressor == "zstd")  # zstd: zarr reads it
    for row_chunks in ([200] * 5 + [50], [300, 300, 300, 150]):  # the store's chunks; not its chunks
        r = ZarrReader(path, row_chunks)
        for i in range(r.n_blocks):
            a, b = r.rows(i)
            X, y = r.read(i)
            assert X.dtype == np.float32 and X.flags.c_contiguous
            np.testing.assert_array_equal(X, g["X"][a:b])
            np.testing.assert_array_equal(y, g["y"][a:b])


def test_zarr_reader_reopens_a_store_rewritten_at_the_same_path(tmp_path):
    """Opened stores are shared within a process (one open per worker, not per task); a store
    written anew at the same path is a new entry: its new shape and values are read."""
    import shutil

    import daskscale

    path = tmp_path / "same.zarr"
    rng = np.random.default_rng(1)
    first = rng.normal(size=(300, 4))
    daskscale.ingest(first, path, y=(first[:, 0] > 0).astype(int), chunk_rows=100)
    np.testing.assert_array_equal(ZarrReader(path, [100] * 3).read(1)[0], first[100:200].astype(np.float32))
    shutil.rmtree(path)
    second = rng.normal(size=(300, 6))
    daskscale.ingest(second, path, y=(second[:, 0] > 0).astype(int), chunk_rows=100)
    X, _ = ZarrReader(path, [100] * 3).read(1)
    assert X.shape == (100, 6)
    np.testing.assert_array_equal(X, second[100:200].astype(np.float32))


def test_read_ahead_slot_gives_the_block_asked_for_and_holds_one(small_store):
    from daskscale.engine.process import ProcessState

    proc = ProcessState()
    r = ZarrReader(small_store, [5_000] * 4)
    proc.read_ahead(r.block_key(1), lambda: r.read(1))
    X, y = proc.take_ahead(r.block_key(1)).result()
    np.testing.assert_array_equal(X, r.read(1)[0])
    np.testing.assert_array_equal(y, r.read(1)[1])
    assert proc.ahead_taken == 1
    proc.read_ahead(r.block_key(2), lambda: r.read(2))
    proc.read_ahead(r.block_key(3), lambda: r.read(3))  # a newer read-ahead replaces the older one
    assert proc.take_ahead(r.block_key(2)) is None  # replaced; and asking empties the slot
    assert proc.take_ahead(r.block_key(3)) is None and proc.ahead_taken == 1


def test_process_state_keeps_one_open_store_per_key_and_forgets_on_reset():
    from daskscale.engine.process import MAX_STORES, ProcessState

    proc, opened = ProcessState(), []
    for key in [("a",), ("a",), ("b",)] + [(i,) for i in range(MAX_STORES)]:
        proc.store(key, lambda key=key: opened.append(key) or key)
    assert opened.count(("a",)) == 1 and len(proc.stores) == MAX_STORES
    assert ("a",) not in proc.stores  # least recently used dropped first
    proc.reset()
    assert not proc.stores and proc.ahead_taken == 0


def test_source_of_in_memory_input_reads_blocks_without_the_cluster(client):
    """NumPy and pandas become an ArrayReader once (aligned, in this process); a dask array a
    DaskReader; the blocks are the rows asked for."""
    import dask.array as da
    import pandas as pd

    X = np.arange(40.0).reshape(10, 4)
    y = np.arange(10) % 2
    for given in (X, pd.DataFrame(X, columns=list("abcd"))):
        src = Source.of(given, y, chunk_rows=4)
        assert src.kind == "memory" and isinstance(src.reader, ArrayReader)
        assert src.n_blocks == 3 and src.rows(2) == (8, 10)
        np.testing.assert_array_equal(src.read(1)[0], X[4:8])
        np.testing.assert_array_equal(src.read(1)[1], y[4:8])
    src = Source.of(da.from_array(X, chunks=(5, 4)), y)
    assert src.kind == "dask" and src.n_blocks == 2
    np.testing.assert_array_equal(src.read(1)[0], X[5:])


def test_aligned_copies_only_an_unaligned_array():
    from daskscale.storage.convert import aligned

    raw = np.empty(70 * 4 + 1, dtype=np.uint8)
    odd = raw[1:].view(np.float32).reshape(10, 7)  # starts one byte past an aligned address
    odd[...] = np.arange(70, dtype=np.float32).reshape(10, 7)
    assert not odd.flags.aligned
    fixed = aligned(odd)
    assert fixed.flags.aligned and fixed is not odd
    np.testing.assert_array_equal(fixed, odd)
    assert aligned(fixed) is fixed  # an aligned array is never copied
    assert aligned(None) is None and aligned([1, 2]) == [1, 2]


def test_blocks_a_reader_receives_from_the_cluster_are_aligned(client):
    """Dask's distributed client rebuilds a received array over its message buffer, at times at
    an address unaligned for its dtype (scikit-learn then takes its slow paths: L-BFGS ran 4-8x
    slower). Each block here is put together on a worker from four source chunks and sent as
    one array, as a rechunked or derived block is: whatever alignment arrives, the reader hands
    out aligned blocks with the same values."""
    import dask.array as da

    src = da.random.default_rng(0).standard_normal((8_000, 7), chunks=(125, 7), dtype=np.float32)
    X = src.rechunk((500, 7))
    y = (X[:, 0] > 0).astype(np.int64)
    expected = src.compute(scheduler="sync")
    reader = DaskReader(X, y)
    for i in range(16):  # as received, about 1 array in 6 was unaligned here: some of these 32 are
        xb, yb = reader.read(i)
        assert xb.flags.aligned and yb.flags.aligned
        np.testing.assert_array_equal(xb, expected[i * 500:(i + 1) * 500])


def test_a_numpy_array_is_read_where_it_is_not_copied():
    X = np.arange(40.0).reshape(10, 4)
    src = Source.of(X, np.arange(10) % 2, chunk_rows=4)
    assert np.shares_memory(src.read(1)[0], X)  # a view of the caller's array: no second copy in memory
