"""Model parallelism by members: one-vs-rest classes and bagged ensembles, one member per task.

Each member (a class's binary model, or a bagging member on a subsample of the row blocks) is
fitted by one task pinned to a worker, round-robin over the cluster, so the members train at the
same time on different workers. The row blocks a member needs are read on the worker that
fits it; only fitted members come back. Prediction votes or averages the members and works
blockwise on dask input (:func:`daskscale.learn.predict.predict_blockwise`).
"""

from __future__ import annotations

import os
import time
from typing import Any

import dask.array as da
import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin, clone, is_classifier

from daskscale.errors import InputTypeError, NotFittedError, SchemaError
from daskscale.learn.predict import classes_of
from daskscale.storage.convert import Data, as_data

__all__ = ["DistributedOneVsRest", "DistributedBagging"]


def _fit_member(estimator: Any, xs: list[np.ndarray], ys: list[np.ndarray], positive: Any) -> Any:
    """Runs on a worker: concatenate this member's blocks and fit."""
    X = np.concatenate([np.asarray(b) for b in xs])
    y = np.concatenate([np.asarray(b).ravel() for b in ys])
    if positive is not None:
        y = (y == positive).astype(int)
    return estimator.fit(X, y)


def _blocks(data: Data) -> tuple[list[Any], list[Any]]:
    return list(data.X.to_delayed(optimize_graph=True)[:, 0]), list(data.y.to_delayed(optimize_graph=True))


def _fit_all(client: Any, jobs: list[tuple[Any, list[int], Any]], data: Data) -> list[Any]:
    """Submit one fit task per member, round-robin over workers; gather the fitted members."""
    import dask

    workers = sorted(client.scheduler_info(n_workers=-1)["workers"])
    xb, yb = _blocks(data)
    futs = []
    for i, (est, idx, positive) in enumerate(jobs):
        w = [workers[i % len(workers)]]
        task = dask.delayed(_fit_member, pure=False)(est, [xb[j] for j in idx], [yb[j] for j in idx], positive)
        futs.append(client.compute(task, workers=w, allow_other_workers=True))
    return client.gather(futs)


def _dispatch(model: Any, X: Any, method: str) -> Any:
    if isinstance(X, (da.Array, Data, str, os.PathLike)) or hasattr(X, "dims") or type(X).__module__.startswith("dask"):
        from daskscale.learn.predict import predict_blockwise

        return predict_blockwise(model, X, method=method)
    return None


class DistributedOneVsRest(ClassifierMixin, BaseEstimator):
    """One binary model per class, each fitted on a different worker.

    Parameters
    ----------
    estimator : sklearn binary classifier with ``decision_function`` or ``predict_proba``
    client : distributed.Client or None

    Examples
    --------
    >>> from sklearn.linear_model import LogisticRegression
    >>> ovr = DistributedOneVsRest(LogisticRegression())  # doctest: +SKIP
    >>> ovr.fit("store.zarr").predict(X_test)  # doctest: +SKIP
    """

    def __init__(self, estimator: Any = None, *, client: Any = None):
        self.estimator = estimator
        self.client = client

    def fit(self, X: Any, y: Any = None) -> "DistributedOneVsRest":
        from distributed import get_client

        if self.estimator is None:
            raise InputTypeError("DistributedOneVsRest needs an estimator, e.g. LogisticRegression()")
        data = X if isinstance(X, Data) else as_data(X, y, require_y=True)
        classes = classes_of(data)
        if len(classes) < 2:
            raise SchemaError(f"the target has one class {classes.tolist()}: nothing to separate")
        t0 = time.perf_counter()
        idx = list(range(data.X.numblocks[0]))
        self.estimators_ = _fit_all(self.client or get_client(), [(clone(self.estimator), idx, c) for c in classes], data)
        self.classes_ = classes
        self.n_features_in_ = data.n_features
        self.fit_seconds_ = time.perf_counter() - t0
        return self

    def decision_function(self, X: Any) -> Any:
        out = _dispatch(self, X, "decision_function")
        if out is not None:
            return out
        if not hasattr(self, "estimators_"):
            raise NotFittedError("DistributedOneVsRest is not fitted: call fit(X, y) first")
        cols = [m.decision_function(X) if hasattr(m, "decision_function") else m.predict_proba(X)[:, 1]
                for m in self.estimators_]
        return np.column_stack(cols)

    def predict(self, X: Any) -> Any:
        out = _dispatch(self, X, "predict")
        if out is not None:
            return out
        return self.classes_[np.argmax(self.decision_function(X), axis=1)]


class DistributedBagging(BaseEstimator):
    """Bagging on block subsamples: each member, any sklearn estimator, fitted on its own worker.

    Parameters
    ----------
    estimator : any sklearn estimator
    n_estimators : int
    max_blocks : float or int
        Blocks per member: a fraction of the row blocks (float) or a count (int).
    voting : "soft" or "hard"
        Classifiers: average ``predict_proba`` (soft, if every member has it) or majority vote.
    random_state : int or None

    Examples
    --------
    >>> from sklearn.tree import DecisionTreeClassifier
    >>> bag = DistributedBagging(DecisionTreeClassifier(max_depth=5), n_estimators=4)  # doctest: +SKIP
    >>> bag.fit("store.zarr").score(X_test, y_test)  # doctest: +SKIP
    """

    def __init__(self, estimator: Any = None, *, n_estimators: int = 4, max_blocks: float | int = 0.5,
                 voting: str = "soft", random_state: int | None = None, client: Any = None):
        self.estimator = estimator
        self.n_estimators = n_estimators
        self.max_blocks = max_blocks
        self.voting = voting
        self.random_state = random_state
        self.client = client

    @property
    def _estimator_type(self) -> str:
        return "classifier" if is_classifier(self.estimator) else "regressor"

    def fit(self, X: Any, y: Any = None) -> "DistributedBagging":
        from distributed import get_client

        if self.estimator is None:
            raise InputTypeError("DistributedBagging needs an estimator, e.g. DecisionTreeClassifier()")
        data = X if isinstance(X, Data) else as_data(X, y, require_y=True)
        nb = data.X.numblocks[0]
        m = int(self.max_blocks) if isinstance(self.max_blocks, (int, np.integer)) else int(np.ceil(self.max_blocks * nb))
        m = min(max(1, m), nb)
        rng = np.random.default_rng(self.random_state)
        jobs = []
        for i in range(int(self.n_estimators)):
            est = clone(self.estimator)
            if "random_state" in est.get_params():
                est.set_params(random_state=int(rng.integers(2**31)))
            jobs.append((est, sorted(rng.choice(nb, m, replace=False).tolist()), None))
        t0 = time.perf_counter()
        self.estimators_ = _fit_all(self.client or get_client(), jobs, data)
        self.estimators_blocks_ = [j[1] for j in jobs]
        if is_classifier(self.estimator):
            self.classes_ = np.unique(np.concatenate([e.classes_ for e in self.estimators_]))
        self.n_features_in_ = data.n_features
        self.fit_seconds_ = time.perf_counter() - t0
        return self

    def _check(self) -> None:
        if not hasattr(self, "estimators_"):
            raise NotFittedError("DistributedBagging is not fitted: call fit(X, y) first")

    def predict_proba(self, X: Any) -> Any:
        out = _dispatch(self, X, "predict_proba")
        if out is not None:
            return out
        self._check()
        P = np.zeros((len(X), len(self.classes_)))
        for e in self.estimators_:
            P[:, np.searchsorted(self.classes_, e.classes_)] += e.predict_proba(X)
        return P / len(self.estimators_)

    def predict(self, X: Any) -> Any:
        out = _dispatch(self, X, "predict")
        if out is not None:
            return out
        self._check()
        if not is_classifier(self.estimator):
            return np.mean([e.predict(X) for e in self.estimators_], axis=0)
        if self.voting == "soft" and all(hasattr(e, "predict_proba") for e in self.estimators_):
            return self.classes_[np.argmax(self.predict_proba(X), axis=1)]
        votes = np.stack([np.searchsorted(self.classes_, e.predict(X)) for e in self.estimators_])
        counts = np.apply_along_axis(np.bincount, 0, votes, minlength=len(self.classes_))
        return self.classes_[np.argmax(counts, axis=0)]

    def score(self, X: Any, y: Any) -> float:
        mixin = ClassifierMixin if is_classifier(self.estimator) else RegressorMixin
        return mixin.score(self, X, y)
