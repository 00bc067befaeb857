"""Mini-batch throughput and memory: daskscale Incremental vs the in-memory limit vs dask-ml.

``IncrementalThroughput`` (same data, same SGDClassifier, one epoch, one worker with one
thread, all three variants in the same run):

- ``daskscale``: ``Incremental(where="worker")`` reading the Zarr store inside one worker task;
- ``inmemory_loop``: a plain Python loop of ``partial_fit`` over the same blocks already in
  memory of the benchmark process (no I/O, no task, no worker: the limit);
- ``dask_ml``: ``dask_ml.wrappers.Incremental`` on the store's dask arrays.

``track_*_rows_per_s`` report rows/s of each (median of three fits). ``setup`` runs each
variant once first, untimed, so no figure includes first-call imports. The 4M-row size shows
the throughput once the fixed cost of a fit (task submission, opening the store, the first
block read before any overlap) is spread over more blocks. ``IncrementalMemory`` tracks the
training worker's peak RSS while the data grows 1x -> 4x -> 16x (it should stay flat).

Measured on this machine (2 cores, under the shared CPU lock, ``DASKSCALE_BENCH_SCALE=1``,
medians of three fits, 2026-11-25):

========== ================= ================== ================= ========= ==========
rows       daskscale         in-memory loop     dask-ml           vs loop   vs dask-ml
========== ================= ================== ================= ========= ==========
1M         0.40 s, 2.5M/s    0.33 s, 3.0M/s     0.91 s, 1.1M/s    0.81x     2.3x
4M         1.30 s, 3.1M/s    1.26 s, 3.2M/s     3.35 s, 1.2M/s    0.97x     2.6x
========== ================= ================== ================= ========= ==========

The 1M ratio moves between 0.75x and 0.88x from run to run: daskscale needs both cores
(one trains, one reads the next block) and feels any other load, the loop needs one.
"""

from __future__ import annotations

import time

import numpy as np

from benchmarks.common import cached_classification, client, reset_worker_peaks, scaled, worker_peak_memory

N_FEATURES = 50


def _sgd():
    from sklearn.linear_model import SGDClassifier

    return SGDClassifier(alpha=1e-4, random_state=0)


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


class IncrementalThroughput:
    params = [1_000_000, 4_000_000]
    param_names = ["rows"]
    timeout = 900
    # one timed call per sample, each after ``setup``: then every timed dask-ml fit starts on a
    # scheduler that has forgotten the previous one (see _until_forgotten)
    number = 1

    def setup(self, rows):
        import daskscale

        if getattr(self, "_warm", None) != rows:  # asv calls setup before every sample: load and warm once
            self.rows = scaled(rows, 2000)
            self.store = cached_classification("inc", self.rows, N_FEATURES, chunk_rows=scaled(100_000, 500))
            # after the store exists: cached_classification may start (and switch to) another cluster
            self.cl = client(n_workers=1, threads_per_worker=1, memory_limit="3GiB")
            ds = daskscale.open_dataset(self.store)
            self.X, self.y = ds["X"].data, ds["y"].data
            self.blocks = [(np.asarray(self.X.blocks[i]), np.asarray(self.y.blocks[i]))
                           for i in range(self.X.numblocks[0])]
            for warm in (self._daskscale, self._inmemory_loop, self._dask_ml):  # imports, caches: untimed
                warm()
            self._warm = rows
        _until_forgotten(self.cl)

    def _daskscale(self):
        from daskscale.learn import Incremental

        Incremental(_sgd(), epochs=1, validation_fraction=0, random_state=0, where="worker", progress=False,
                    classes=[0, 1]).fit(self.store)

    def _inmemory_loop(self):
        est = _sgd()
        for X, y in self.blocks:
            est.partial_fit(X, y, classes=[0, 1])

    def _dask_ml(self):
        from dask_ml.wrappers import Incremental as DaskMLIncremental

        DaskMLIncremental(_sgd(), shuffle_blocks=True, random_state=0).fit(self.X, self.y, classes=[0, 1])

    def time_daskscale(self, rows):
        self._daskscale()

    def time_inmemory_loop(self, rows):
        self._inmemory_loop()

    def time_dask_ml(self, rows):
        self._dask_ml()

    def _rate(self, fn, repeat: int = 3):
        """Rows/s of the median of ``repeat`` fits (the same for every variant)."""
        seconds = []
        for _ in range(repeat):
            _until_forgotten(self.cl)
            t = time.perf_counter()
            fn()
            seconds.append(time.perf_counter() - t)
        return self.rows / float(np.median(seconds))

    def track_daskscale_rows_per_s(self, rows):
        return self._rate(self._daskscale)

    def track_inmemory_loop_rows_per_s(self, rows):
        return self._rate(self._inmemory_loop)

    def track_dask_ml_rows_per_s(self, rows):
        return self._rate(self._dask_ml)

    track_daskscale_rows_per_s.unit = "rows/s"
    track_inmemory_loop_rows_per_s.unit = "rows/s"
    track_dask_ml_rows_per_s.unit = "rows/s"


class IncrementalMemory:
    """Peak RSS of the training worker as the store grows; blocks stay 20 MB each."""

    params = [1, 4, 16]
    param_names = ["size"]
    timeout = 1800
    BASE_ROWS = 250_000  # 50 MB of float32 at 50 features; 16x = 800 MB

    def setup(self, size):
        self.store = cached_classification("incmem", scaled(self.BASE_ROWS * size, 2000), N_FEATURES,
                                           chunk_rows=scaled(100_000, 500))
        self.cl = client(n_workers=1, threads_per_worker=1, memory_limit="3GiB")

    def track_peak_worker_mib(self, size):
        from daskscale.learn import Incremental

        inc = Incremental(_sgd(), epochs=1, validation_fraction=0, random_state=0, where="worker",
                          progress=False, classes=[0, 1])
        peak, _ = _peak_rss_during(self.cl, lambda: inc.fit(self.store))
        return peak

    track_peak_worker_mib.unit = "MiB"
