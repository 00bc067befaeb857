"""Count, missing, sum, mean, var/std, skewness, kurtosis, min and max in one fused map.

The moments per column are :mod:`daskscale.reduce.moments`' shifted state of order 4,
``(n, ref, mean, M2, M3, M4)`` over the finite values, merged by the pairwise formulas of
Chan, Golub & LeVeque (1979) for ``M2`` and Pébay (2008, "Formulas for robust, one-pass
parallel computation of covariances and arbitrary-order statistical moments", SAND2008-6212)
for ``M3``/``M4``; plus NaN / +inf / -inf counts and min/max. Each block is shifted by its
first finite value and then computed two-pass around its mean, so a constant column has std
exactly 0 and data with a large offset (1e12 +- 1) keeps its variance; accumulation is float64
whatever the input, and integer input is shifted in exact int64 arithmetic.

``inf`` values are counted (``n_posinf``/``n_neginf``) and show in ``min``/``max``; as pandas,
they make ``sum``/``mean`` infinite (NaN when both signs occur) and ``var``/``std``/``skew``/
``kurtosis`` NaN. The state keeps the moments of the finite values, so that policy is applied
only when finalizing.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from daskscale.reduce.base import Reducer
from daskscale.reduce.moments import block_moments, central_moments, merge_moments, no_spread

__all__ = ["Summary", "SUMMARY_STATS"]

#: what :meth:`Summary.finalize` returns, per column
SUMMARY_STATS = ("count", "missing", "n_posinf", "n_neginf", "sum", "mean", "var", "std", "skew",
                 "kurtosis", "min", "max")


class Summary(Reducer):
    """Every scalar per-column statistic from one float64 view of the block.

    Parameters
    ----------
    ddof : int
        Delta degrees of freedom of ``var``/``std`` (1: sample variance, as pandas).

    Notes
    -----
    ``skew`` and ``kurtosis`` (excess, Fisher) are the biased moment estimators, as
    ``scipy.stats.skew``/``kurtosis`` with their defaults; they are NaN for a column without
    spread (constant, or spread below the float64 resolution of its mean:
    :func:`~daskscale.reduce.moments.no_spread`), as pandas. ``count`` is the number of finite
    values; ``missing`` the number of NaN; an ``inf`` makes ``mean`` infinite and the other
    moments NaN (see the module notes).

    Examples
    --------
    >>> import numpy as np
    >>> s = Summary()
    >>> st = s.merge(s.map(np.array([[1.0], [2.0]])), s.map(np.array([[3.0], [np.nan]])))
    >>> out = s.finalize(st)
    >>> out["mean"].tolist(), out["count"].tolist(), out["missing"].tolist(), out["max"].tolist()
    ([2.0], [3], [1], [3.0])
    """

    name = "summary"
    float64 = True
    exact_ints = True

    def __init__(self, ddof: int = 1):
        self.ddof = ddof

    def map(self, X: np.ndarray, y: np.ndarray | None = None) -> dict[str, Any]:
        X = np.asarray(X)
        if X.dtype.kind not in "iu":
            X = np.asarray(X, dtype=np.float64)
        p = X.shape[1]
        zeros = np.zeros(p, dtype=np.int64)
        moments = block_moments(X, order=4, finite_only=True)
        if X.shape[0] == 0:
            return {"moments": moments, "nan": zeros, "posinf": zeros, "neginf": zeros,
                    "min": np.full(p, np.inf), "max": np.full(p, -np.inf)}
        lo, hi = X.min(axis=0).astype(np.float64), X.max(axis=0).astype(np.float64)
        if X.dtype.kind in "iu" or (moments[0] == X.shape[0]).all():
            # every value finite (the common case): no NaN nor inf to count
            return {"moments": moments, "nan": zeros, "posinf": zeros, "neginf": zeros, "min": lo, "max": hi}
        isnan = np.isnan(X)
        return {"moments": moments, "nan": isnan.sum(axis=0).astype(np.int64),
                "posinf": (X == np.inf).sum(axis=0).astype(np.int64),
                "neginf": (X == -np.inf).sum(axis=0).astype(np.int64),
                "min": np.where(isnan, np.inf, X).min(axis=0), "max": np.where(isnan, -np.inf, X).max(axis=0)}

    def merge(self, a: dict[str, Any], b: dict[str, Any]) -> dict[str, Any]:
        return {"moments": merge_moments(a["moments"], b["moments"]),
                "nan": a["nan"] + b["nan"], "posinf": a["posinf"] + b["posinf"],
                "neginf": a["neginf"] + b["neginf"], "min": np.minimum(a["min"], b["min"]),
                "max": np.maximum(a["max"], b["max"])}

    def finalize(self, state: dict[str, Any]) -> dict[str, np.ndarray]:
        n, mean, m2, m3, m4 = central_moments(state["moments"])
        nf = n.astype(np.float64)
        pos, neg = state["posinf"], state["neginf"]
        inf = (pos > 0) | (neg > 0)
        seen = n + pos + neg
        with np.errstate(invalid="ignore", divide="ignore"):
            var = np.where((n > self.ddof) & ~inf, m2 / np.maximum(nf - self.ddof, 1), np.nan)
            ok = (n > 0) & ~inf & ~no_spread(nf, mean, m2)
            skew = np.where(ok, np.sqrt(nf) * m3 / np.where(ok, m2, 1.0) ** 1.5, np.nan)
            kurt = np.where(ok, nf * m4 / np.where(ok, m2, 1.0) ** 2 - 3.0, np.nan)
        # an inf wins the mean and the sum, as in pandas: +inf, -inf, or NaN for both signs
        infinite = np.where(neg == 0, np.inf, np.where(pos == 0, -np.inf, np.nan))
        mean = np.where(inf, infinite, np.where(n > 0, mean, np.nan))
        total = np.where(inf, infinite, np.where(n > 0, mean * nf, 0.0))
        return {"count": n, "missing": state["nan"], "n_posinf": pos, "n_neginf": neg, "sum": total,
                "mean": mean, "var": var, "std": np.sqrt(var), "skew": skew, "kurtosis": kurt,
                "min": np.where(seen > 0, state["min"], np.nan), "max": np.where(seen > 0, state["max"], np.nan)}
