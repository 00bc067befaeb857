"""Post-training quantization of weight matrices: float16, and int8 affine with scales kept.

An int8 tensor stores ``q`` (int8), a ``scale`` and a ``zero_point`` per tensor or per output
channel, with ``w ~= scale * (q - zero_point)``. The zero point is an integer, so an exact
``0.0`` (a pruned weight) stays exactly ``0``. Products are computed from the integers:
``X @ W = (X @ (q - zero_point)) * scale``; the integer matrix enters the matmul as exact small
integers (widened to float32 for BLAS), and the scale is applied once to the accumulated
result, so the weights are never turned back into a float64 copy that is kept.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

__all__ = ["QUANTIZE_MODES", "QTensor", "quantize", "prepare", "qmatmul", "check_mode"]

#: accepted values of ``quantize=``
QUANTIZE_MODES = (None, "float32", "float16", "int8")


def check_mode(mode: str | None) -> str:
    """Validate a quantization mode; ``None`` means float32."""
    from daskscale.errors import InputTypeError

    if mode not in QUANTIZE_MODES:
        raise InputTypeError(f"quantize={mode!r} is not supported; use one of "
                             f"{[m for m in QUANTIZE_MODES if m]} (or None for float32)")
    return mode or "float32"


@dataclass
class QTensor:
    """A (possibly sparse) quantized 2-D weight matrix ``(n_in, n_out)``.

    ``values`` holds the stored entries (all of them when dense, the nonzeros in row-major
    order when ``bitmask`` is set); ``bitmask`` is the packed nonzero pattern
    (:func:`numpy.packbits`), an eighth of a byte per weight.
    """

    mode: str
    shape: tuple[int, int]
    values: np.ndarray
    scale: np.ndarray | None = None
    zero_point: np.ndarray | None = None
    bitmask: np.ndarray | None = None

    @property
    def nbytes(self) -> int:
        """Bytes held by the arrays (what the weights cost in memory)."""
        return sum(a.nbytes for a in (self.values, self.scale, self.zero_point, self.bitmask) if a is not None)

    @property
    def sparse(self) -> bool:
        return self.bitmask is not None

    def mask(self) -> np.ndarray:
        """Boolean nonzero pattern ``(n_in, n_out)``."""
        if self.bitmask is None:
            return np.ones(self.shape, dtype=bool)
        n = self.shape[0] * self.shape[1]
        return np.unpackbits(self.bitmask, count=n).astype(bool).reshape(self.shape)

    def stored(self) -> np.ndarray | sp.csr_matrix:
        """The stored integers/floats as a dense array or a CSR matrix of the same dtype."""
        if self.bitmask is None:
            return self.values
        rows, cols = np.nonzero(self.mask())
        # scipy.sparse has no float16: widen the halves (the int8 stay int8)
        vals = self.values.astype(np.float32) if self.values.dtype == np.float16 else self.values
        return sp.csr_matrix((vals, (rows, cols)), shape=self.shape)

    def dequantize(self) -> np.ndarray:
        """float32 weights (for inspection and tests; prediction uses :func:`qmatmul`)."""
        q = self.stored()
        q = q.toarray() if sp.issparse(q) else q
        if self.mode != "int8":
            return q.astype(np.float32)
        w = (q.astype(np.float32) - self.zero_point) * self.scale
        return np.where(self.mask(), w, 0).astype(np.float32)


def _int8_params(w: np.ndarray, axis: int | None) -> tuple[np.ndarray, np.ndarray]:
    """Affine scale and integer zero point so that [min, max] (always including 0) maps to [-128, 127]."""
    lo = np.minimum(w.min(axis=axis), 0).astype(np.float64)
    hi = np.maximum(w.max(axis=axis), 0).astype(np.float64)
    scale = (hi - lo) / 255.0
    scale = np.where(scale > 0, scale, 1.0)
    zp = np.clip(np.round(-128 - lo / scale), -128, 127)
    return np.asarray(scale, np.float32), np.asarray(zp, np.float32)


def quantize(w: np.ndarray, mode: str | None = "int8", *, per_channel: bool = True,
             sparse: bool | None = None) -> QTensor:
    """Quantize a weight matrix ``(n_in, n_out)``; channels are the output columns.

    Parameters
    ----------
    w : ndarray of shape (n_in, n_out)
    mode : {"int8", "float16", "float32", None}
    per_channel : bool
        int8 only: one scale/zero point per output column (else one for the tensor).
    sparse : bool or None
        Store only the nonzeros plus a bit mask. ``None`` decides by size.

    Examples
    --------
    >>> import numpy as np
    >>> w = np.array([[0.5, -1.0], [0.0, 2.0]])
    >>> q = quantize(w, "int8")
    >>> q.values.dtype.name, bool(np.abs(q.dequantize() - w).max() < 0.01)
    ('int8', True)
    """
    mode = check_mode(mode)
    w = np.asarray(w, dtype=np.float64)
    if w.ndim == 1:
        w = w[:, None]
    nz = w != 0
    itemsize = {"int8": 1, "float16": 2, "float32": 4}[mode]
    if sparse is None:
        # a bit mask costs 1/8 byte per weight; worth it once enough weights are zero
        sparse = nz.sum() * itemsize + w.size / 8 < 0.8 * w.size * itemsize
    scale = zp = None
    if mode == "int8":
        scale, zp = _int8_params(w, 0 if per_channel else None)
        q = np.clip(np.round(w / scale) + zp, -128, 127).astype(np.int8)
        scale = np.broadcast_to(scale, (w.shape[1],)).copy() if per_channel else scale.reshape(1)
        zp = (np.broadcast_to(zp, (w.shape[1],)) if per_channel else zp.reshape(1)).astype(np.int8)
    else:
        q = w.astype(np.float16 if mode == "float16" else np.float32)
    if not sparse:
        return QTensor(mode, w.shape, q, scale, zp)
    return QTensor(mode, w.shape, q[nz], scale, zp, np.packbits(nz.ravel()))


def prepare(qt: QTensor) -> np.ndarray:
    """The matmul operand of ``qt``, built once per process and kept between blocks.

    int8: the integers with the zero point subtracted, ``q - zero_point`` (exact integers in
    [-255, 255]), zero where a weight was pruned; float16: the halves. Both are widened to
    float32 because NumPy has no int8 or float16 BLAS kernel, and BLAS on this dense operand
    beats a sparse kernel down to a few percent density. The scale is *not* folded in: it is
    applied once to the accumulated product (:func:`qmatmul`). Nothing float64 is kept, and
    the file keeps the int8 / sparse form.
    """
    q = qt.stored()
    q = q.toarray() if sp.issparse(q) else q
    if qt.mode != "int8":
        return q.astype(np.float32)
    op = q.astype(np.float32) - qt.zero_point.astype(np.float32)
    if qt.sparse:
        op[~qt.mask()] = 0.0
    return op


def qmatmul(X: np.ndarray, qt: QTensor, prepared: np.ndarray | None = None,
            bias: np.ndarray | None = None) -> np.ndarray:
    """``X @ W (+ bias)`` computed from the quantized weights (float32 result).

    ``prepared`` is :func:`prepare` ``(qt)``, kept by the caller between blocks. For int8 the
    product accumulates the integer weights and the per-channel scale is applied once, in
    place, to the result.

    Examples
    --------
    >>> import numpy as np
    >>> w = np.array([[0.5, -1.0], [0.0, 2.0]])
    >>> X = np.array([[1.0, 1.0]], dtype=np.float32)
    >>> np.round(qmatmul(X, quantize(w, "int8")), 1)
    array([[0.5, 1. ]], dtype=float32)
    """
    op = prepared if prepared is not None else prepare(qt)
    out = np.asarray(X, dtype=np.float32) @ op
    if qt.mode == "int8":
        out *= qt.scale
    if bias is not None:
        out += bias
    return out


_MODES = ("float32", "float16", "int8")
_DTYPES = {"float32": np.float32, "float16": np.float16, "int8": np.int8}


def pack(layers: list[QTensor], biases: list[np.ndarray]) -> dict[str, np.ndarray]:
    """Three flat arrays for a file: bytes (values, bit masks, int8 zero points), float32
    (scales, biases) and an int64 index. A file stores every array as its own member with a
    header and a schema entry, so few arrays keep a small model's file small."""
    raw, floats, index = [], [], []
    empty8, empty32 = np.zeros(0, np.uint8), np.zeros(0, np.float32)
    for q, b in zip(layers, biases):
        zp = empty8 if q.zero_point is None else q.zero_point.view(np.uint8)
        parts = [q.values.view(np.uint8).ravel(), empty8 if q.bitmask is None else q.bitmask, zp]
        fparts = [empty32 if q.scale is None else q.scale, np.asarray(b, np.float32)]
        index.append([*q.shape, _MODES.index(q.mode), *(p.size for p in parts), *(p.size for p in fparts)])
        raw += parts
        floats += fparts
    return {"bytes": np.concatenate(raw), "floats": np.concatenate(floats).astype(np.float32),
            "index": np.asarray(index, dtype=np.int64)}


def unpack(packed: dict[str, np.ndarray]) -> tuple[list[QTensor], list[np.ndarray]]:
    """Inverse of :func:`pack`."""
    raw, floats = packed["bytes"], packed["floats"]
    layers, biases, r, f = [], [], 0, 0
    for n_in, n_out, mode, n_raw, n_mask, n_zp, n_scale, n_b in packed["index"].tolist():
        mode = _MODES[mode]
        values = raw[r:r + n_raw].copy().view(_DTYPES[mode])
        r += n_raw
        mask = raw[r:r + n_mask].copy() if n_mask else None
        r += n_mask
        zp = raw[r:r + n_zp].copy().view(np.int8) if n_zp else None
        r += n_zp
        if mask is None:
            values = values.reshape(n_in, n_out)
        scale = floats[f:f + n_scale].copy() if n_scale else None
        biases.append(floats[f + n_scale:f + n_scale + n_b].copy())
        f += n_scale + n_b
        layers.append(QTensor(mode, (n_in, n_out), values, scale, zp, mask))
    return layers, biases
