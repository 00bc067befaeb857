"""Fixed-bin histograms per column: mergeable by adding the counts.

The bins must be known before the pass (fixed edges are what makes two blocks' counts
addable). Give ``range=(lo, hi)`` (one range for all columns, or arrays of one per column);
:func:`daskscale.reduce.describe.describe` with ``bins="auto"`` runs a cheap first pass for
the finite min/max only (one extra read, ``MinMax(finite=True)``: an ``inf`` does not stretch
the range), then the real one.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from daskscale.errors import SchemaError
from daskscale.reduce.base import Reducer

__all__ = ["Histogram", "MinMax"]


class Histogram(Reducer):
    """Counts of each column's values in ``bins`` equal-width bins over ``range``.

    Parameters
    ----------
    bins : int
        Number of bins.
    range : tuple of (float or array, float or array)
        Lower and upper edge; scalars apply to every column, arrays give one per column.
        Values outside are counted in ``below``/``above`` (``inf`` included, and also counted
        alone in ``posinf``/``neginf``); NaN in ``missing``. The upper edge is inclusive (as
        :func:`numpy.histogram`). A column whose range is not finite (no finite values) gets
        [0, 1].

    Examples
    --------
    >>> import numpy as np
    >>> h = Histogram(bins=2, range=(0.0, 2.0))
    >>> out = h.finalize(h.map(np.array([[0.5], [1.5], [2.0], [5.0], [np.nan]])))
    >>> out["counts"].tolist(), out["above"].tolist(), out["missing"].tolist()
    ([[1, 2]], [1], [1])
    """

    name = "histogram"
    float64 = True

    def __init__(self, bins: int = 20, range: tuple[Any, Any] | None = None):
        self.bins = bins
        self.range = range

    def _edges(self, p: int) -> tuple[np.ndarray, np.ndarray]:
        if self.range is None:
            raise SchemaError("Histogram needs range=(lo, hi); or use describe(..., bins='auto') to find it")
        if int(self.bins) < 1:
            raise SchemaError(f"Histogram bins must be >= 1, got {self.bins!r}")
        lo = np.broadcast_to(np.asarray(self.range[0], dtype=np.float64), (p,)).copy()
        hi = np.broadcast_to(np.asarray(self.range[1], dtype=np.float64), (p,)).copy()
        bad = ~np.isfinite(lo) | ~np.isfinite(hi)
        lo[bad], hi[bad] = 0.0, 1.0
        # A constant column gets a unit-wide range around its value.
        same = hi <= lo
        lo[same], hi[same] = lo[same] - 0.5, lo[same] + 0.5
        return lo, hi

    def map(self, X: np.ndarray, y: np.ndarray | None = None) -> dict[str, np.ndarray]:
        X = np.asarray(X, dtype=np.float64)
        n, p = X.shape
        k = int(self.bins)
        lo, hi = self._edges(p)
        with np.errstate(invalid="ignore"):
            pos = (X - lo) * (k / (hi - lo))
            below = (pos < 0).sum(axis=0)
            above = (pos > k).sum(axis=0)
            missing = np.isnan(X).sum(axis=0)
            idx = np.floor(pos)
            # The upper edge belongs to the last bin; out-of-range and NaN go to a dump bin k.
            idx[pos == k] = k - 1
            idx[~((pos >= 0) & (pos <= k))] = k
        flat = idx.astype(np.int64) + np.arange(p) * (k + 1)
        counts = np.bincount(flat.ravel(), minlength=p * (k + 1)).reshape(p, k + 1)[:, :k]
        return {"counts": counts.astype(np.int64), "below": below.astype(np.int64),
                "above": above.astype(np.int64), "missing": missing.astype(np.int64),
                "posinf": (X == np.inf).sum(axis=0).astype(np.int64),
                "neginf": (X == -np.inf).sum(axis=0).astype(np.int64)}

    def merge(self, a: dict[str, np.ndarray], b: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        return {key: a[key] + b[key] for key in a}

    def finalize(self, state: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        p = state["counts"].shape[0]
        lo, hi = self._edges(p)
        edges = lo[:, None] + (hi - lo)[:, None] * np.linspace(0.0, 1.0, int(self.bins) + 1)[None, :]
        return dict(state, edges=edges)


class MinMax(Reducer):
    """Per-column min and max of the non-NaN values: a cheap pass, e.g. to choose histogram
    ranges.

    Parameters
    ----------
    finite : bool
        Skip ``inf`` too (the range of the finite values; what histogram ranges need). By
        default an ``inf`` is the max (or min), as pandas reports it.

    Examples
    --------
    >>> import numpy as np
    >>> m = MinMax()
    >>> out = m.finalize(m.merge(m.map(np.array([[1.0], [np.nan]])), m.map(np.array([[-2.0]]))))
    >>> out["min"].tolist(), out["max"].tolist()
    ([-2.0], [1.0])
    >>> MinMax(finite=True).finalize(MinMax(finite=True).map(np.array([[1.0], [np.inf]])))["max"].tolist()
    [1.0]
    """

    name = "minmax"
    float64 = True

    def __init__(self, finite: bool = False):
        self.finite = finite

    def map(self, X: np.ndarray, y: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        X = np.asarray(X, dtype=np.float64)
        if X.shape[0] == 0:
            return np.full(X.shape[1], np.inf), np.full(X.shape[1], -np.inf)
        skip = ~np.isfinite(X) if self.finite else np.isnan(X)
        if not skip.any():
            return X.min(axis=0), X.max(axis=0)
        return np.where(skip, np.inf, X).min(axis=0), np.where(skip, -np.inf, X).max(axis=0)

    def merge(self, a: Any, b: Any) -> tuple[np.ndarray, np.ndarray]:
        return np.minimum(a[0], b[0]), np.maximum(a[1], b[1])

    def finalize(self, state: Any) -> dict[str, np.ndarray]:
        lo, hi = state
        empty = lo > hi
        return {"min": np.where(empty, np.nan, lo), "max": np.where(empty, np.nan, hi)}
