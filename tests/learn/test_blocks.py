"""Block streaming: bounded read-ahead, prefetch overlap, seeded shuffles, batch sizes."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest

from daskscale.learn.blocks import (ArrayReader, ZarrReader, epoch_units, iter_blocks, mini_batches,
                                    split_blocks)


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


def test_next_block_is_read_while_the_current_one_trains():
    r = CountingReader(np.zeros((6, 1)), None, [1] * 6, delay=0.02)
    windows = []
    for i, _ in iter_blocks(r, range(6), max_in_flight=2):
        t0 = time.perf_counter()
        time.sleep(0.05)  # "training"
        windows.append((i, t0, time.perf_counter()))
    overlapped = [i for i, a, b in windows if i + 1 in r.starts and a <= r.starts[i + 1] <= b]
    assert len(overlapped) >= 3, (windows, r.starts)


def test_epoch_order_is_seeded_complete_and_changes_between_epochs():
    e0 = epoch_units(range(50), 0, seed=3)
    assert e0 == epoch_units(range(50), 0, seed=3)
    assert sorted(b for u in e0 for b in u) == list(range(50))
    assert e0 != epoch_units(range(50), 1, seed=3)
    assert e0 != epoch_units(range(50), 0, seed=4)
    grouped = epoch_units(range(7), 2, seed=3, group=3)
    assert [len(u) for u in grouped] == [3, 3, 1]


def test_batch_size_is_independent_of_block_size():
    rng = np.random.default_rng(0)
    for n in (10, 999, 5000):
        batches = mini_batches(n, 128, rng)
        assert sum(len(b) for b in batches) == n
        assert all(len(b) == 128 for b in batches[:-1]) and 0 < len(batches[-1]) <= 128
        assert sorted(np.concatenate(batches).tolist()) == list(range(n))
    shuffled = np.concatenate(mini_batches(100, 10, np.random.default_rng(1)))
    assert shuffled.tolist() != list(range(100))


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
