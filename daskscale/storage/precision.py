"""What a float32 cast loses, measured per column in the pass that converts the data.

A store's ``X`` is float32 by default. For most data that keeps far more digits than the
data carries, but not for a column whose spread is tiny next to its magnitude: values at
``1e12 + N(0, 1)`` all round to multiples of 65,536 (the spread is gone), and int64 values
near ``2**62`` round to multiples of ``2**39``. Each converted block records, per column,
the largest rounding error ``max |x - float32(x)|`` together with the moments of ``x``; the
block states merge (Chan et al.'s pairwise update), and the client names every column whose

    max |x - float32(x)| / scale  >  LOSS_THRESHOLD  (1e-4)

where ``scale`` is the column's standard deviation (its largest ``|x|`` when it is
constant). At 1e-4 the rounding moves a value by more than a ten-thousandth of the
column's spread: well below that float32 is harmless for statistics and learning; above it
a user should ingest with ``dtype="float64"`` (or centre the column first).
"""

from __future__ import annotations

import warnings
from typing import Sequence

import numpy as np

from daskscale.errors import DaskscaleWarning, PrecisionWarning

__all__ = ["DaskscaleWarning", "PrecisionWarning", "LOSS_THRESHOLD", "cast_loss", "merge_loss",
           "lossy_columns", "warn_if_lossy"]

LOSS_THRESHOLD = 1e-4

# rows of a loss state, one column per feature
_N, _MEAN, _M2, _ERR, _ABS = range(5)


def needs_check(dtype: np.dtype, target: np.dtype) -> bool:
    """Whether casting ``dtype`` to ``target`` can round (float64 -> float32, int32+ -> float32)."""
    try:
        dtype, target = np.dtype(getattr(dtype, "numpy_dtype", dtype)), np.dtype(target)
    except TypeError:  # an extension dtype without a NumPy equivalent: measure rather than guess
        return True
    if target.kind != "f" or dtype.kind not in "iuf":
        return False
    mantissa = np.finfo(target).nmant + 1
    if dtype.kind == "f":
        return np.finfo(dtype).nmant + 1 > mantissa
    return dtype.itemsize * 8 - (dtype.kind == "i") > mantissa


def cast_loss(values: np.ndarray, target: np.dtype = np.float32) -> np.ndarray:
    """The loss state of casting the 2-D ``values`` (rows x columns) to ``target``.

    A ``(5, n_columns)`` float64 array: count, mean and sum of squared deviations of the
    finite values, largest rounding error, largest ``|x|``. Non-finite values are skipped.
    """
    x = np.asarray(values, dtype=np.float64)
    if x.ndim == 1:
        x = x[:, None]
    finite = np.isfinite(x)
    n = finite.sum(axis=0).astype(np.float64)
    xz = np.where(finite, x, 0.0)
    # shifted by the first finite value, so that rounding of a large mean adds no variance
    # (a constant column keeps M2 == 0 exactly)
    first = np.argmax(finite, axis=0)
    ref = xz[first, np.arange(x.shape[1])] if len(x) else np.zeros(x.shape[1])
    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
        shifted = np.where(finite, x - ref, 0.0)
        mean_shift = np.where(n > 0, shifted.sum(axis=0) / np.maximum(n, 1), 0.0)
        dev = np.where(finite, shifted - mean_shift, 0.0)
        err = np.where(finite, np.abs(xz - xz.astype(target).astype(np.float64)), 0.0)  # inf: overflow
        m2 = (dev * dev).sum(axis=0)
    state = np.zeros((5, x.shape[1]))
    state[_N], state[_MEAN], state[_M2] = n, ref + mean_shift, m2
    if len(x):
        state[_ERR] = err.max(axis=0)
        state[_ABS] = np.abs(xz).max(axis=0)
    return state


def merge_loss(a: np.ndarray | None, b: np.ndarray | None) -> np.ndarray | None:
    """Merge two loss states (``None`` is the empty state)."""
    if a is None or b is None:
        return b if a is None else a
    out = np.empty_like(a)
    na, nb = a[_N], b[_N]
    n = na + nb
    safe = np.maximum(n, 1)
    with np.errstate(invalid="ignore", over="ignore"):
        delta = b[_MEAN] - a[_MEAN]
        out[_MEAN] = np.where(nb > 0, np.where(na > 0, a[_MEAN] + delta * nb / safe, b[_MEAN]), a[_MEAN])
        out[_M2] = a[_M2] + b[_M2] + np.where(na * nb > 0, delta * delta * na * nb / safe, 0.0)
    out[_N] = n
    out[_ERR] = np.maximum(a[_ERR], b[_ERR])
    out[_ABS] = np.maximum(a[_ABS], b[_ABS])
    return out


def lossy_columns(state: np.ndarray | None, names: Sequence[str],
                  threshold: float = LOSS_THRESHOLD) -> list[tuple[str, float]]:
    """``(name, relative loss)`` of each column whose loss exceeds ``threshold``."""
    if state is None:
        return []
    n = np.maximum(state[_N], 1)
    std = np.sqrt(state[_M2] / n)
    scale = np.where(std > 0, std, state[_ABS])
    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
        rel = np.where(np.isinf(state[_ERR]), np.inf, np.where(scale > 0, state[_ERR] / scale, 0.0))
    return [(str(names[j]), float(rel[j])) for j in range(len(names)) if rel[j] > threshold]


def warn_if_lossy(state: np.ndarray | None, names: Sequence[str], source: str) -> None:
    """Give one :class:`PrecisionWarning` naming every column that float32 rounds too coarsely."""
    bad = lossy_columns(state, names)
    if not bad:
        return
    cols = ", ".join(f"{name!r} (rounding error {rel:.2g} x its std)" for name, rel in bad)
    warnings.warn(PrecisionWarning(
        f"{source}: float32 loses precision in column(s) {cols}, more than the "
        f"{LOSS_THRESHOLD:g} allowed; ingest with dtype='float64' (CLI: --dtype float64) to keep it"
    ), stacklevel=3)
