"""One blockwise apply and one score, pooled over rows.

:func:`apply_blockwise` maps any per-block function (``model.predict``, ``predict_proba``,
``transform``, ...) over the row blocks of ``X``: NumPy in, NumPy out; a dask array,
:class:`~daskscale.storage.convert.Data`, store path or xarray in, a lazy dask array out.

A score is a mergeable state: :func:`score_state` of a block, ``a + b``, then
:meth:`ScoreState.value` over every row merged, never a mean of per-block ratios (a mean of
block R^2 takes each block's SS_tot around its own mean and misses the spread between blocks).
Per kind: accuracy (classifier); R^2 as scikit-learn's ``r2_score`` over all rows (regressor);
the estimator's own score per row (clusterer, transformer: ``score_samples`` summed, else
``score`` of the block as a sum over rows, as KMeans' negative inertia, else minus the mean
squared reconstruction error). :func:`score_blockwise` runs it on the reduce executor; a
trainer's validation folds the same state block by block.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any, Callable

import dask.array as da
import numpy as np
from sklearn.base import is_classifier, is_regressor

from daskscale.errors import SchemaError
from daskscale.reduce import Reducer, reduce
from daskscale.storage.convert import Data, as_data

__all__ = ["apply_blockwise", "score_blockwise", "score_state", "ScoreState", "ScoreReducer", "kind_of",
           "scale_rows", "in_memory"]


def kind_of(estimator: Any) -> str:
    """``"classifier"``, ``"regressor"``, ``"cluster"`` (predicts without y) or ``"transformer"``.

    Examples
    --------
    >>> from sklearn.cluster import KMeans
    >>> from sklearn.linear_model import Ridge
    >>> kind_of(Ridge()), kind_of(KMeans())
    ('regressor', 'cluster')
    """
    if is_classifier(estimator):
        return "classifier"
    if is_regressor(estimator):
        return "regressor"
    return "cluster" if hasattr(estimator, "predict") else "transformer"


def in_memory(X: Any) -> bool:
    """NumPy, lists, pandas: answered at once; a dask collection, xarray or store path: by blocks.

    Examples
    --------
    >>> import dask.array as da
    >>> in_memory(np.zeros((2, 2))), in_memory(da.zeros((2, 2))), in_memory("data.zarr")
    (True, False, False)
    """
    import xarray as xr

    if isinstance(X, (str, os.PathLike, xr.Dataset, xr.DataArray, Data)):
        return False
    return not type(X).__module__.startswith("dask")


def scale_rows(X: np.ndarray, mean: np.ndarray | None, scale: np.ndarray | None) -> np.ndarray:
    """Standardise rows with fitted column ``mean`` and ``scale`` (identity when ``mean`` is None).

    Examples
    --------
    >>> scale_rows(np.array([[1.0, 4.0]]), np.array([1.0, 2.0]), np.array([1.0, 2.0])).tolist()
    [[0.0, 1.0]]
    """
    if mean is None:
        return X
    # one copy in the block's own dtype (not float64 temporaries): memory stays ~1 block
    X = np.asarray(X)
    out = np.array(X, dtype=X.dtype if X.dtype.kind == "f" else np.float64)
    out -= np.asarray(mean).astype(out.dtype)
    out /= np.asarray(scale).astype(out.dtype)
    return out


class _PerBlock:
    """The task of one row block: standardise, then ``fn``; a block of no rows gives no rows.

    A class, not a closure, so that it pickles by value to the workers with ``fn``'s model.
    """

    def __init__(self, fn: Callable[[np.ndarray], Any], mean: Any, scale: Any, tail: tuple[int, ...], dtype: Any):
        self.fn, self.mean, self.scale, self.tail, self.dtype = fn, mean, scale, tail, dtype

    def __call__(self, block: np.ndarray) -> np.ndarray:
        if len(block) == 0:
            return np.empty((0, *self.tail), dtype=self.dtype)
        return np.asarray(self.fn(scale_rows(np.asarray(block), self.mean, self.scale)))


def apply_blockwise(fn: Callable[[np.ndarray], Any], X: Any, *, mean: Any = None, scale: Any = None) -> Any:
    """``fn`` (say ``model.predict``) over the rows of ``X``, standardised by ``mean``/``scale`` first.

    Parameters
    ----------
    fn : callable
        Maps a 2-D NumPy block of rows to one answer per row, 1-D ``(rows,)`` or 2-D
        ``(rows, outputs)``.
    X : NumPy array (or anything in memory), dask array, Data, store path or xarray object
        In memory: ``fn`` is applied at once (the caller has validated ``X``). Anything else is
        read by :func:`~daskscale.storage.convert.as_data` and mapped block by block.
    mean, scale : array-like of shape (n_features,), optional
        Column centre and scale the model was trained on (:func:`scale_rows`).

    Returns
    -------
    numpy.ndarray or dask.array.Array
        NumPy for in-memory ``X``; else a lazy dask array with ``X``'s row chunks, 1-D or
        2-D as ``fn``'s answer on one row of zeros.

    Examples
    --------
    >>> import dask.array as da
    >>> from sklearn.linear_model import LinearRegression
    >>> X = np.arange(12.0).reshape(6, 2); m = LinearRegression().fit(X, X[:, 0])
    >>> out = apply_blockwise(m.predict, da.from_array(X, chunks=((4, 2), 2)))
    >>> out.chunks, out.compute().round(6).tolist()
    (((4, 2),), [0.0, 2.0, 4.0, 6.0, 8.0, 10.0])
    """
    mean = None if mean is None else np.asarray(mean)
    scale = None if scale is None else np.asarray(scale)
    if in_memory(X):
        return np.asarray(fn(scale_rows(X, mean, scale)))
    Xd = (X if isinstance(X, Data) else as_data(X)).X
    # the answer's width and dtype come from one row of zeros: map_blocks then needs no guess
    probe = np.asarray(fn(scale_rows(np.zeros((1, Xd.shape[1]), dtype=Xd.dtype), mean, scale)))
    task = _PerBlock(fn, mean, scale, probe.shape[1:], probe.dtype)
    meta = np.empty((0,) * probe.ndim, dtype=probe.dtype)
    if probe.ndim == 1:
        return Xd.map_blocks(task, drop_axis=1, dtype=probe.dtype, meta=meta)
    return Xd.map_blocks(task, chunks=(Xd.chunks[0], probe.shape[1:]), dtype=probe.dtype, meta=meta)


@dataclass
class ScoreState:
    """Sufficient statistics of a score over some rows; ``a + b`` is the state of both.

    ``n`` is the rows (or their total weight). A classifier's ``total`` counts the correct
    rows; a clusterer's or transformer's sums its per-row score. A regressor keeps the weighted
    mean of ``y``, the sum of squared deviations from it (``m2``) and the residual sum of
    squares (``ssres``), per output, merged by Chan et al.'s pairwise update: sums of ``y`` and
    ``y**2`` would lose every digit of SS_tot to cancellation for a target far from zero.

    Examples
    --------
    >>> a = ScoreState("regressor", 2.0, mean=np.array([1.0]), m2=np.array([0.0]), ssres=np.array([0.5]))
    >>> b = ScoreState("regressor", 2.0, mean=np.array([3.0]), m2=np.array([0.0]), ssres=np.array([0.5]))
    >>> (a + b).value()  # SS_tot = 4 rows x 1**2 around the pooled mean 2; each block alone has 0
    0.75
    """

    kind: str
    n: float = 0.0
    total: float = 0.0
    mean: Any = 0.0
    m2: Any = 0.0
    ssres: Any = 0.0

    def __add__(self, other: ScoreState) -> ScoreState:
        if not other.n:
            return self
        if not self.n:
            return other
        n = self.n + other.n
        delta = other.mean - self.mean
        return ScoreState(self.kind, n, self.total + other.total, self.mean + delta * (other.n / n),
                          self.m2 + other.m2 + delta**2 * (self.n * other.n / n), self.ssres + other.ssres)

    def value(self) -> float | None:
        """The metric over every row folded in (None for no rows)."""
        if not self.n:
            return None
        if self.kind != "regressor":
            return float(self.total / self.n)
        ssres, sstot = np.atleast_1d(self.ssres), np.atleast_1d(self.m2)
        # scikit-learn's r2_score for a constant target: 1 for a perfect fit, else 0
        r2 = np.where(sstot > 0, 1.0 - ssres / np.where(sstot > 0, sstot, 1.0), np.where(ssres == 0, 1.0, 0.0))
        return float(r2.mean())


def _column(y: Any) -> np.ndarray:
    y = np.asarray(y)
    return y[:, 0] if y.ndim == 2 and y.shape[1] == 1 else y


def score_state(est: Any, kind: str, X: Any, y: Any = None, sample_weight: Any = None) -> ScoreState:
    """The :class:`ScoreState` of fitted ``est`` on one block (``X`` already standardised).

    Examples
    --------
    >>> from sklearn.linear_model import LogisticRegression
    >>> X = np.arange(8.0).reshape(4, 2); y = np.array([0, 0, 1, 1])
    >>> s = score_state(LogisticRegression().fit(X, y), "classifier", X, y)
    >>> s.n, s.total, s.value()
    (4.0, 4.0, 1.0)
    """
    rows = len(X)
    if rows == 0:
        return ScoreState(kind)
    w = np.ones(rows) if sample_weight is None else np.asarray(sample_weight, dtype=np.float64).ravel()
    n = float(w.sum())
    if kind == "classifier":
        return ScoreState(kind, n, float(np.dot(w, _column(est.predict(X)) == _column(y))))
    if kind == "regressor":
        t = _column(y).astype(np.float64)
        p = np.asarray(est.predict(X), dtype=np.float64).reshape(t.shape)
        wc = w.reshape((-1,) + (1,) * (t.ndim - 1))
        mean = (wc * t).sum(axis=0) / n
        return ScoreState(kind, n, 0.0, mean, (wc * (t - mean) ** 2).sum(axis=0), (wc * (t - p) ** 2).sum(axis=0))
    if hasattr(est, "score_samples"):
        total = float(np.dot(w, est.score_samples(X)))
    elif hasattr(est, "score"):
        total = float(est.score(X) if sample_weight is None else est.score(X, sample_weight=w))
    elif hasattr(est, "inverse_transform"):
        err = np.asarray(est.inverse_transform(est.transform(X)), dtype=np.float64) - X
        total = -float(np.dot(w, (err**2).mean(axis=1)))
    else:
        total = 0.0  # no score of its own and no way back to X: nothing to measure
    return ScoreState(kind, n, total)


class ScoreReducer(Reducer):
    """:func:`score_state` as a reducer, for the executor of :mod:`daskscale.reduce`.

    ``weighted``: the last column of each block is the row's weight, not a feature (the
    executor hands a reducer ``X`` and ``y`` only; :func:`score_blockwise` appends it).
    """

    name = "score"
    needs_y = True

    def __init__(self, est: Any, kind: str | None = None, mean: Any = None, scale: Any = None,
                 weighted: bool = False):
        self.est = est
        self.kind = kind or kind_of(est)
        self.mean = None if mean is None else np.asarray(mean)
        self.scale = None if scale is None else np.asarray(scale)
        self.weighted = weighted

    def map(self, X: np.ndarray, y: np.ndarray | None = None) -> ScoreState:
        w = None
        if self.weighted:
            X, w = X[:, :-1], X[:, -1]
        return score_state(self.est, self.kind, scale_rows(X, self.mean, self.scale), y, w)

    def merge(self, a: ScoreState, b: ScoreState) -> ScoreState:
        return a + b

    def finalize(self, state: ScoreState) -> float | None:
        return state.value()

    def empty(self, n_features: int) -> ScoreState:
        return ScoreState(self.kind)


def score_blockwise(est: Any, X: Any, y: Any = None, *, sample_weight: Any = None, kind: str | None = None,
                    mean: Any = None, scale: Any = None) -> float:
    """The score of fitted ``est`` on all rows of ``X`` (accuracy, R^2, or its own score per row).

    In-memory ``X`` is one block; anything else (dask, Data, store path, xarray) is scored
    where its blocks live, in one pass, and only the small states travel.

    Raises
    ------
    SchemaError
        For a classifier or regressor without a target, or for no rows.

    Examples
    --------
    >>> from sklearn.linear_model import LinearRegression
    >>> X = np.arange(10.0).reshape(5, 2); y = X[:, 0] * 2.0
    >>> round(score_blockwise(LinearRegression().fit(X, y), X, y), 6)
    1.0
    """
    kind = kind or kind_of(est)
    needs_y = kind in ("classifier", "regressor")
    if in_memory(X):
        if y is None and needs_y:
            raise SchemaError(f"X: scoring a {kind} needs a target: pass y=")
        score = score_state(est, kind, scale_rows(X, mean, scale), y, sample_weight).value()
    else:
        keep = isinstance(X, Data) and y is None and sample_weight is None
        data = X if keep else as_data(X, y, sample_weight=sample_weight)
        if data.y is None and needs_y:
            raise SchemaError(f"{data.source or 'X'}: scoring a {kind} needs a target (pass y=, or a store with one)")
        weighted = sample_weight is not None
        if weighted:
            # the executor hands a reducer X and y only: the weight rides as a last column (in
            # X's float dtype, so the model sees the features it was given)
            w = data.sample_weight.astype(data.X.dtype if data.X.dtype.kind == "f" else np.float64)
            data = Data(da.concatenate([data.X, w[:, None]], axis=1).rechunk({1: -1}), data.y, source=data.source)
        score = reduce(data, [ScoreReducer(est, kind, mean, scale, weighted)])["score"]
    if score is None:
        raise SchemaError("no rows to score")
    return score
