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

- :class:`OnlineStandardScaler`: ``(x - mean) / std`` from the streaming moments of
  :class:`daskscale.reduce.Moments` (Chan's merge: exact, mergeable, NaN-aware). A column
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
from daskscale.reduce import Moments

__all__ = ["OnlineStandardScaler", "OnlineOneHot"]

_MOMENTS = Moments(ddof=0)


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
        self.state_: tuple | None = None
        self.n_samples_seen_ = 0
        self._cache: tuple[np.ndarray, np.ndarray] | None = None

    def partial_fit(self, X: Any, y: Any = None) -> "OnlineStandardScaler":
        """Add the rows of ``X`` to the moments."""
        X = np.asarray(X)
        if X.ndim != 2:
            raise SchemaError(f"OnlineStandardScaler takes a 2-D batch, got shape {X.shape}")
        if self.state_ is not None and X.shape[1] != len(self.state_[0]):
            raise SchemaError(f"the batch has {X.shape[1]} columns, the scaler was fitted on {len(self.state_[0])}")
        block = _MOMENTS.map(X)
        self.state_ = block if self.state_ is None else _MOMENTS.merge(self.state_, block)
        self.n_samples_seen_ += int(X.shape[0])
        self._cache = None
        return self

    def _centre_scale(self) -> tuple[np.ndarray, np.ndarray]:
        if self._cache is None:
            f = _MOMENTS.finalize(self.state_)
            mean = np.where(f["count"] > 0, f["mean"], 0.0) if self.with_mean else np.zeros(len(f["mean"]))
            std = np.nan_to_num(f["std"], nan=0.0)
            scale = np.where(std > 0, std, 1.0) if self.with_std else np.ones(len(std))
            self._cache = (mean, 1.0 / scale)
        return self._cache

    @property
    def mean_(self) -> np.ndarray:
        return self._centre_scale()[0]

    @property
    def scale_(self) -> np.ndarray:
        return 1.0 / self._centre_scale()[1]

    def transform(self, X: Any) -> np.ndarray:
        """``(X - mean_) / scale_`` with the rows learned so far (``X`` as float64 if nothing is)."""
        X = np.asarray(X, dtype=np.float64)
        if self.state_ is None:
            return X
        mean, inv = self._centre_scale()
        return (X - mean) * inv

    def partial_fit_transform(self, X: Any) -> np.ndarray:
        """Transform ``X`` with the statistics before it, then learn it (the prequential order)."""
        out = self.transform(X)
        self.partial_fit(X)
        return out

    def get_state(self) -> dict[str, Any]:
        """Arrays and numbers only (a checkpoint's content)."""
        return {"moments": None if self.state_ is None else [np.asarray(a) for a in self.state_],
                "n_samples_seen": self.n_samples_seen_}

    def set_state(self, state: dict[str, Any]) -> "OnlineStandardScaler":
        m = state["moments"]
        self.state_ = None if m is None else tuple(np.asarray(a) for a in m)
        self.n_samples_seen_ = int(state["n_samples_seen"])
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
