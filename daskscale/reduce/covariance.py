"""Covariance and correlation (centred, merged stably) and PCA from the covariance.

Per block: the mean and the centred cross-product ``Xc.T @ Xc`` of the complete rows (rows
with any NaN/inf are skipped and counted); merged by the multivariate form of Chan et al.'s
update, ``C = Ca + Cb + outer(d, d) * na * nb / n``, so a large common offset does not cost
precision the way an uncentred ``X.T @ X`` would. As :class:`~daskscale.reduce.Moments`, each
block is first shifted by a reference row (its first complete row, in exact int64 arithmetic
for integer input) carried in the state: a constant column has variance exactly 0.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from daskscale.reduce.base import Reducer
from daskscale.reduce.moments import ref_difference, shift

__all__ = ["Covariance", "PCA"]


class Covariance(Reducer):
    """Covariance and correlation matrices over complete rows.

    Examples
    --------
    >>> import numpy as np
    >>> c = Covariance()
    >>> X = np.array([[1.0, 2.0], [2.0, 4.0], [3.0, 6.5]])
    >>> out = c.finalize(c.merge(c.map(X[:1]), c.map(X[1:])))
    >>> bool(np.allclose(out["cov"], np.cov(X.T)))
    True
    """

    name = "covariance"
    float64 = True
    exact_ints = True

    def __init__(self, ddof: int = 1):
        self.ddof = ddof

    def map(self, X: np.ndarray, y: np.ndarray | None = None) -> tuple:
        X = np.asarray(X)
        skipped = 0
        if X.dtype.kind not in "iu":
            X = np.asarray(X, dtype=np.float64)
            ok = np.isfinite(X).all(axis=1)
            skipped = int(X.shape[0] - ok.sum())
            if skipped:
                X = X[ok]
        n = X.shape[0]
        if n == 0:
            z = np.zeros(X.shape[1])
            return 0, z, z, np.zeros((X.shape[1], X.shape[1])), skipped
        ref = X[0].copy()
        Xs = shift(X, ref)
        mean = Xs.mean(axis=0)
        Xs -= mean
        return n, ref, mean, Xs.T @ Xs, skipped

    def merge(self, a: Any, b: Any) -> tuple:
        na, ra, ma, ca, sa = a
        nb, rb, mb, cb, sb = b
        n = na + nb
        if na == 0 or nb == 0:
            return (n, *(a[1:3] if nb == 0 else b[1:3]), ca + cb, sa + sb)
        ref = np.minimum(ra, rb)  # as Moments: associative, and exact for equal references
        ma = ma + ref_difference(ra, ref)
        d = mb + ref_difference(rb, ref) - ma
        return n, ref, ma + d * (nb / n), ca + cb + np.outer(d, d) * (na * nb / n), sa + sb

    def finalize(self, state: Any) -> dict[str, Any]:
        n, ref, mean, c, skipped = state
        mean = np.asarray(ref, dtype=np.float64) + mean
        cov = c / (n - self.ddof) if n > self.ddof else np.full_like(c, np.nan)
        sd = np.sqrt(np.diag(cov))
        with np.errstate(invalid="ignore", divide="ignore"):
            corr = cov / np.outer(sd, sd)
        return {"n": n, "mean": mean, "cov": cov, "corr": corr, "rows_skipped": skipped}


class PCA(Covariance):
    """Principal components and explained variance from the one-pass covariance.

    ``components`` rows are unit eigenvectors of the covariance, largest variance first
    (sign fixed so the largest-magnitude entry is positive).

    Examples
    --------
    >>> import numpy as np
    >>> X = np.random.default_rng(0).normal(size=(500, 3)) * [5.0, 1.0, 0.1]
    >>> out = PCA().finalize(PCA().map(X))
    >>> out["explained_variance_ratio"].round(2).tolist()
    [0.96, 0.04, 0.0]
    """

    name = "pca"

    def __init__(self, n_components: int | None = None, ddof: int = 1):
        self.n_components = n_components
        self.ddof = ddof

    def finalize(self, state: Any) -> dict[str, Any]:
        out = super().finalize(state)
        w, v = np.linalg.eigh(out["cov"])
        order = np.argsort(w)[::-1][: self.n_components]
        comps = v[:, order].T
        signs = np.sign(comps[np.arange(len(comps)), np.abs(comps).argmax(axis=1)])
        comps = comps * signs[:, None]
        total = w.sum()
        return dict(out, components=comps, explained_variance=w[order],
                    explained_variance_ratio=w[order] / total if total > 0 else np.full(len(order), np.nan))
