"""Online preprocessing steps: ``partial_fit`` on each batch, ``transform`` with what is known.

Each step learns with ``partial_fit(X)`` and applies with ``transform(X)`` (scikit-learn
style), and its state is plain arrays and JSON values (``get_state``/``set_state``), so it
goes into the same checkpoint as the model (:func:`daskscale.models.save_model` archives
arrays, dicts, lists and numbers; nothing is pickled).

Prequential honesty: a batch is transformed with the statistics of the rows BEFORE it, to
predict it, and only then learned (:meth:`OnlineStandardScaler.partial_fit_transform` does
both in that order; the model then trains on the batch transformed with the updated
statistics, as River's ``StandardScaler | LogisticRegression`` pipeline does in
``learn_one``).

- :class:`RunningMoments`: count, mean and sum of squared deviations (``M2``) per column,
  float64, updated by Chan et al.'s pairwise formula (1979) with one NumPy pass per batch
  (Welford's update for a single row). The state is ``daskscale.reduce.Moments``'s
  ``(n, mean, M2)`` form, so ``Moments().finalize`` reads it; no Reducer machinery runs per
  batch (map + merge + finalize cost about 1 ms a micro-batch, as much as the model).
  The rows must be finite (the learner checks them before).
- :class:`OnlineStandardScaler`: ``(x - mean) / std`` from the running moments. A column
  with no spread yet (fewer than 2 rows, or constant) is only centred.
- :class:`OnlineOneHot`: one categorical field to a FIXED number of columns, so a linear
  model's ``coef_`` never changes shape. The first ``max_categories`` distinct values get a
  column each, in order of first appearance; any later value goes to one of ``n_buckets``
  hashed columns (CRC32 of its text: stable across processes, unlike ``hash``), or, with
  ``n_buckets=0``, one shared "other" column. A value not learned yet is transformed as a
  late value would be (its bucket), and has its own column from the batch after it is
  learned while slots remain.
"""

from __future__ import annotations

import zlib
from typing import Any

import numpy as np

from daskscale.errors import SchemaError

__all__ = ["RunningMoments", "OnlineStandardScaler", "OnlineOneHot"]

#: a spread below this many ulps of the mean is no spread (a constant column, up to rounding)
_TINY = 10 * np.finfo(np.float64).eps
_sum0 = np.add.reduce


class RunningMoments:
    """Per-column count, mean and ``M2`` of every row seen, updated in place batch by batch.

    Examples
    --------
    >>> import numpy as np
    >>> m = RunningMoments()
    >>> m.update(np.array([[1.0, 10.0]])).update(np.array([[2.0, 10.0], [3.0, 10.0]]))
    RunningMoments(n=3)
    >>> m.mean.tolist(), (m.m2 / m.n).tolist()
    ([2.0, 10.0], [0.6666666666666666, 0.0])
    """

    def __init__(self) -> None:
        self.n = 0
        self.mean: np.ndarray | None = None
        self.m2: np.ndarray | None = None

    def update(self, X: np.ndarray) -> "RunningMoments":
        """Add the rows of ``X`` (2-D, finite)."""
        k = X.shape[0]
        if self.mean is None:
            self.mean = np.zeros(X.shape[1])
            self.m2 = np.zeros(X.shape[1])
        n = self.n + k
        if k == 1:  # Welford: the common case of one-row events learned as they come
            d = X[0] - self.mean
            self.mean += d / n
            self.m2 += d * (X[0] - self.mean)
        else:
            # Chan: the batch's own mean and M2, merged; a handful of NumPy calls (a micro-batch
            # is learned in microseconds, so ``X.mean`` / ``einsum`` wrappers would dominate;
            # ``np.add.reduce`` is what ``X.sum`` calls, without its Python layer)
            bmean = _sum0(X, 0)
            bmean *= 1.0 / k
            c = X - bmean
            c *= c
            d = bmean
            d -= self.mean
            self.m2 += _sum0(c, 0)
            self.mean += d * (k / n)
            d *= d
            d *= self.n * k / n
            self.m2 += d
        self.n = n
        return self

    def state(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(count per column, mean, M2)``: the form ``daskscale.reduce.Moments().finalize`` reads."""
        return np.full(len(self.mean), self.n, dtype=np.int64), self.mean.copy(), self.m2.copy()

    def set_state(self, state: Any) -> "RunningMoments":
        """Restore :meth:`state` (or ``None``: no rows)."""
        if state is None:
            self.__init__()
            return self
        n, mean, m2 = state
        self.n = int(np.max(n)) if np.size(n) else 0
        self.mean, self.m2 = np.array(mean, dtype=np.float64), np.array(m2, dtype=np.float64)
        return self

    def __repr__(self) -> str:
        return f"RunningMoments(n={self.n})"


class OnlineStandardScaler:
    """Standard scaling from streaming per-column moments.

    Parameters
    ----------
    with_mean, with_std : bool
        Centre, and divide by the (biased, as River and scikit-learn) standard deviation.

    Examples
    --------
    >>> import numpy as np
    >>> s = OnlineStandardScaler()
    >>> s.partial_fit_transform(np.array([[1.0], [3.0]])).tolist()  # nothing known yet: unchanged
    [[1.0], [3.0]]
    >>> s.transform(np.array([[2.0], [4.0]])).tolist()
    [[0.0], [2.0]]
    >>> s.mean_.tolist(), s.scale_.tolist(), s.n_samples_seen_
    ([2.0], [1.0], 2)
    """

    def __init__(self, with_mean: bool = True, with_std: bool = True):
        self.with_mean = with_mean
        self.with_std = with_std
        self.moments_ = RunningMoments()
        self._cache: tuple[np.ndarray, np.ndarray] | None = None

    @property
    def n_samples_seen_(self) -> int:
        return self.moments_.n

    def partial_fit(self, X: Any, y: Any = None) -> "OnlineStandardScaler":
        """Add the rows of ``X`` (2-D, finite) to the moments."""
        X = np.asarray(X, dtype=np.float64)
        m = self.moments_
        if X.ndim != 2:
            raise SchemaError(f"OnlineStandardScaler takes a 2-D batch, got shape {X.shape}")
        if m.mean is not None and X.shape[1] != len(m.mean):
            raise SchemaError(f"the batch has {X.shape[1]} columns, the scaler was fitted on {len(m.mean)}")
        m.update(X)
        self._cache = None
        return self

    def _centre_scale(self) -> tuple[np.ndarray, np.ndarray]:
        """``(centre, 1 / scale)``, computed once per batch learned (every transform until the next reads it)."""
        if self._cache is None:
            m = self.moments_
            mean = m.mean if self.with_mean else np.zeros(len(m.mean))
            if self.with_std:
                std = m.m2 * (1.0 / m.n)
                np.sqrt(std, out=std)
                # no spread (or below the float64 resolution of the mean): only centred, as
                # scikit-learn; a scale of 1 there, then one division (no masked divide)
                tiny = np.abs(m.mean)
                tiny *= _TINY
                inv = np.where(std > tiny, std, 1.0)
                np.divide(1.0, inv, out=inv)
            else:
                inv = np.ones(len(m.mean))
            self._cache = (mean, inv)  # partial_fit drops it before the moments change
        return self._cache

    @property
    def mean_(self) -> np.ndarray:
        return self._centre_scale()[0].copy()

    @property
    def scale_(self) -> np.ndarray:
        return 1.0 / self._centre_scale()[1]

    def transform(self, X: Any) -> np.ndarray:
        """``(X - mean_) / scale_`` with the rows learned so far (``X`` as float64 if nothing is)."""
        if self.moments_.n == 0:
            return np.asarray(X, dtype=np.float64)
        mean, inv = self._centre_scale()
        out = np.subtract(X, mean, dtype=np.float64)
        out *= inv
        return out

    def partial_fit_transform(self, X: Any) -> np.ndarray:
        """Transform ``X`` with the statistics before it, then learn it (the prequential order)."""
        out = self.transform(X)
        self.partial_fit(X)
        return out

    def transform_learn(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``X`` transformed before it is learned (to predict it), then after (to train on it).

        What ``partial_fit_transform(X)`` then ``transform(X)`` give, in one call: a prequential
        learner does this for every micro-batch.
        """
        before = self.transform(X)
        self.partial_fit(X)
        mean, inv = self._centre_scale()
        after = np.subtract(X, mean, dtype=np.float64)
        after *= inv
        return before, after

    def get_state(self) -> dict[str, Any]:
        """Arrays and numbers only (a checkpoint's content)."""
        m = self.moments_
        return {"moments": None if m.mean is None else list(m.state())}

    def set_state(self, state: dict[str, Any]) -> "OnlineStandardScaler":
        self.moments_.set_state(state["moments"])
        self._cache = None
        return self

    def get_params(self, deep: bool = True) -> dict[str, Any]:
        return {"with_mean": self.with_mean, "with_std": self.with_std}


def _bucket(value: Any, n_buckets: int) -> int:
    return zlib.crc32(str(value).encode()) % n_buckets


class OnlineOneHot:
    """One categorical field to ``max_categories + max(1, n_buckets)`` indicator columns.

    Parameters
    ----------
    max_categories : int
        Values that get a column of their own (the first ones seen).
    n_buckets : int
        Hashed columns shared by the later values; 0 for a single "other" column.

    Examples
    --------
    >>> oh = OnlineOneHot(max_categories=2, n_buckets=0)
    >>> oh.partial_fit_transform(["a", "b", "a"]).tolist()  # nothing learned yet: all "other"
    [[0.0, 0.0, 1.0], [0.0, 0.0, 1.0], [0.0, 0.0, 1.0]]
    >>> oh.transform(["b", "c", "a"]).tolist()
    [[0.0, 1.0, 0.0], [0.0, 0.0, 1.0], [1.0, 0.0, 0.0]]
    >>> oh.categories_
    ['a', 'b']
    """

    def __init__(self, max_categories: int = 32, n_buckets: int = 8):
        if max_categories < 0 or n_buckets < 0:
            raise SchemaError(f"max_categories and n_buckets must be >= 0, got {max_categories}, {n_buckets}")
        self.max_categories = max_categories
        self.n_buckets = n_buckets
        self.categories_: list[Any] = []
        self._index: dict[Any, int] = {}

    @property
    def n_columns(self) -> int:
        return self.max_categories + max(1, self.n_buckets)

    def partial_fit(self, values: Any, y: Any = None) -> "OnlineOneHot":
        """Give the new values a column while slots remain."""
        for v in dict.fromkeys(_plain_list(values)):  # distinct values, in order of appearance
            if len(self.categories_) >= self.max_categories:
                break
            if v not in self._index:
                self._index[v] = len(self.categories_)
                self.categories_.append(v)
        return self

    def _column(self, v: Any) -> int:
        i = self._index.get(v)
        if i is not None:
            return i
        return self.max_categories + (_bucket(v, self.n_buckets) if self.n_buckets else 0)

    def transform(self, values: Any) -> np.ndarray:
        """Rows x ``n_columns`` float64 indicators."""
        vals = _plain_list(values)
        out = np.zeros((len(vals), self.n_columns))
        out[np.arange(len(vals)), [self._column(v) for v in vals]] = 1.0
        return out

    def partial_fit_transform(self, values: Any) -> np.ndarray:
        """Transform with the columns known before ``values``, then learn them."""
        out = self.transform(values)
        self.partial_fit(values)
        return out

    def get_state(self) -> dict[str, Any]:
        return {"categories": list(self.categories_)}

    def set_state(self, state: dict[str, Any]) -> "OnlineOneHot":
        self.categories_ = list(state["categories"])
        self._index = {v: i for i, v in enumerate(self.categories_)}
        return self

    def get_params(self, deep: bool = True) -> dict[str, Any]:
        return {"max_categories": self.max_categories, "n_buckets": self.n_buckets}


def _plain_list(values: Any) -> list[Any]:
    """Python values (NumPy scalars as their Python value: a checkpoint's JSON keeps them)."""
    arr = np.asarray(values, dtype=object).ravel()
    return [v.item() if isinstance(v, np.generic) else v for v in arr]
