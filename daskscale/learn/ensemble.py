"""Model parallelism by members: one-vs-rest classes and bagged ensembles, one member per task.

Each member (a class's binary model, or a bagging member on a subsample of the row blocks) is
fitted by one task pinned to a worker, round-robin over the cluster, so the members train at the
same time on different workers. The row blocks a member needs are read on the worker that
fits it; only fitted members come back. Prediction votes or averages the members: NumPy in,
NumPy out; blockwise on dask, xarray and store input (:func:`daskscale.learn.predict.apply_method`).
Without a Dask client (or with ``client="local"``) the members are fitted one after the other
in this process. NaN in a member's blocks follows the policy of :mod:`daskscale.learn.prep`.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin, MetaEstimatorMixin, clone, is_classifier
from sklearn.utils.metaestimators import available_if

from daskscale.errors import InputTypeError, SchemaError
from daskscale.learn.local import executor, in_process
from daskscale.learn.predict import apply_method, classes_of, score_method
from daskscale.learn.prep import check_block, check_nan_option, delegate_tags, fit_data, where_block
from daskscale.storage.convert import Data

__all__ = ["DistributedOneVsRest", "DistributedBagging"]


def _fit_member(estimator: Any, xs: list[np.ndarray], ys: list[np.ndarray], positive: Any,
                wheres: list[str], nan: str) -> Any:
    """Runs on a worker: check this member's blocks (named by ``wheres``), concatenate them and fit."""
    pairs = [check_block(np.asarray(bx), np.asarray(by).ravel(), where=w, nan=nan, classes=None)[:2]
             for bx, by, w in zip(xs, ys, wheres)]
    X = np.concatenate([bx for bx, _ in pairs])
    y = np.concatenate([by for _, by in pairs])
    if positive is not None:
        y = (y == positive).astype(int)
    return estimator.fit(X, y)


def _blocks(data: Data) -> tuple[list[Any], list[Any]]:
    return list(data.X.to_delayed(optimize_graph=True)[:, 0]), list(data.y.to_delayed(optimize_graph=True))


def _fit_all(client: Any, jobs: list[tuple[Any, list[int], Any]], data: Data, nan: str) -> list[Any]:
    """Submit one fit task per member, round-robin over workers; gather the fitted members."""
    import dask

    workers = sorted(client.scheduler_info(n_workers=-1)["workers"])
    xb, yb = _blocks(data)
    starts = np.concatenate([[0], np.cumsum(data.row_chunks)]).astype(int).tolist()
    futs = []
    for i, (est, idx, positive) in enumerate(jobs):
        w = [workers[i % len(workers)]]
        wheres = [where_block(j, starts[j], data.row_chunks[j]) for j in idx]
        task = dask.delayed(_fit_member, pure=False)(est, [xb[j] for j in idx], [yb[j] for j in idx], positive,
                                                     wheres, nan)
        futs.append(client.compute(task, workers=w, allow_other_workers=True))
    return client.gather(futs)


class DistributedOneVsRest(ClassifierMixin, MetaEstimatorMixin, BaseEstimator):
    """One binary model per class, each fitted on a different worker.

    Parameters
    ----------
    estimator : sklearn binary classifier with ``decision_function`` or ``predict_proba``
    nan : "raise" or "skip"
        NaN policy (:mod:`daskscale.learn.prep`): an error naming the block and row, or drop the rows.
    client : distributed.Client, "local" or None
        Default: the current client; with none, or ``"local"``, members fit in this process.

    Examples
    --------
    >>> from sklearn.linear_model import LogisticRegression
    >>> ovr = DistributedOneVsRest(LogisticRegression())  # doctest: +SKIP
    >>> ovr.fit("store.zarr").predict(X_test)  # doctest: +SKIP
    """

    def __init__(self, estimator: Any = None, *, nan: str = "raise", client: Any = None):
        self.estimator = estimator
        self.nan = nan
        self.client = client

    def fit(self, X: Any, y: Any = None) -> "DistributedOneVsRest":
        if self.estimator is None:
            raise InputTypeError("DistributedOneVsRest needs an estimator, e.g. LogisticRegression()")
        check_nan_option(self.nan)
        client = executor(self.client)
        with in_process(client):
            data = fit_data(self, X, y, classifier=True)
            classes = classes_of(data)
            if len(classes) < 2:
                raise SchemaError(f"the target has one class {classes.tolist()}: nothing to separate")
            t0 = time.perf_counter()
            idx = list(range(data.X.numblocks[0]))
            positives = classes[1:] if len(classes) == 2 else classes  # binary: one member, as scikit-learn's
            self.estimators_ = _fit_all(client, [(clone(self.estimator), idx, c) for c in positives], data, self.nan)
        self.classes_ = classes
        self.fit_seconds_ = time.perf_counter() - t0
        return self

    def _decision(self, X: np.ndarray) -> np.ndarray:
        # a member without decision_function: its class probability, centred so that 0 is the boundary
        cols = [m.decision_function(X) if hasattr(m, "decision_function") else m.predict_proba(X)[:, 1] - 0.5
                for m in self.estimators_]
        return cols[0] if len(cols) == 1 else np.column_stack(cols)

    def _predict(self, X: np.ndarray) -> np.ndarray:
        d = self._decision(X)
        return self.classes_[(d > 0).astype(int)] if d.ndim == 1 else self.classes_[np.argmax(d, axis=1)]

    def decision_function(self, X: Any) -> Any:
        """One column per class: each member's decision function (or probability of its class, minus
        0.5); for two classes one column, of the second class."""
        return apply_method(self, X, "decision_function", self._decision, fitted="estimators_")

    def predict(self, X: Any) -> Any:
        """The class whose member is the most confident (NumPy in, NumPy out; else blockwise)."""
        return apply_method(self, X, "predict", self._predict, fitted="estimators_")

    def score(self, X: Any, y: Any = None) -> float:
        """Accuracy; blockwise for out-of-memory input."""
        return score_method(self, X, y, fitted="estimators_")

    def __sklearn_tags__(self) -> Any:
        tags = super().__sklearn_tags__()
        tags.input_tags.sparse = False
        return tags


def _soft(self: "DistributedBagging") -> bool:
    return is_classifier(self.estimator) and hasattr(self.estimator, "predict_proba")


class DistributedBagging(MetaEstimatorMixin, BaseEstimator):
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
    nan : "raise" or "skip"
        NaN policy (:mod:`daskscale.learn.prep`): an error naming the block and row, or drop the rows.
    client : distributed.Client, "local" or None
        Default: the current client; with none, or ``"local"``, members fit in this process.

    Examples
    --------
    >>> from sklearn.tree import DecisionTreeClassifier
    >>> bag = DistributedBagging(DecisionTreeClassifier(max_depth=5), n_estimators=4)  # doctest: +SKIP
    >>> bag.fit("store.zarr").score(X_test, y_test)  # doctest: +SKIP
    """

    def __init__(self, estimator: Any = None, *, n_estimators: int = 4, max_blocks: float | int = 0.5,
                 voting: str = "soft", random_state: int | None = None, nan: str = "raise", client: Any = None):
        self.estimator = estimator
        self.n_estimators = n_estimators
        self.max_blocks = max_blocks
        self.voting = voting
        self.random_state = random_state
        self.nan = nan
        self.client = client

    def __sklearn_tags__(self) -> Any:
        return delegate_tags(super().__sklearn_tags__(), self.estimator)

    def fit(self, X: Any, y: Any = None) -> "DistributedBagging":
        if self.estimator is None:
            raise InputTypeError("DistributedBagging needs an estimator, e.g. DecisionTreeClassifier()")
        check_nan_option(self.nan)
        client = executor(self.client)
        with in_process(client):
            return self._fit(client, X, y)

    def _fit(self, client: Any, X: Any, y: Any) -> "DistributedBagging":
        data = fit_data(self, X, y, classifier=is_classifier(self.estimator))
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
        self.estimators_ = _fit_all(client, jobs, data, self.nan)
        self.estimators_blocks_ = [j[1] for j in jobs]
        if is_classifier(self.estimator):
            self.classes_ = np.unique(np.concatenate([e.classes_ for e in self.estimators_]))
        self.fit_seconds_ = time.perf_counter() - t0
        return self

    def _proba(self, X: np.ndarray) -> np.ndarray:
        P = np.zeros((len(X), len(self.classes_)))
        for e in self.estimators_:
            P[:, np.searchsorted(self.classes_, e.classes_)] += e.predict_proba(X)
        return P / len(self.estimators_)

    def _predict(self, X: np.ndarray) -> np.ndarray:
        if not is_classifier(self.estimator):
            return np.mean([e.predict(X) for e in self.estimators_], axis=0)
        if self.voting == "soft" and _soft(self):
            return self.classes_[np.argmax(self._proba(X), axis=1)]
        votes = np.stack([np.searchsorted(self.classes_, e.predict(X)) for e in self.estimators_])
        counts = np.apply_along_axis(np.bincount, 0, votes, minlength=len(self.classes_))
        return self.classes_[np.argmax(counts, axis=0)]

    @available_if(_soft)
    def predict_proba(self, X: Any) -> Any:
        """Mean of the members' class probabilities (classifiers whose members have them)."""
        return apply_method(self, X, "predict_proba", self._proba, fitted="estimators_")

    def predict(self, X: Any) -> Any:
        """Soft or hard vote (classifiers), mean (regressors); NumPy in, NumPy out; else blockwise."""
        return apply_method(self, X, "predict", self._predict, fitted="estimators_")

    def score(self, X: Any, y: Any = None) -> float:
        """Accuracy or R^2; blockwise for out-of-memory input."""
        return score_method(self, X, y, fitted="estimators_")
