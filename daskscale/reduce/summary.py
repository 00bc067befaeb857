"""Count, missing, sum, mean, var/std, skewness, kurtosis, min and max in one fused map.

The state per column is ``(n, mean, M2, M3, M4)`` over the finite values, merged by the
pairwise formulas of Chan, Golub & LeVeque (1979) for ``M2`` and Pébay (2008, "Formulas for
robust, one-pass parallel computation of covariances and arbitrary-order statistical
moments", SAND2008-6212) for ``M3``/``M4``, plus NaN / +inf / -inf counts and min/max.
Within a block the moments are computed two-pass around the block mean, so data with a
large offset (1e8 +- 1) keeps its variance; accumulation is float64 whatever the input.

``inf`` values are counted (``n_posinf``/``n_neginf``) and show in ``min``/``max``, but the
moments use the finite values only (an infinite mean or NaN variance tells nothing).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from daskscale.reduce.base import Reducer

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
    ``scipy.stats.skew``/``kurtosis`` with their defaults. ``count`` is the number of finite
    values; ``missing`` the number of NaN.

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

    def __init__(self, ddof: int = 1):
        self.ddof = ddof

    def map(self, X: np.ndarray, y: np.ndarray | None = None) -> dict[str, np.ndarray]:
        X = np.asarray(X, dtype=np.float64)
        p = X.shape[1]
        zeros = np.zeros(p, dtype=np.int64)
        if X.shape[0] == 0:
            z = np.zeros(p)
            return {"n": zeros, "mean": z, "m2": z, "m3": z, "m4": z, "nan": zeros, "posinf": zeros,
                    "neginf": zeros, "min": np.full(p, np.inf), "max": np.full(p, -np.inf)}
        total = X.sum(axis=0)
        if np.isfinite(total).all():
            # Fast path (the common case): a finite column sum means no NaN and no inf.
            n = np.full(p, X.shape[0], dtype=np.int64)
            mean = total / X.shape[0]
            d = X - mean
            nan = posinf = neginf = zeros
            lo, hi = X.min(axis=0), X.max(axis=0)
        else:
            fin = np.isfinite(X)
            n = fin.sum(axis=0).astype(np.int64)
            isnan = np.isnan(X)
            nan = isnan.sum(axis=0).astype(np.int64)
            posinf = (X == np.inf).sum(axis=0).astype(np.int64)
            neginf = (X == -np.inf).sum(axis=0).astype(np.int64)
            with np.errstate(invalid="ignore", divide="ignore"):
                mean = np.where(n > 0, np.where(fin, X, 0.0).sum(axis=0) / np.maximum(n, 1), 0.0)
            d = np.where(fin, X - mean, 0.0)
            lo = np.where(isnan, np.inf, X).min(axis=0)
            hi = np.where(isnan, -np.inf, X).max(axis=0)
        d2 = d * d
        return {"n": n, "mean": mean, "m2": d2.sum(axis=0), "m3": np.einsum("ij,ij->j", d2, d),
                "m4": np.einsum("ij,ij->j", d2, d2), "nan": nan, "posinf": posinf, "neginf": neginf,
                "min": lo, "max": hi}

    def merge(self, a: dict[str, np.ndarray], b: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        na, nb = a["n"].astype(np.float64), b["n"].astype(np.float64)
        n = na + nb
        with np.errstate(invalid="ignore", divide="ignore"):
            nn = np.maximum(n, 1.0)
            delta = b["mean"] - a["mean"]
            fb = nb / nn
            mean = a["mean"] + delta * fb
            m2 = a["m2"] + b["m2"] + delta**2 * na * fb
            m3 = (a["m3"] + b["m3"] + delta**3 * na * nb * (na - nb) / nn**2
                  + 3.0 * delta * (na * b["m2"] - nb * a["m2"]) / nn)
            m4 = (a["m4"] + b["m4"] + delta**4 * na * nb * (na * na - na * nb + nb * nb) / nn**3
                  + 6.0 * delta**2 * (na * na * b["m2"] + nb * nb * a["m2"]) / nn**2
                  + 4.0 * delta * (na * b["m3"] - nb * a["m3"]) / nn)
        # An empty side contributes nothing (and must not turn the other into NaN).
        mean = np.where(nb == 0, a["mean"], np.where(na == 0, b["mean"], mean))
        for arr, key in ((m2, "m2"), (m3, "m3"), (m4, "m4")):
            arr[:] = np.where(nb == 0, a[key], np.where(na == 0, b[key], arr))
        return {"n": a["n"] + b["n"], "mean": mean, "m2": m2, "m3": m3, "m4": m4,
                "nan": a["nan"] + b["nan"], "posinf": a["posinf"] + b["posinf"],
                "neginf": a["neginf"] + b["neginf"], "min": np.minimum(a["min"], b["min"]),
                "max": np.maximum(a["max"], b["max"])}

    def finalize(self, state: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        n = state["n"]
        nf = n.astype(np.float64)
        m2 = state["m2"]
        seen = n + state["posinf"] + state["neginf"]
        with np.errstate(invalid="ignore", divide="ignore"):
            var = np.where(n > self.ddof, m2 / np.maximum(nf - self.ddof, 1), np.nan)
            # A constant column has no defined shape: NaN, as scipy.
            ok = (n > 0) & (m2 > 0)
            skew = np.where(ok, np.sqrt(nf) * state["m3"] / np.where(ok, m2, 1.0) ** 1.5, np.nan)
            kurt = np.where(ok, nf * state["m4"] / np.where(ok, m2, 1.0) ** 2 - 3.0, np.nan)
        mean = np.where(n > 0, state["mean"], np.nan)
        return {"count": n, "missing": state["nan"], "n_posinf": state["posinf"],
                "n_neginf": state["neginf"], "sum": np.where(n > 0, state["mean"] * nf, 0.0),
                "mean": mean, "var": var, "std": np.sqrt(var), "skew": skew, "kurtosis": kurt,
                "min": np.where(seen > 0, state["min"], np.nan), "max": np.where(seen > 0, state["max"], np.nan)}
