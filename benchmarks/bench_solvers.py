"""Exact solvers: daskscale's ExactLogisticRegression against what a user would pick instead.

Per STYLE.md: the default cluster (``daskscale.connect()`` with no arguments: one single-threaded
worker per core, :func:`benchmarks.common.default_client`),
every estimator with its defaults; daskscale fits the training store (a path, read by the
workers), scikit-learn ``LogisticRegression()`` the same rows in memory (aligned), dask-ml's
``LogisticRegression`` the same rows as dask arrays on the same cluster. Params: rows (400k and
4M x 50 float32, scaled by ``DASKSCALE_BENCH_SCALE``) and conditioning (``"normal"``: features
N(0, 1); ``"badly-scaled"``: make_classification's unequal offsets and scales). The last block
is held out for the ``track_*_accuracy`` figures. ``track_peak_worker_mib`` is the largest
worker's kernel high-water mark during a daskscale fit; ``track_speedup_1_to_2_workers`` the
ratio of median fit times (3 each, alternating) on 1 and 2 workers.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from benchmarks.common import CACHE, SCALE, client, default_client, reset_worker_peaks, scaled, worker_peak_memory

N_FEATURES = 50
CHUNK = 100_000


def _store(rows: int, conditioning: str) -> tuple[str, np.ndarray, np.ndarray]:
    """``(training store path, held-out X, held-out y)``, generated once under the cache."""
    from daskscale.datasets import make_classification
    from daskscale.storage import is_store, layout, write_store

    n, chunk = scaled(rows, 2_000), scaled(CHUNK, 200)
    path = CACHE / f"solvers-{conditioning}-{n}x{N_FEATURES}-c{chunk}.zarr"
    held = Path(str(path) + ".heldout.npz")
    if not is_store(path) or not held.exists():
        client()
        X, y = make_classification(n, N_FEATURES, chunk_rows=chunk, seed=11)
        if conditioning == "normal":
            # the same labels' geometry on standardised features: N(0, 1) columns
            X = (X - X.mean(axis=0)) / X.std(axis=0)
            X = X.astype(np.float32)
        cut = n - chunk
        write_store(path, X[:cut].rechunk((chunk, N_FEATURES)), y[:cut].rechunk(chunk), chunk_rows=chunk,
                    attrs=layout.make_attrs(target="y", classes=[0, 1], n_rows=cut), overwrite=True)
        np.savez(held, X=np.asarray(X[cut:].compute()), y=np.asarray(y[cut:].compute()))
    h = np.load(held)
    return str(path), h["X"], h["y"]


class ExactLogistic:
    timeout = 3600
    params = ([400_000, 4_000_000], ["normal", "badly-scaled"])
    param_names = ["rows", "conditioning"]

    def setup(self, rows, conditioning):
        from daskscale.storage import load_xy
        from daskscale.storage.convert import aligned

        self.store, self.Xte, self.yte = _store(rows, conditioning)
        self.client = default_client()
        X, y = load_xy(self.store)
        # aligned: scikit-learn's L-BFGS runs ~8x slower on an unaligned array (a handicap the baseline must not carry)
        self.Xtr, self.ytr = aligned(np.asarray(X.compute())), aligned(np.asarray(y.compute()))
        self.Xd, self.yd = X, y

    def _daskscale(self):
        from daskscale.learn.solvers import ExactLogisticRegression

        return ExactLogisticRegression(progress=False).fit(self.store)

    def _sklearn(self):
        from sklearn.linear_model import LogisticRegression

        return LogisticRegression().fit(self.Xtr, self.ytr)

    def _dask_ml(self):
        from dask_ml.linear_model import LogisticRegression

        # at the test suite's tiny scale, cap dask-glm's iterations (each is several dask computes)
        return LogisticRegression(**({} if SCALE >= 0.05 else {"max_iter": 3})).fit(self.Xd, self.yd)

    def _acc(self, model):
        return float(np.mean(np.asarray(model.predict(self.Xte)) == self.yte))

    def time_daskscale_exact_from_store(self, rows, conditioning):
        self._daskscale()

    def time_sklearn_lbfgs_in_memory(self, rows, conditioning):
        self._sklearn()

    def time_dask_ml_logistic(self, rows, conditioning):
        self._dask_ml()

    def track_daskscale_accuracy(self, rows, conditioning):
        return self._acc(self._daskscale())

    def track_sklearn_accuracy(self, rows, conditioning):
        return self._acc(self._sklearn())

    def track_dask_ml_accuracy(self, rows, conditioning):
        return self._acc(self._dask_ml())

    def track_daskscale_iterations(self, rows, conditioning):
        return int(self._daskscale().n_iter_[0])

    def track_sklearn_iterations(self, rows, conditioning):
        return int(self._sklearn().n_iter_[0])

    def track_peak_worker_mib(self, rows, conditioning):
        reset_worker_peaks(self.client)
        self._daskscale()
        return worker_peak_memory(self.client) / 2**20

    def track_data_mib(self, rows, conditioning):
        return self.Xtr.nbytes / 2**20

    def track_speedup_1_to_2_workers(self, rows, conditioning):
        times = {1: [], 2: []}
        for _ in range(3):
            for n in (1, 2):
                client(n_workers=n)
                t = time.perf_counter()
                self._daskscale()
                times[n].append(time.perf_counter() - t)
        self.client = default_client()
        return float(np.median(times[1]) / np.median(times[2]))

    track_speedup_1_to_2_workers.unit = "x"


class SolverPlacement:
    """Where the one-task switch comes from (``FEW_WORKERS_TASK_BYTES`` on the default cluster
    of a 2-core machine): the same fit of N(0, 1) rows (19, 57 and 172 MB of training rows) run as ONE
    task (the switch raised for the run) and as blocks held on the workers, on the default
    cluster. ``track_placement_is_one_task`` says which path ran (1 or 0)."""

    timeout = 1800
    params = ([200_000, 400_000, 1_000_000], ["one-task", "persisted"])
    param_names = ["rows", "placement"]

    def setup(self, rows, placement):
        import daskscale.learn.solvers as solvers

        self.store, _, _ = _store(rows, "normal")
        self.client = default_client()
        self._switch = solvers.ONE_TASK_BYTES, solvers.FEW_WORKERS_TASK_BYTES
        if placement == "one-task":
            solvers.ONE_TASK_BYTES = solvers.FEW_WORKERS_TASK_BYTES = 2**50

    def teardown(self, rows, placement):
        import daskscale.learn.solvers as solvers

        solvers.ONE_TASK_BYTES, solvers.FEW_WORKERS_TASK_BYTES = self._switch

    def _fit(self, placement):
        from daskscale.learn.solvers import ExactLogisticRegression

        persist = "auto" if placement == "one-task" else True
        return ExactLogisticRegression(progress=False, persist=persist).fit(self.store)

    def time_fit(self, rows, placement):
        self._fit(placement)

    def track_placement_is_one_task(self, rows, placement):
        return int(self._fit(placement).placement_ == "one-task")
