"""Data parallelism: scaling with workers, and the exact solver against what a user would pick instead.

- ``DataParallelScaling``: parameter averaging (SGDClassifier) with 1 replica vs one per worker (2),
  on the same 2-worker cluster, same store, same held-out block (the store's last block).
- ``ExactLogistic``: ``ExactLogisticRegression`` reading from Zarr vs scikit-learn's in-memory
  ``LogisticRegression(lbfgs)`` (data loaded beforehand), ``dask_ml.linear_model.LogisticRegression``
  (on the first ``DASK_ML_ROWS`` rows only: it took ~9 min for 400k x 50 on this machine) and
  ``dask_ml.wrappers.Incremental(SGDClassifier)`` (one pass).

``track_*_accuracy`` is held-out accuracy, ``track_*_rows_per_s`` rows fitted per second,
``track_peak_worker_mib`` the largest worker RSS after the fits.
"""

from __future__ import annotations

import time

import numpy as np

from benchmarks.common import SCALE, cached_classification, client, scaled, worker_peak_memory

N_FEATURES = 50


def _split(store, n_test_blocks=1):
    from daskscale.storage.convert import as_data

    d = as_data(store, require_y=True)
    cut = d.n_rows - sum(d.row_chunks[-n_test_blocks:])
    train = as_data(d.X[:cut], d.y[:cut])
    return train, d.X[cut:].compute(), d.y[cut:].compute()


class DataParallelScaling:
    timeout = 900
    rows = 1_200_000

    def setup(self):
        store = cached_classification("par", scaled(self.rows, 2_000), N_FEATURES, chunk_rows=scaled(100_000, 200))
        self.train, self.Xte, self.yte = _split(store)
        self.client = client()

    def _fit(self, n):
        from sklearn.linear_model import SGDClassifier

        from daskscale.learn.parallel import ParameterAveraging

        return ParameterAveraging(SGDClassifier(alpha=1e-3, random_state=0), epochs=1, n_replicas=n, persist=False,
                                  random_state=0).fit(self.train)

    def time_average_1_worker(self):
        self._fit(1)

    def time_average_2_workers(self):
        self._fit(2)

    def track_accuracy_1_worker(self):
        return float(self._fit(1).estimator_.score(self.Xte, self.yte))

    def track_accuracy_2_workers(self):
        return float(self._fit(2).estimator_.score(self.Xte, self.yte))

    def track_rows_per_s_1_worker(self):
        m = self._fit(1)
        return m.n_rows_seen_ / m.fit_seconds_

    def track_rows_per_s_2_workers(self):
        m = self._fit(2)
        return m.n_rows_seen_ / m.fit_seconds_

    def track_peak_worker_mib(self):
        self._fit(2)
        return worker_peak_memory(self.client) / 2**20


class ExactLogistic:
    timeout = 1800
    rows = 400_000
    dask_ml_rows = 50_000

    def setup(self):
        self.store = cached_classification("exact", scaled(self.rows, 800), N_FEATURES, chunk_rows=scaled(50_000, 100))
        self.train, self.Xte, self.yte = _split(self.store)
        self.client = client()
        self.Xtr, self.ytr = self.train.X.compute(), self.train.y.compute()

    def _timed(self, fn):
        t = time.perf_counter()
        model = fn()
        return model, time.perf_counter() - t

    def _exact(self):
        from daskscale.learn.solvers import ExactLogisticRegression

        return ExactLogisticRegression(tol=1e-6).fit(self.train)

    def _sklearn(self):
        from sklearn.linear_model import LogisticRegression

        return LogisticRegression(max_iter=1000).fit(self.Xtr, self.ytr)

    def _dask_ml(self):
        import dask.array as da
        from dask_ml.linear_model import LogisticRegression

        n = min(scaled(self.dask_ml_rows, 200), len(self.Xtr))
        X = da.from_array(self.Xtr[:n], chunks=(max(n // 4, 1), N_FEATURES))
        y = da.from_array(self.ytr[:n], chunks=max(n // 4, 1))
        # at the test suite's tiny scale, cap dask-glm's ADMM (each iteration is several dask computes)
        return LogisticRegression(**({} if SCALE >= 0.05 else {"max_iter": 3})).fit(X, y)

    def _incremental(self):
        from dask_ml.wrappers import Incremental
        from sklearn.linear_model import SGDClassifier

        return Incremental(SGDClassifier(alpha=1e-3, random_state=0)).fit(self.train.X, self.train.y,
                                                                            classes=[0, 1])

    def _acc(self, model):
        est = getattr(model, "estimator_", model)
        return float(np.mean(np.asarray(est.predict(self.Xte)) == self.yte))

    def time_exact_from_zarr(self):
        self._exact()

    def time_sklearn_in_memory(self):
        self._sklearn()

    def time_dask_ml_logistic_subset(self):
        self._dask_ml()

    def time_dask_ml_incremental(self):
        self._incremental()

    def track_exact_accuracy(self):
        return self._acc(self._exact())

    def track_sklearn_accuracy(self):
        return self._acc(self._sklearn())

    def track_dask_ml_logistic_subset_accuracy(self):
        return self._acc(self._dask_ml())

    def track_dask_ml_incremental_accuracy(self):
        return self._acc(self._incremental())

    def track_exact_rows_per_s(self):
        _, t = self._timed(self._exact)
        return len(self.ytr) / t

    def track_sklearn_rows_per_s(self):
        _, t = self._timed(self._sklearn)
        return len(self.ytr) / t

    def track_dask_ml_logistic_subset_rows_per_s(self):
        _, t = self._timed(self._dask_ml)
        return min(scaled(self.dask_ml_rows, 200), len(self.ytr)) / t

    def track_dask_ml_incremental_rows_per_s(self):
        _, t = self._timed(self._incremental)
        return len(self.ytr) / t

    def track_peak_worker_mib(self):
        self._exact()
        return worker_peak_memory(self.client) / 2**20


class ExactLogisticSameRows:
    """dask-ml's LogisticRegression on *all* the training rows the exact solver sees (slow:
    kept apart from :class:`ExactLogistic`, whose dask-ml figure uses a subset)."""

    timeout = 1800
    rows = ExactLogistic.rows
    dask_ml_rows = 10**12  # i.e. every training row
    setup = ExactLogistic.setup
    _dask_ml = ExactLogistic._dask_ml
    _acc = ExactLogistic._acc

    def time_dask_ml_logistic_all_rows(self):
        self._dask_ml()

    def track_dask_ml_logistic_all_rows_accuracy(self):
        return self._acc(self._dask_ml())
