"""Out-of-core for real: a store larger than the training worker's memory limit.

The fit runs inside one task on a worker limited to 500 MiB (the nanny kills a worker at
95% of its limit) and reads a 560 MB store. The test is 1.07x the limit, not 4x: a 4x store
(2 GB) cannot be generated and trained in this suite's time budget on 2 cores. The 4x and
16x sizes are in ``benchmarks/bench_incremental.py`` (``IncrementalMemory``), where peak
worker memory is tracked as the data grows.
"""

from __future__ import annotations

import threading

import dask.array as da
import numpy as np
import psutil

import daskscale
from daskscale.learn import Incremental
from daskscale.storage import layout, write_store

LIMIT = 500 * 2**20
N_ROWS, N_FEATURES, CHUNK = 700_000, 200, 10_000  # 560 MB of float32 X, 8 MB blocks
W = np.random.default_rng(11).normal(size=N_FEATURES) / np.sqrt(N_FEATURES)


def _labels(X: np.ndarray, noise: np.ndarray) -> np.ndarray:
    return ((X @ W + 0.3 * noise.ravel()) > 0).astype(np.int8)


def _make_store(path) -> None:
    """Written by threads in the test process: only the *training* worker gets the tight limit."""
    import dask

    rng = da.random.default_rng(5)
    X = rng.standard_normal((N_ROWS, N_FEATURES), chunks=(CHUNK, N_FEATURES), dtype=np.float32)
    noise = rng.standard_normal(N_ROWS, chunks=CHUNK)
    y = da.map_blocks(lambda x, n: _labels(x, n), X, noise[:, None], drop_axis=1, dtype=np.int8)
    with dask.config.set(scheduler="threads"):
        write_store(path, X, y, attrs=layout.make_attrs(target="y", classes=[0, 1], n_rows=N_ROWS),
                    chunk_rows=CHUNK)


def test_store_larger_than_worker_memory_trains_to_the_end(tmp_path):
    from sklearn.linear_model import SGDClassifier

    store = tmp_path / "big.zarr"
    _make_store(store)
    assert daskscale.info(store).bytes_in_memory > LIMIT  # larger than the training worker may hold
    with daskscale.connect(n_workers=1, threads_per_worker=1, memory_limit=LIMIT, dashboard_address=None,
                           quiet=True) as conn:
        client = conn.client
        before = client.run(lambda: __import__("os").getpid())
        peak, stop = [0], threading.Event()

        def sample() -> None:
            while not stop.is_set():
                try:
                    peak[0] = max(peak[0], *client.run(lambda: psutil.Process().memory_info().rss).values())
                except Exception:  # noqa: BLE001 - the worker may be busy; sample again
                    pass
                stop.wait(0.1)

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        try:
            inc = Incremental(SGDClassifier(alpha=1e-4, random_state=0), epochs=1, validation_fraction=0,
                              random_state=0, where="worker", progress=False).fit(store)
        finally:
            stop.set()
            sampler.join()
        after = client.run(lambda: __import__("os").getpid())
        assert after == before  # same worker process: never restarted
        assert inc.history_.epochs[0]["rows"] == N_ROWS
        assert 0 < peak[0] < 0.95 * LIMIT, f"worker peaked at {peak[0] / 2**20:.0f} MiB"

    # the same estimator on the same rows, in memory, compared on fresh held-out rows
    # read with zarr in this process: no Dask worker has to hold the whole store
    import zarr

    X, y = zarr.open_array(str(store / "X"), mode="r")[:], zarr.open_array(str(store / "y"), mode="r")[:]
    mem = SGDClassifier(alpha=1e-4, random_state=0, max_iter=1, tol=None).fit(X, y)
    del X, y
    rng = np.random.default_rng(99)
    Xt = rng.standard_normal((50_000, N_FEATURES)).astype(np.float32)
    yt = _labels(Xt, rng.standard_normal(50_000))
    acc_stream, acc_mem = inc.score(Xt, yt), mem.score(Xt, yt)
    assert acc_mem > 0.8
    assert abs(acc_stream - acc_mem) <= 0.01, (acc_stream, acc_mem)
