"""Count, mean and variance per column by Chan et al.'s stable merge, shifted and NaN-aware.

Chan, Golub & LeVeque (1979), "Updating formulae and a pairwise algorithm for computing
sample variances"; Pébay (2008, SAND2008-6212) for the third and fourth moments.
Accumulation is float64 whatever the input dtype.

Each block is first shifted by a per-column *reference value*, the first finite value of the
block, and its moments are those of ``x - ref``. The state carries ``ref``, so rounding cannot
manufacture variance: a constant column gives ``x - ref == 0`` exactly, hence mean ``ref``
exactly and ``M2 == 0``, however many blocks and NaN holes. Integer blocks are shifted in
exact int64 arithmetic before the conversion to float64 (int64 values near 2**62 keep their
spread). Merging two states keeps the smaller of the two references and translates the other
side's mean by the difference of the references (exact for references within a factor of 2 of
each other, Sterbenz's lemma, and for integer references): the merge stays associative and
commutative, and merging states of a constant column adds exact zeros.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from daskscale.reduce.base import Reducer

__all__ = ["Moments", "block_moments", "merge_moments", "central_moments", "no_spread", "shift", "ref_difference"]

_EPS = float(np.finfo(np.float64).eps)
#: integer differences below this are computed in int64 (no overflow, however the signs fall)
_INT_SAFE = 2.0**62


def _first_finite(X: np.ndarray) -> np.ndarray:
    """Each column's first finite value (0 for a column with none: it then has no rows)."""
    fin = np.isfinite(X)
    ref = X[fin.argmax(axis=0), np.arange(X.shape[1])].astype(np.float64)
    ref[~fin.any(axis=0)] = 0.0
    return ref


def _shift_ints(X: np.ndarray, ref: np.ndarray) -> np.ndarray:
    """``X - ref`` as float64, subtracted in int64 when no difference can overflow."""
    lo, hi = X.min(axis=0), X.max(axis=0)
    span = np.maximum(hi.astype(np.float64) - ref.astype(np.float64), ref.astype(np.float64) - lo.astype(np.float64))
    fits = X.dtype.kind == "i" or X.dtype.itemsize < 8 or int(hi.max()) < 2**63
    if fits and (span < _INT_SAFE).all():
        return (X.astype(np.int64, copy=False) - ref.astype(np.int64)).astype(np.float64)
    return X.astype(np.float64) - ref.astype(np.float64)


def shift(X: np.ndarray, ref: np.ndarray, own: bool = False) -> np.ndarray:
    """``X - ref`` as float64: exact in int64 for integer ``X`` where no difference can
    overflow; in place when ``X`` is a float64 array of the caller's own (``own``)."""
    if X.dtype.kind in "iu":
        return _shift_ints(X, ref)
    return np.subtract(X, ref, out=X if own else None)


def ref_difference(r1: np.ndarray, r2: np.ndarray) -> np.ndarray:
    """``r1 - r2`` as float64, exact in int64 for integer references that allow it."""
    if r1.dtype.kind in "iu" and r2.dtype.kind in "iu":
        f = r1.astype(np.float64) - r2.astype(np.float64)
        if (np.abs(f) < _INT_SAFE).all():
            return (r1.astype(np.int64) - r2.astype(np.int64)).astype(np.float64)
        return f
    return np.asarray(r1, dtype=np.float64) - np.asarray(r2, dtype=np.float64)


def block_moments(X: np.ndarray, order: int = 2, own: bool = False, finite_only: bool = False) -> tuple:
    """Shifted moments of one block: ``(n, ref, mean, M2)``, or ``(n, ref, mean, M2, M3, M4)``
    for ``order=4``, where ``mean`` and the central sums ``Mk`` are those of ``x - ref``.

    ``X`` is float64 (overwritten when ``own``) or an integer array. NaN are skipped; ``inf``
    is skipped too when ``finite_only``, else it propagates (mean ``inf``, ``M2`` NaN).
    """
    n_rows, p = X.shape
    if n_rows == 0:
        z = np.zeros(p)
        return (np.zeros(p, dtype=np.int64), z, z, *([z] * (order - 1)))
    ones = np.ones(n_rows)
    ref = X[0].copy() if X.dtype.kind in "iu" else X[0].astype(np.float64)
    if X.dtype.kind == "f" and not np.isfinite(ref).all():
        ref = _first_finite(X)
    d = shift(X, ref, own)
    with np.errstate(all="ignore"):  # a NaN or inf is handled below
        s = ones @ d
    if np.isfinite(s).all():
        # The common case: no NaN nor inf, no masks; centred and squared in place.
        n = np.full(p, n_rows, dtype=np.int64)
        mean = s / n_rows
        d -= mean
        if order == 2:
            return n, ref, mean, ones @ np.square(d, out=d)
        d2 = d * d
        return n, ref, mean, ones @ d2, np.einsum("ij,ij->j", d2, d), np.einsum("ij,ij->j", d2, d2)
    keep = np.isfinite(d) if finite_only else ~np.isnan(d)
    n = keep.sum(axis=0).astype(np.int64)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.where(n > 0, np.where(keep, d, 0.0).sum(axis=0) / np.maximum(n, 1), 0.0)
        c = np.where(keep, d - mean, 0.0)
    c2 = c * c
    if order == 2:
        return n, ref, mean, c2.sum(axis=0)
    return n, ref, mean, c2.sum(axis=0), np.einsum("ij,ij->j", c2, c), np.einsum("ij,ij->j", c2, c2)


def merge_moments(a: tuple, b: tuple) -> tuple:
    """Merge two :func:`block_moments` states (both of order 2, or both of order 4)."""
    na_i, ra, ma, *ca = a
    nb_i, rb, mb, *cb = b
    # a state of no rows is neutral as it is (and must not turn integer references into floats)
    if not nb_i.any():
        return a
    if not na_i.any():
        return b
    na, nb = na_i.astype(np.float64), nb_i.astype(np.float64)
    n = na + nb
    # The smaller reference is kept (associative and commutative); an empty side has none.
    ref = np.where(na_i == 0, rb, np.where(nb_i == 0, ra, np.minimum(ra, rb)))
    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
        ma_t = ma + ref_difference(ra, ref)
        delta = mb + ref_difference(rb, ref) - ma_t
        nn = np.maximum(n, 1.0)
        fb = nb / nn
        mean = ma_t + delta * fb
        m2 = ca[0] + cb[0] + delta**2 * na * fb
        out = [mean, m2]
        if len(ca) == 3:
            m3 = (ca[1] + cb[1] + delta**3 * na * nb * (na - nb) / nn**2
                  + 3.0 * delta * (na * cb[0] - nb * ca[0]) / nn)
            m4 = (ca[2] + cb[2] + delta**4 * na * nb * (na * na - na * nb + nb * nb) / nn**3
                  + 6.0 * delta**2 * (na * na * cb[0] + nb * nb * ca[0]) / nn**2
                  + 4.0 * delta * (na * cb[1] - nb * ca[1]) / nn)
            out += [m3, m4]
    # An empty side contributes nothing: the other side's state, bit for bit.
    sides = [(ma, mb), *zip(ca, cb)]
    out = [np.where(nb_i == 0, x, np.where(na_i == 0, y, v)) for v, (x, y) in zip(out, sides)]
    return (na_i + nb_i, ref, *out)


def central_moments(state: tuple) -> tuple:
    """``(n, mean, M2, ...)`` of a state: the mean translated back by its reference."""
    n, ref, mean, *cs = state
    return (n, np.asarray(ref, dtype=np.float64) + mean, *cs)


def no_spread(n: np.ndarray, mean: np.ndarray, m2: np.ndarray) -> np.ndarray:
    """Columns whose spread is below the float64 resolution of their mean.

    ``M2 <= n * (eps * |mean|)**2``: the biased variance is at most the square of one unit in
    the last place of the mean. A constant column gives ``M2 == 0`` exactly (see the module
    notes) and always qualifies; skewness and kurtosis of such a column are NaN.
    """
    with np.errstate(invalid="ignore", over="ignore"):
        return m2 <= n * (_EPS * np.abs(mean)) ** 2


def _legacy(state: tuple) -> tuple:
    # Checkpoints written before the state kept its reference value hold (n, mean, M2).
    if len(state) == 3:
        n, mean, m2 = state
        return n, np.zeros_like(mean), mean, m2
    return state


class Moments(Reducer):
    """Per-column ``count`` (non-NaN), ``mean``, ``var`` (with ``ddof``), ``std``.

    State: ``(n, ref, mean, M2)`` arrays per column, the moments of ``x - ref`` (see the module
    notes), merged by Chan's pairwise formula. A constant column has ``var`` exactly 0; a large
    offset (1e12 + N(0, 1)) keeps its variance; int64 input is shifted exactly. An ``inf``
    makes its column's mean ``inf`` (NaN with both signs) and its variance NaN, as pandas.

    Examples
    --------
    >>> import numpy as np
    >>> m = Moments()
    >>> s = m.merge(m.map(np.array([[1.0], [2.0]])), m.map(np.array([[3.0], [np.nan]])))
    >>> m.finalize(s)["mean"].tolist(), m.finalize(s)["count"].tolist()
    ([2.0], [3])
    >>> m.finalize(m.map(np.full((5, 1), 3.3)))["std"].tolist()
    [0.0]
    """

    name = "moments"
    float64 = True
    exact_ints = True
    #: a float64 copy that is its own is centred in place, not into a second block-sized array
    scratch = True

    def __init__(self, ddof: int = 1):
        self.ddof = ddof

    def map(self, X: np.ndarray, y: np.ndarray | None = None) -> tuple:
        X = np.asarray(X)
        if X.dtype.kind in "iu":
            return block_moments(X)
        # a conversion copies: that copy is this call's own, and may be overwritten
        return block_moments(np.asarray(X, dtype=np.float64), own=X.dtype != np.float64)

    def map_scratch(self, X: np.ndarray, y: np.ndarray | None = None) -> tuple:
        return block_moments(X, own=True)

    def merge(self, a: Any, b: Any) -> tuple:
        return merge_moments(_legacy(a), _legacy(b))

    def finalize(self, state: Any) -> dict[str, np.ndarray]:
        n, mean, m2 = central_moments(_legacy(state))
        with np.errstate(invalid="ignore", divide="ignore"):
            var = np.where(n > self.ddof, m2 / np.maximum(n - self.ddof, 1), np.nan)
        mean = np.where(n > 0, mean, np.nan)
        return {"count": n, "mean": mean, "var": var, "std": np.sqrt(var)}
