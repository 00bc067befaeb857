"""Mini-batch training as users meet it: the default cluster, default parameters, 4M rows.

``DefaultCluster`` (issue 19): 4,000,000 x 50 float32 rows in a store of 100k-row chunks, the
last 10% held out, one epoch of ``SGDClassifier(loss="log_loss", random_state=0)``. Every row of
the comparison is a method of that one class (``time_*`` and ``track_*_accuracy`` on the
held-out rows), so one ``asv run`` shows them side by side. Each method names the cluster it runs
on as its asv parameter, so ``setup`` starts only that one:

- ``connect()``: what ``daskscale.connect()`` starts with no arguments (here 2 single-threaded
  workers); every peer runs on it in its natural setup;
- ``in memory``: the limit, scikit-learn's ``partial_fit`` over the same blocks already in this
  process as aligned arrays (no I/O, no task);
- ``1 worker x 1 thread``: extra rows, the layout of the earlier suite, where dask-ml cannot read
  ahead on another worker.

``BiggerThanRAM`` (opt-in: ``DASKSCALE_BENCH_BIG=30`` for a 30 GB store; skipped otherwise)
compares dask-ml and daskscale ``Incremental`` alone, with rows/s and the largest worker's peak
memory. ``IncrementalMemory`` tracks that peak as the store grows 1x -> 16x (it should stay flat).

Reproduce the table of issue 19: ``asv run --bench bench_incremental.DefaultCluster``.
"""

from __future__ import annotations

import os
import time

import numpy as np

from benchmarks.common import (blocks_in_memory, cached_classification, client, connected, default_client, held_out,
                               reset_worker_peaks, scaled, worker_peak_memory)

N_FEATURES = 50
ROWS = 4_000_000
CHUNK_ROWS = 100_000
CLASSES = np.array([0, 1])
BIG_ENV = "DASKSCALE_BENCH_BIG"

DEFAULT = "connect()"
IN_MEMORY = "in memory"
ONE_WORKER = "1 worker x 1 thread"


def _sgd(**kw):
    from sklearn.linear_model import SGDClassifier

    return SGDClassifier(loss="log_loss", random_state=0, **kw)


def on(cluster: str):
    """Run the benchmark on ``cluster``: asv gives a benchmark function's own ``params`` to the
    class's ``setup``, which starts that cluster only (the smoke test does the same)."""
    def mark(fn):
        fn.params, fn.param_names = [cluster], ["cluster"]
        if fn.__name__.endswith("_accuracy"):
            fn.unit = "held-out accuracy"
        return fn
    return mark


def _n_tasks(dask_scheduler) -> int:
    return len(dask_scheduler.tasks)


def _until_forgotten(cl, timeout: float = 10.0) -> None:
    """Wait (untimed) until the scheduler holds no task.

    dask-ml names its tasks by hashing the estimator and the data, so a fit started while the
    previous identical fit's results are still being released would be served from them in
    milliseconds instead of training. Every dask-ml fit that is measured must start clean.
    """
    deadline = time.monotonic() + timeout
    while cl.run_on_scheduler(_n_tasks) and time.monotonic() < deadline:
        time.sleep(0.01)


def _peak_rss_during(cl, fn) -> tuple[float, object]:
    """Run ``fn``; return (the largest worker's peak resident MiB during it, its result).

    The kernel's high-water mark of each worker, reset just before: no peak is missed between
    samples (a 20 ms sampler missed peaks of over 95% of the limit in the out-of-core test).
    """
    reset_worker_peaks(cl)
    out = fn()
    return worker_peak_memory(cl) / 2**20, out


def _dask_ml(store: str, **kw):
    """dask-ml's natural setup: the store's arrays opened with ``da.from_zarr``, then ``fit``."""
    import dask.array as da
    from dask_ml.wrappers import Incremental

    X, y = da.from_zarr(store, component="X"), da.from_zarr(store, component="y")
    return Incremental(_sgd(**kw)).fit(X, y, classes=CLASSES).estimator_


def _incremental(store: str):
    from daskscale.learn import Incremental

    return Incremental(_sgd(), validation_fraction=0).fit(store).estimator_


def _averaging(store: str, sgd: dict | None = None, **kw):
    from daskscale.learn import ParameterAveraging

    return ParameterAveraging(_sgd(**(sgd or {})), **kw).fit(store).estimator_


class DefaultCluster:
    timeout = 1200
    # one timed call per sample, each after ``setup``: every timed dask-ml fit then starts on a
    # scheduler that has forgotten the previous one (see _until_forgotten); medians of >= 3
    number = 1
    repeat = (3, 5, 60.0)

    def setup(self, cluster):
        if getattr(self, "train", None) is None:  # asv calls setup before every sample: once per process
            full = cached_classification("defaults", scaled(ROWS, 2000), N_FEATURES,
                                         chunk_rows=scaled(CHUNK_ROWS, 500))
            train, self.Xte, self.yte = held_out(full)
            self.train = str(train)
        if cluster == IN_MEMORY:
            if getattr(self, "blocks", None) is None:
                self.blocks = blocks_in_memory(self.train)
            return
        # after the store exists: cached_classification may start (and switch to) another cluster
        self.cl = default_client() if cluster == DEFAULT else connected(n_workers=1, threads_per_worker=1)
        _until_forgotten(self.cl)

    def _sklearn_loop(self):
        est = _sgd()
        for X, y in self.blocks:
            est.partial_fit(X, y, classes=CLASSES)
        return est

    def _accuracy(self, model) -> float:
        return float(model.score(self.Xte, self.yte))

    # the limit: scikit-learn's partial_fit loop over the same blocks, in memory
    @on(IN_MEMORY)
    def time_sklearn_loop(self, cluster):
        self._sklearn_loop()

    @on(IN_MEMORY)
    def track_sklearn_loop_accuracy(self, cluster):
        return self._accuracy(self._sklearn_loop())

    # the peer: dask-ml Incremental over the store, same cluster
    @on(DEFAULT)
    def time_dask_ml(self, cluster):
        _dask_ml(self.train)

    @on(DEFAULT)
    def track_dask_ml_accuracy(self, cluster):
        return self._accuracy(_dask_ml(self.train))

    # daskscale Incremental from the store, defaults but for validation_fraction=0
    @on(DEFAULT)
    def time_incremental(self, cluster):
        _incremental(self.train)

    @on(DEFAULT)
    def track_incremental_accuracy(self, cluster):
        return self._accuracy(_incremental(self.train))

    # daskscale ParameterAveraging, defaults, on 1 worker and on every worker (2 here)
    @on(DEFAULT)
    def time_averaging_1_worker(self, cluster):
        _averaging(self.train, n_replicas=1)

    @on(DEFAULT)
    def track_averaging_1_worker_accuracy(self, cluster):
        return self._accuracy(_averaging(self.train, n_replicas=1))

    @on(DEFAULT)
    def time_averaging(self, cluster):
        _averaging(self.train)

    @on(DEFAULT)
    def track_averaging_accuracy(self, cluster):
        return self._accuracy(_averaging(self.train))

    # extra row: merged after every block (the default before merge_every="auto")
    @on(DEFAULT)
    def time_averaging_merge_every_1(self, cluster):
        _averaging(self.train, merge_every=1)

    @on(DEFAULT)
    def track_averaging_merge_every_1_accuracy(self, cluster):
        return self._accuracy(_averaging(self.train, merge_every=1))

    # extra row: averaged SGD merged every 3 blocks
    @on(DEFAULT)
    def time_averaging_asgd_merge_every_3(self, cluster):
        _averaging(self.train, dict(average=True), merge_every=3)

    @on(DEFAULT)
    def track_averaging_asgd_merge_every_3_accuracy(self, cluster):
        return self._accuracy(_averaging(self.train, dict(average=True), merge_every=3))

    # extra rows: one worker with one thread
    @on(ONE_WORKER)
    def time_dask_ml_1_worker_1_thread(self, cluster):
        _dask_ml(self.train)

    @on(ONE_WORKER)
    def track_dask_ml_1_worker_1_thread_accuracy(self, cluster):
        return self._accuracy(_dask_ml(self.train))

    @on(ONE_WORKER)
    def time_incremental_1_worker_1_thread(self, cluster):
        _incremental(self.train)

    @on(ONE_WORKER)
    def track_incremental_1_worker_1_thread_accuracy(self, cluster):
        return self._accuracy(_incremental(self.train))


class BiggerThanRAM:
    """Opt-in (``DASKSCALE_BENCH_BIG=<GB on disk>``, e.g. 30 on this 23 GB machine): dask-ml and
    daskscale ``Incremental`` alone, on the default cluster, over a store larger than memory
    (random floats barely compress: 208 bytes a row on disk). One epoch per figure; the store is
    generated once in the benchmark cache (``DASKSCALE_BENCH_CACHE``)."""

    timeout = 4 * 3600
    ROW_BYTES = N_FEATURES * 4 + 8  # float32 features, int64 label

    def setup_cache(self):
        gb = float(os.environ.get(BIG_ENV) or 0)
        if gb <= 0:
            return None
        rows = scaled(int(gb * 1e9 / self.ROW_BYTES), 2000)
        return str(cached_classification("big", rows, N_FEATURES, chunk_rows=scaled(CHUNK_ROWS, 500)))

    setup_cache.timeout = 8 * 3600

    def setup(self, store):
        if store is None:  # asv skips a benchmark whose setup raises NotImplementedError
            raise NotImplementedError(f"opt-in: set {BIG_ENV}=<GB on disk> (e.g. 30) to run it")
        import zarr

        self.rows = int(zarr.open_group(store, mode="r")["X"].shape[0])
        self.cl = default_client()
        _until_forgotten(self.cl)

    def _rows_per_s(self, fit, store) -> float:
        t = time.perf_counter()
        fit(store)
        return self.rows / (time.perf_counter() - t)

    def track_incremental_rows_per_s(self, store):
        return self._rows_per_s(_incremental, store)

    def track_dask_ml_rows_per_s(self, store):
        return self._rows_per_s(_dask_ml, store)

    def track_incremental_peak_worker_mib(self, store):
        return _peak_rss_during(self.cl, lambda: _incremental(store))[0]

    def track_dask_ml_peak_worker_mib(self, store):
        return _peak_rss_during(self.cl, lambda: _dask_ml(store))[0]

    track_incremental_rows_per_s.unit = track_dask_ml_rows_per_s.unit = "rows/s"
    track_incremental_peak_worker_mib.unit = track_dask_ml_peak_worker_mib.unit = "MiB"


class IncrementalMemory:
    """Peak RSS of the training worker as the store grows; blocks stay 20 MB each."""

    params = [1, 4, 16]
    param_names = ["size"]
    timeout = 1800
    BASE_ROWS = 250_000  # 50 MB of float32 at 50 features; 16x = 800 MB

    def setup(self, size):
        self.store = cached_classification("incmem", scaled(self.BASE_ROWS * size, 2000), N_FEATURES,
                                           chunk_rows=scaled(CHUNK_ROWS, 500))
        self.cl = client(n_workers=1, threads_per_worker=1, memory_limit="3GiB")

    def track_peak_worker_mib(self, size):
        from daskscale.learn import Incremental

        inc = Incremental(_sgd(), epochs=1, validation_fraction=0, random_state=0, where="worker",
                          progress=False, classes=CLASSES)
        peak, _ = _peak_rss_during(self.cl, lambda: inc.fit(self.store))
        return peak

    track_peak_worker_mib.unit = "MiB"
