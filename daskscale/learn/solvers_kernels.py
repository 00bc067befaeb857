"""The blockwise pieces of the exact solvers: loss/gradient, Gram, and the one-pass data check.

Every piece is a :class:`~daskscale.reduce.Reducer`, so the same code runs on the workers
(one map-reduce per evaluation through :func:`daskscale.reduce.reduce`) and inside a single
task over the whole array (:func:`daskscale.reduce.update`).

Layout the products want (made once, by :func:`layout_block`): ``X`` C-contiguous, float32
kept float32 (integers become float64), shifted by a reference row ``ref`` (the data's first
row) so that a column at ``1e4 + N(0, 0.01)`` does not lose its spread to cancellation in
``X^T r - mean * sum(r)``; the target encoded (class codes ``0..K-1`` for classifiers).

Standardisation is folded into the coefficients, never applied to the block: in
standardised coordinates ``v`` (slopes) and ``c`` (intercept),

    w = v / scale,   eta = X @ w + (c - mean @ w)
    g_v = (X^T r) / scale - mean * sum(r) / scale,   g_c = sum(r)

so an evaluation is two matrix-vector products in the block's own dtype (float32 blocks
stay float32) plus length-``n`` float64 vectors; the sums are accumulated in float64.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy.special import expit

from daskscale.reduce import Reducer
from daskscale.storage.convert import ALIGN, empty_aligned

__all__ = ["LossGradient", "Gram", "Finite", "layout_block", "laid_dtype", "encode_target", "where_row"]


def laid_dtype(dtype: Any) -> type:
    """The dtype of a laid-out block: float32 stays float32, anything else becomes float64."""
    return np.float32 if np.dtype(dtype) == np.float32 else np.float64


def layout_block(X: np.ndarray, ref: np.ndarray, out: np.ndarray | None = None, *, own: bool = False) -> np.ndarray:
    """``X - ref`` as a new 64-byte aligned C-contiguous array (or written into ``out``, rows of
    such an array), in :func:`laid_dtype`.

    ``own``: ``X`` is this caller's to overwrite (a block just decoded from a store): when it
    already has the layout (its dtype, aligned, C-contiguous) it is shifted in place, which
    saves a block-sized allocation (fresh pages: ~12 ms a 20 MB block on a worker) and a copy.
    """
    if out is None and own and _laid(X) and X.flags.writeable:
        out = X
    if out is None:
        out = empty_aligned(X.shape, laid_dtype(X.dtype))
    np.subtract(X, ref.astype(out.dtype), out=out, casting="unsafe")
    return out


def _laid(X: np.ndarray) -> bool:
    """``X`` has the layout the products want: its laid dtype, aligned, C-contiguous."""
    return X.dtype == laid_dtype(X.dtype) and X.ctypes.data % ALIGN == 0 and X.flags.c_contiguous


def _blas_ready(X: np.ndarray) -> np.ndarray:
    """``X`` itself, or an aligned copy when a transfer between workers left it elsewhere (the
    same products must give the same bits wherever the block is: results do not depend on
    which worker held which block)."""
    if X.ctypes.data % ALIGN == 0 and X.flags.c_contiguous:
        return X
    out = empty_aligned(X.shape, X.dtype)
    out[...] = X
    return out


def encode_target(y: np.ndarray, classes: np.ndarray | None) -> np.ndarray:
    """Class codes ``0..K-1`` (int32) for a classifier's target, else the target as float64.

    A label outside ``classes`` is impossible here: the classes come from the same data.
    """
    y = np.asarray(y).ravel()
    if classes is None:
        return y.astype(np.float64)
    return np.searchsorted(classes, y).astype(np.int32)


class LossGradient(Reducer):
    """Summed loss and gradient of a GLM at standardised coefficients ``v`` over laid-out blocks.

    Parameters
    ----------
    kind : "logistic", "multinomial" or "poisson"
    v : array
        ``n_out * (p + 1)`` values: for each output, ``p`` slopes then the intercept, in
        standardised coordinates.
    mean, scale : arrays of ``p``
        Mean (of the laid-out, shifted block) and spread of each column.
    n_out : int
        Outputs (classes for multinomial, else 1).

    The target is the encoded one (:func:`encode_target`). The state is ``(loss, gradient)``
    in float64.

    Examples
    --------
    >>> X = np.array([[0.0], [1.0]], dtype=np.float32); y = np.array([0, 1], dtype=np.int32)
    >>> loss, g = LossGradient("logistic", np.zeros(2), np.zeros(1), np.ones(1)).map(X, y)
    >>> round(loss, 6), g.round(3).tolist()
    (1.386294, [-0.5, 0.0])
    """

    name = "loss_grad"
    needs_y = True
    whole_blocks = True  # walks the block in cache-sized pieces itself
    #: bytes of ``X`` per piece (both products of a piece run while it is in cache)
    piece_bytes = 1_600_000

    def __init__(self, kind: str, v: np.ndarray, mean: np.ndarray, scale: np.ndarray, n_out: int = 1):
        self.kind, self.v, self.mean, self.scale, self.n_out = kind, v, mean, scale, n_out
        V = np.asarray(v, dtype=np.float64).reshape(n_out, -1)
        # folded once per evaluation (not per block): original-unit slopes and offsets
        self._W = V[:, :-1] / scale
        self._b = V[:, -1] - self._W @ mean

    def map(self, X: np.ndarray, y: np.ndarray | None = None) -> tuple[float, np.ndarray]:
        n, p = X.shape
        if n == 0:
            return self.empty(p)
        X = _blas_ready(X)
        W = self._W.astype(X.dtype)
        loss = 0.0
        gx = np.zeros((self.n_out, p))
        rs = np.zeros(self.n_out)
        # both products of a piece while it is in cache: one read of the block from memory, not two
        # (the second product of a whole 20 MB block re-reads it; 5.5 against 6.9 ms a 100k x 50
        # float32 block on this 2-core machine). Piece starts stay 64-byte aligned (multiples of 64 rows).
        step = max(64, (self.piece_bytes // (p * X.itemsize)) // 64 * 64)
        for a in range(0, n, step):
            Xp, yp = X[a:a + step], y[a:a + step]
            piece_loss, r = self._residual(Xp, yp, W)
            loss += piece_loss
            gx += np.asarray(Xp.T @ r.astype(X.dtype), dtype=np.float64).T
            rs += r.sum(axis=0)
        G = (gx - np.outer(rs, self.mean)) / self.scale
        return loss, np.hstack([G, rs[:, None]]).ravel()

    def _residual(self, X: np.ndarray, y: np.ndarray, W: np.ndarray) -> tuple[float, np.ndarray]:
        """The summed loss of rows ``X`` and their residuals ``dloss/deta`` (``(n,)``, or ``(n, K)``
        for multinomial), in float64."""
        if self.kind == "multinomial":
            eta = np.asarray(X @ W.T, dtype=np.float64)
            eta += self._b
            eta -= eta.max(axis=1)[:, None]
            P = np.exp(eta)
            tot = P.sum(axis=1)
            rows = np.arange(len(X))
            # loss = sum(logsumexp(eta) - eta[i, y_i]) without a one-hot matrix
            loss = float(np.sum(np.log(tot)) - np.sum(eta[rows, y]))
            P /= tot[:, None]
            P[rows, y] -= 1.0
            return loss, P
        eta = np.asarray(X @ W[0], dtype=np.float64)
        eta += self._b[0]
        if self.kind == "logistic":
            # log(1 + e^eta) - y * eta with log(1 + e^eta) = max(eta, 0) - log(max(p, 1 - p)),
            # p = expit(eta): one log of a value in [1/2, 1], stable for any eta, and cheaper than
            # np.logaddexp (1.5 ms of the ~11 ms a 100k-row block cost)
            r = expit(eta)
            q = 1.0 - r
            np.maximum(q, r, out=q)
            np.log(q, out=q)
            loss = float(np.maximum(eta, 0.0).sum() - q.sum() - np.dot(y, eta))
            r -= y
            return loss, r
        mu = np.exp(eta)  # poisson, log link: mu - y * eta
        loss = float(np.sum(mu) - np.dot(y, eta))
        mu -= y
        return loss, mu

    def merge(self, a: tuple[float, np.ndarray], b: tuple[float, np.ndarray]) -> tuple[float, np.ndarray]:
        return a[0] + b[0], a[1] + b[1]

    def empty(self, n_features: int) -> tuple[float, np.ndarray]:
        return 0.0, np.zeros(self.n_out * (n_features + 1))


class Gram(Reducer):
    """``[X 1]^T [X 1]`` and ``[X 1]^T y`` of a block (float64 sums): all least squares needs.

    Taken 4,096 rows at a time, each piece converted to float64 (a copy that stays in cache;
    a float32 block is never converted whole): the closed form is as exact as a float64 fit.
    ``rows`` keeps only the first ``rows`` rows of every block (a sample spread over the
    data, for a preconditioner); ``with_y=False`` leaves ``X^T y`` at zero.

    Examples
    --------
    >>> G, b = Gram().map(np.array([[1.0], [2.0]]), np.array([1.0, 3.0]))
    >>> G.tolist(), b.tolist()
    ([[5.0, 3.0], [3.0, 2.0]], [7.0, 4.0])
    """

    name = "gram"
    needs_y = True
    whole_blocks = True  # 4,096 rows at a time; ``rows`` samples the first rows of the block
    piece = 4_096

    def __init__(self, rows: int | None = None, with_y: bool = True):
        self.rows, self.with_y = rows, with_y

    def map(self, X: np.ndarray, y: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        p = X.shape[1]
        G = np.zeros((p + 1, p + 1))
        b = np.zeros(p + 1)
        end = X.shape[0] if self.rows is None else min(self.rows, X.shape[0])
        yy = np.asarray(y, dtype=np.float64).ravel() if (self.with_y and y is not None) else None
        for a in range(0, end, self.piece):
            Xp = np.asarray(X[a:min(a + self.piece, end)], dtype=np.float64)
            G[:p, :p] += Xp.T @ Xp
            s = np.ones(len(Xp)) @ Xp
            G[:p, p] += s
            G[p, :p] += s
            G[p, p] += len(Xp)
            if yy is not None:
                yp = yy[a:a + len(Xp)]
                b[:p] += Xp.T @ yp
                b[p] += yp.sum()
        return G, b

    def merge(self, a: Any, b: Any) -> Any:
        return a[0] + b[0], a[1] + b[1]

    def empty(self, n_features: int) -> tuple[np.ndarray, np.ndarray]:
        return np.zeros((n_features + 1, n_features + 1)), np.zeros(n_features + 1)


class Finite(Reducer):
    """Where the first NaN or infinity is, in row order: ``(rows, first_bad_row, what, y_sum, y_min)``.

    ``first_bad_row`` is ``-1`` when every value is finite; ``y_sum`` and ``y_min`` describe a
    numeric target (a Poisson fit needs its mean and its sign; 0 and inf otherwise). The merge keeps the earlier
    state's finding, so the tree reduction (which merges in row order) names the first bad
    row of the whole data. A finite sum proves a clean block in one read.

    Examples
    --------
    >>> f = Finite()
    >>> f.finalize(f.merge(f.map(np.ones((3, 1))), f.map(np.array([[1.0], [np.inf]]))))[:3]
    (5, 4, 'inf in X')
    """

    name = "finite"
    needs_y = True
    whole_blocks = True  # one sum of the block (no copy)

    def map(self, X: np.ndarray, y: np.ndarray | None = None) -> tuple[int, int, str, float, float]:
        n = X.shape[0]
        ys, ym = 0.0, np.inf
        if y is not None and y.dtype.kind in "biuf" and y.size:
            with np.errstate(all="ignore"):
                ys, ym = float(y.sum(dtype=np.float64)), float(np.min(y))
        for label, a in (("X", X), ("y", y)):
            if a is None or a.dtype.kind not in "fc" or not a.size:
                continue
            with np.errstate(all="ignore"):  # summed in its own dtype (float32: 1.8 against 3.2 ms a 100k x 50
                ok = np.isfinite(a.sum())  # block); an overflow to inf only sends a clean block to the exact look
            if ok:
                continue
            a2 = a.reshape(n, -1)
            bad = ~np.isfinite(a2).all(axis=1)
            if bad.any():  # a finite block can sum to inf (overflow): then nothing is bad
                row = int(np.flatnonzero(bad)[0])
                what = "NaN" if np.isnan(a2[row]).any() else "inf"
                return n, row, f"{what} in {label}", ys, ym
        return n, -1, "", ys, ym

    def merge(self, a: tuple, b: tuple) -> tuple[int, int, str, float, float]:
        ys, ym = a[3] + b[3], min(a[4], b[4])
        if a[1] >= 0:
            return a[0] + b[0], a[1], a[2], ys, ym
        return a[0] + b[0], (a[0] + b[1]) if b[1] >= 0 else -1, b[2], ys, ym

    def empty(self, n_features: int) -> tuple[int, int, str, float, float]:
        return 0, -1, "", 0.0, np.inf


def where_row(row: int, row_chunks: tuple[int, ...]) -> str:
    """``"block 2 (rows 200-299), row 17 of the block (row 217 of the data)"`` for a data row.

    Examples
    --------
    >>> where_row(217, (100, 100, 100))
    'block 2 (rows 200-299), row 17 of the block (row 217 of the data)'
    """
    ends = np.cumsum(row_chunks)
    i = int(np.searchsorted(ends, row, side="right"))
    start = int(ends[i - 1]) if i else 0
    return f"block {i} (rows {start}-{int(ends[i]) - 1}), row {row - start} of the block (row {row} of the data)"
