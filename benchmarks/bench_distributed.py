"""Distributed overheads: scheduler cost per block, speed-up with workers, TLS on vs off.

- ``SchedulerOverhead``: many tiny blocks, so the time is the scheduler's and the comms'
  (not the numerics'): a fused blockwise map-reduce (``daskscale.reduce`` with ``Moments``) and
  a data-parallel fit (``ParameterAveraging``, one round trip + merge per round). Reported as
  tasks/s and blocks/s, for 1, 2, 3 local worker processes, TLS off and on.
- ``Throughput``: the same map-reduce on blocks big enough that compute dominates; speed-up
  from 1 to 2 to 3 worker processes (the baseline is ``n_workers=1`` of the same class).

On a 2-core machine, 3 workers oversubscribe the cores: the figure shows what that costs.
"""

from __future__ import annotations

import time
from typing import Any

from benchmarks.common import CACHE, connected, scaled

def _client(n_workers: int, tls: bool) -> Any:
    """A local cluster of single-threaded worker processes, one layout at a time (the shared cache
    of :func:`benchmarks.common.connected`, which the benchmark smoke test closes after each module)."""
    return connected(n_workers=n_workers, threads_per_worker=1, memory_limit="1GiB",
                     security=True if tls else None, dashboard_address=None, quiet=True)


def _store(name: str, n_rows: int, n_features: int, chunk_rows: int, seed: int) -> Any:
    """A classification store under the benchmark cache, generated once by the current cluster."""
    from daskscale.datasets import make_classification
    from daskscale.storage import is_store

    path = CACHE / f"{name}-{n_rows}x{n_features}-c{chunk_rows}-s{seed}.zarr"
    if not is_store(path):
        make_classification(n_rows, n_features, chunk_rows=chunk_rows, seed=seed, store=path, overwrite=True)
    return path


def _n_tasks(data: Any, reducers: list, split_every: int = 8) -> int:
    """Tasks of one fused reduce: one per block, then the merge tree."""
    n, total = data.X.numblocks[0], 0
    total += n
    while n > 1:
        n = -(-n // split_every)
        total += n
    return total


class SchedulerOverhead:
    params = [[1, 2, 3], [False, True]]
    param_names = ["n_workers", "tls"]
    timeout = 900

    def setup(self, n_workers, tls):
        from daskscale.storage.convert import as_data

        self.client = _client(n_workers, tls)
        self.rows = scaled(400 * 250, 400)
        self.chunk = max(25, self.rows // 400)  # 400 blocks at full scale, 16 in the test run
        self.store = _store("overhead", self.rows, 8, self.chunk, seed=11)
        self.data = as_data(self.store)
        self.n_blocks = self.data.X.numblocks[0]

    def _map_reduce(self) -> None:
        from daskscale.reduce import Moments, reduce

        reduce(self.data, [Moments()])

    def _fit(self) -> Any:
        from sklearn.linear_model import SGDClassifier

        from daskscale.learn.parallel import ParameterAveraging

        return ParameterAveraging(SGDClassifier(random_state=0), epochs=1, merge_every=1, shuffle=False,
                                  persist=False, client=self.client).fit(self.data)

    def time_blockwise_map_reduce(self, n_workers, tls):
        self._map_reduce()

    def time_data_parallel_fit(self, n_workers, tls):
        self._fit()

    def track_map_reduce_tasks_per_s(self, n_workers, tls):
        t = time.perf_counter()
        self._map_reduce()
        return _n_tasks(self.data, []) / (time.perf_counter() - t)

    def track_fit_blocks_per_s(self, n_workers, tls):
        t = time.perf_counter()
        self._fit()
        return self.n_blocks / (time.perf_counter() - t)

    track_map_reduce_tasks_per_s.unit = "tasks/s"
    track_fit_blocks_per_s.unit = "blocks/s"


class Throughput:
    params = [[1, 2, 3]]
    param_names = ["n_workers"]
    timeout = 900

    def setup(self, n_workers):
        from daskscale.storage.convert import as_data

        self.client = _client(n_workers, False)
        rows = scaled(24 * 100_000, 2_400)
        self.store = _store("throughput", rows, 20, max(100, rows // 24), seed=5)
        self.data = as_data(self.store)
        self.mb = rows * 20 * 4 / 1e6

    def _map_reduce(self) -> None:
        from daskscale.reduce import Moments, reduce

        reduce(self.data, [Moments()])

    def time_map_reduce(self, n_workers):
        self._map_reduce()

    def track_map_reduce_mb_per_s(self, n_workers):
        t = time.perf_counter()
        self._map_reduce()
        return self.mb / (time.perf_counter() - t)

    track_map_reduce_mb_per_s.unit = "MB/s"
