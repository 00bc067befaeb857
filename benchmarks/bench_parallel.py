"""Data parallelism: scaling with workers (the exact solvers are in ``bench_solvers.py``).

- ``DataParallelScaling``: parameter averaging (SGDClassifier) with 1 replica vs one per worker (2),
  on the same 2-worker cluster, same store, same held-out rows (the store's last 10% of blocks).

Parameter averaging as users run it (``daskscale.connect()``, default parameters, beside
``Incremental``, dask-ml and scikit-learn) is measured in ``bench_incremental.DefaultCluster``.

``track_*_accuracy`` is held-out accuracy, ``track_*_rows_per_s`` rows fitted per second,
``track_peak_worker_mib`` the largest worker's peak resident memory during the fit (the kernel's
high-water mark, reset before it).
"""

from __future__ import annotations

import time

import numpy as np

from benchmarks.common import (cached_classification, client, held_out, reset_worker_peaks, scaled,
                               worker_peak_memory)

N_FEATURES = 50


class DataParallelScaling:
    """1 replica vs 2 (one per worker) on the same 2-worker cluster, store, held-out block.

    Params: ``merge_every`` (blocks per replica between merges) and ``sgd``: ``"plain"``
    ``SGDClassifier(alpha=1e-3)`` or ``"averaged"`` (``average=True``, averaged SGD, the usual
    choice for parameter averaging: one pass of plain SGD ends wherever its last steps put it,
    so 1 and 2 replicas differ by run-to-run noise of a point or so, while averaged SGD's
    iterates agree). ``track_speedup`` times 1 and 2 replicas alternately, five times each, in
    the same call and returns the ratio of the medians.
    """

    timeout = 900
    rows = 1_200_000
    params = ([1, 3], ["plain", "averaged"])
    param_names = ["merge_every", "sgd"]
    #: the cluster's monitoring (``daskscale.connect(lean_monitoring=...)``)
    lean_monitoring = True

    def setup(self, merge_every, sgd):
        store = cached_classification("par", scaled(self.rows, 2_000), N_FEATURES, chunk_rows=scaled(100_000, 200))
        train, self.Xte, self.yte = held_out(store)
        self.client = client(lean_monitoring=self.lean_monitoring)
        self.train = str(train)
        # asv runs every benchmark in a new process and cluster: one untimed fit of each kind
        # first (imports, the store's metadata on each worker), so no figure is of a cold start;
        # once per process (asv calls setup before every sample)
        if getattr(self, "_warm", None) != (merge_every, sgd):
            for n in (1, 2):
                self._fit(n, merge_every, sgd)
            self._warm = (merge_every, sgd)

    def _fit(self, n, merge_every, sgd):
        from sklearn.linear_model import SGDClassifier

        from daskscale.learn.parallel import ParameterAveraging

        est = SGDClassifier(alpha=1e-3, average=sgd == "averaged", random_state=0)
        return ParameterAveraging(est, epochs=1, n_replicas=n, merge_every=merge_every, persist=False,
                                  random_state=0).fit(self.train)

    def time_average_1_worker(self, merge_every, sgd):
        self._fit(1, merge_every, sgd)

    def time_average_2_workers(self, merge_every, sgd):
        self._fit(2, merge_every, sgd)

    def track_speedup(self, merge_every, sgd):
        times = {1: [], 2: []}
        for _ in range(5):
            for n in (1, 2):
                t = time.perf_counter()
                self._fit(n, merge_every, sgd)
                times[n].append(time.perf_counter() - t)
        return float(np.median(times[1]) / np.median(times[2]))

    def track_accuracy_1_worker(self, merge_every, sgd):
        return float(self._fit(1, merge_every, sgd).estimator_.score(self.Xte, self.yte))

    def track_accuracy_2_workers(self, merge_every, sgd):
        return float(self._fit(2, merge_every, sgd).estimator_.score(self.Xte, self.yte))

    def _rows_per_s(self, n, merge_every, sgd, repeat=3):
        """Rows/s of the median of ``repeat`` fits."""
        fits = [self._fit(n, merge_every, sgd) for _ in range(repeat)]
        return float(np.median([m.n_rows_seen_ / m.fit_seconds_ for m in fits]))

    def track_rows_per_s_1_worker(self, merge_every, sgd):
        return self._rows_per_s(1, merge_every, sgd)

    def track_rows_per_s_2_workers(self, merge_every, sgd):
        return self._rows_per_s(2, merge_every, sgd)

    def track_peak_worker_mib(self, merge_every, sgd):
        reset_worker_peaks(self.client)
        self._fit(2, merge_every, sgd)
        return worker_peak_memory(self.client) / 2**20

    def track_ceiling_speedup(self, merge_every, sgd):
        """This machine's ceiling: the fit's own task code (``_read_and_train``) run as one task
        on one worker vs two independent tasks (half the rows each, split as parameter averaging
        splits them) on two workers, no merging, no rounds. It ignores ``merge_every``. Whatever parameter averaging loses below
        this is its own overhead."""
        from sklearn.linear_model import SGDClassifier

        from dataclasses import replace

        from daskscale.engine.loop import TrainPlan
        from daskscale.engine.source import Source
        from daskscale.learn.parallel import _read_and_train, shard_units

        source = Source.of(self.train, require_y=True)
        plan = TrainPlan(kind="classifier", train=[], classes=[0, 1], shuffle=False, max_in_flight=1,
                         progressive=False)
        n = source.n_blocks
        workers = sorted(self.client.scheduler_info(n_workers=-1)["workers"])[:2]
        times = {1: [], 2: []}
        for _ in range(5):
            for k in (1, 2):
                t = time.perf_counter()
                # each task is one replica's whole shard as a single round: the fit's own task code
                est = SGDClassifier(alpha=1e-3, average=sgd == "averaged", random_state=0)
                self.client.gather([self.client.submit(_read_and_train, est, source.reader, replace(plan, train=units),
                                                       workers=[w], pure=False)
                                    for units, w in zip(shard_units(range(n), k), workers)])
                times[k].append(time.perf_counter() - t)
        return float(np.median(times[1]) / np.median(times[2]))

    track_speedup.unit = "x"
    track_ceiling_speedup.unit = "x"


class DataParallelScalingLarge(DataParallelScaling):
    """The same at 4M rows (36 training blocks of 100k, 720 MB), averaged SGD merged every 3
    blocks: the fixed cost of a fit (opening the store, the first task's start, the final
    merge) weighs less, so the speed-up comes closer to the machine's ceiling."""

    rows = 4_000_000
    params = ([3], ["averaged"])


class DataParallelScalingDaskMonitoring(DataParallelScalingLarge):
    """The baseline of the embedded cluster's lean monitoring (``daskscale.cluster.LEAN_MONITORING``):
    ``DataParallelScalingLarge``'s speed-up on a cluster with distributed's default profile
    sampling (10 ms) and event-loop checks (20 ms). Only the two speed-ups are run."""

    lean_monitoring = False
    time_average_1_worker = time_average_2_workers = None
    track_accuracy_1_worker = track_accuracy_2_workers = None
    track_rows_per_s_1_worker = track_rows_per_s_2_workers = track_peak_worker_mib = None

