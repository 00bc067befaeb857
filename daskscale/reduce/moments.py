"""Count, mean and variance per column by Chan et al.'s stable merge, NaN-aware.

Chan, Golub & LeVeque (1979), "Updating formulae and a pairwise algorithm for computing
sample variances". Accumulation is float64 whatever the input dtype.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from daskscale.reduce.base import Reducer

__all__ = ["Moments"]


class Moments(Reducer):
    """Per-column ``count`` (non-NaN), ``mean``, ``var`` (with ``ddof``), ``std``.

    State: ``(n, mean, M2)`` arrays per column, merged by Chan's pairwise formula, which
    stays accurate for data with a large offset (naive sums of squares do not).

    Examples
    --------
    >>> import numpy as np
    >>> m = Moments()
    >>> s = m.merge(m.map(np.array([[1.0], [2.0]])), m.map(np.array([[3.0], [np.nan]])))
    >>> m.finalize(s)["mean"].tolist(), m.finalize(s)["count"].tolist()
    ([2.0], [3])
    """

    name = "moments"
    float64 = True
    #: a float64 copy that is its own is centred in place, not into a second block-sized array
    scratch = True

    def __init__(self, ddof: int = 1):
        self.ddof = ddof

    def map(self, X: np.ndarray, y: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        X = np.asarray(X)
        # a conversion copies: that copy is this call's own, and may be overwritten
        return self._map(np.asarray(X, dtype=np.float64), own=X.dtype != np.float64)

    def map_scratch(self, X: np.ndarray, y: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        return self._map(X, own=True)

    @staticmethod
    def _map(X: np.ndarray, own: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        n_rows = X.shape[0]
        if n_rows:
            # Column sums as a matrix-vector product: BLAS reads the block once, where
            # ``X.sum(axis=0)`` on a tall, narrow block costs several times more. A finite sum
            # proves the block has no NaN (nor inf): the common case needs no masks nor
            # NaN-aware sums, only the centred block, squared in place and summed the same way.
            ones = np.ones(n_rows)
            with np.errstate(all="ignore"):  # a NaN or inf is handled (and warned of) below
                s = ones @ X
            if np.isfinite(s).all():
                mean = s / n_rows
                d = np.subtract(X, mean, out=X) if own else X - mean
                return np.full(X.shape[1], n_rows, dtype=np.int64), mean, ones @ np.square(d, out=d)
        ok = ~np.isnan(X)
        n = ok.sum(axis=0).astype(np.int64)
        with np.errstate(invalid="ignore", divide="ignore"):
            mean = np.where(n > 0, np.nansum(X, axis=0) / np.maximum(n, 1), 0.0)
            m2 = np.nansum((X - mean) ** 2, axis=0)
        return n, mean, m2

    def merge(self, a: Any, b: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        na, ma, sa = a
        nb, mb, sb = b
        n = na + nb
        with np.errstate(invalid="ignore", divide="ignore"):
            delta = mb - ma
            # every column has rows (the common case): no guard against 0 / 0 needed
            frac = nb / n if n.all() else np.where(n > 0, nb / np.maximum(n, 1), 0.0)
            mean = ma + delta * frac
            m2 = sa + sb + delta**2 * na * frac
        return n, mean, m2

    def finalize(self, state: Any) -> dict[str, np.ndarray]:
        n, mean, m2 = state
        with np.errstate(invalid="ignore", divide="ignore"):
            var = np.where(n > self.ddof, m2 / np.maximum(n - self.ddof, 1), np.nan)
        mean = np.where(n > 0, mean, np.nan)
        return {"count": n, "mean": mean, "var": var, "std": np.sqrt(var)}
