"""One-pass ``describe`` against the same statistics computed by dask.array and by NumPy.

The same 8 statistics (count, missing, mean, std, min, max, skew, kurtosis) of every column:

- ``describe``: :func:`daskscale.describe` over the Zarr store: one fused task per chunk.
- ``dask``: separate ``dask.array`` calls (``da.nanmean(X, 0)``, ``da.nanstd``, ...,
  ``dask.array.stats.skew``) computed together with one ``dask.compute`` (shared reads).
- ``numpy``: the same NumPy/SciPy calls on the data already in memory (one core; the limit).

``track_*_gb_per_s`` report uncompressed bytes of ``X`` per second; ``track_*_tasks_per_chunk``
show the fused design (1 task per chunk) against the separate calls; ``DescribeOutOfCore``
tracks a worker's peak memory on a store 5x its memory limit. At scale 1 the store is
13M x 50 float32 = 2.6 GB.
"""

from __future__ import annotations

import time

import numpy as np

from benchmarks.common import cached_classification, client, reset_worker_peaks, scaled, worker_peak_memory

N_FEATURES = 50
STATS = ("count", "missing", "mean", "std", "min", "max", "skew", "kurtosis")


def _store() -> str:
    rows = scaled(13_000_000, 4_000)
    return str(cached_classification("reduce", rows, N_FEATURES, chunk_rows=min(250_000, max(1_000, rows // 8))))


def _dask_stats(X):
    import dask.array as da
    from dask.array import stats

    return (da.isfinite(X).sum(0), da.isnan(X).sum(0), da.nanmean(X, 0), da.nanstd(X, 0, ddof=1),
            da.nanmin(X, 0), da.nanmax(X, 0), stats.skew(X, axis=0), stats.kurtosis(X, axis=0))


def _numpy_stats(X):
    import scipy.stats

    return (np.isfinite(X).sum(0), np.isnan(X).sum(0), np.nanmean(X, 0, dtype=np.float64),
            np.nanstd(X, 0, ddof=1, dtype=np.float64), np.nanmin(X, 0), np.nanmax(X, 0),
            scipy.stats.skew(X, axis=0), scipy.stats.kurtosis(X, axis=0))


class DescribeZarr:
    timeout = 3600
    number = 1
    repeat = 3

    def setup_cache(self):
        return _store()

    def setup(self, path):
        import daskscale

        client(2, 1, "4GiB")
        self.path = path
        self.X = daskscale.load_xy(path)[0]
        self.gb = self.X.nbytes / 1e9
        self._np = None

    def _numpy_X(self):
        if self._np is None:
            # read in this process (threads), not gathered through a worker
            self._np = self.X.compute(scheduler="threads")
        return self._np

    def _describe(self):
        import daskscale

        return daskscale.describe(self.path, stats=STATS, quantiles=None)

    def _dask(self):
        import dask

        return dask.compute(*_dask_stats(self.X))

    def _numpy(self):
        return _numpy_stats(self._numpy_X())

    def _rate(self, f) -> float:
        t = time.perf_counter()
        f()
        return self.gb / (time.perf_counter() - t)

    def time_describe(self, path):
        self._describe()

    def time_dask_separate_calls(self, path):
        self._dask()

    def time_numpy_in_memory(self, path):
        self._numpy()

    def track_describe_gb_per_s(self, path):
        return self._rate(self._describe)

    def track_dask_gb_per_s(self, path):
        return self._rate(self._dask)

    def track_numpy_gb_per_s(self, path):
        self._numpy_X()  # loading is not part of the NumPy figure: the data is "already in memory"
        return self._rate(self._numpy)

    def track_describe_full_gb_per_s(self, path):
        """describe with quantiles, auto histograms (a min/max pass first) and correlation."""
        import daskscale

        return self._rate(lambda: daskscale.describe(self.path, bins="auto", correlation=True))

    def track_describe_tasks_per_chunk(self, path):
        from daskscale.reduce import Summary
        from daskscale.reduce.base import reduce_states

        graph = reduce_states(self.path, [Summary()], compute=False).__dask_graph__()
        return len(graph) / self.X.numblocks[0]

    def track_dask_tasks_per_chunk(self, path):
        import dask

        (opt,) = dask.optimize(_dask_stats(self.X))
        keys = set()
        for a in opt:
            keys |= set(dict(a.__dask_graph__()))
        return len(keys) / self.X.numblocks[0]

    track_describe_gb_per_s.unit = track_dask_gb_per_s.unit = track_numpy_gb_per_s.unit = "GB/s"
    track_describe_full_gb_per_s.unit = "GB/s"
    track_describe_tasks_per_chunk.unit = track_dask_tasks_per_chunk.unit = "tasks"


class DescribeOutOfCore:
    """Peak worker memory while describing a store 5x larger than a worker's memory limit."""

    timeout = 3600
    number = 1
    repeat = 1

    def setup_cache(self):
        return _store()

    def setup(self, path):
        from daskscale.storage import info

        self.limit = 500 * 2**20
        self.cl = client(2, 1, self.limit)
        self.ratio = info(path).bytes_in_memory / self.limit

    def track_store_to_worker_limit_ratio(self, path):
        return self.ratio

    def track_worker_peak_memory_mib(self, path):
        import daskscale

        reset_worker_peaks(self.cl)
        daskscale.describe(path, correlation=True)
        return worker_peak_memory(self.cl) / 2**20

    track_store_to_worker_limit_ratio.unit = "x"
    track_worker_peak_memory_mib.unit = "MiB"
