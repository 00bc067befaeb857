"""Post-training quantization of weight matrices: float16, and symmetric int8 with the scales kept.

An int8 tensor stores ``q`` (int8 in [-127, 127]) and a ``scale`` per tensor or per output
channel, with ``w ~= scale * q`` and ``scale = max|w| / 127``. There is no zero point: an exact
``0.0`` (a pruned weight) is exactly ``0``, and the file holds nothing per channel but the scale
(symmetric quantization, as in Jacob et al. 2018 and PyTorch's per-channel weight observers).
Products are computed from the integers: ``X @ W = (X @ q) * scale``; the integer matrix enters
the matmul as exact small integers (widened to float32 for BLAS), and the scale is applied once
to the accumulated result, so the weights are never turned back into a float64 copy that is kept.

Per-channel scales are stored as one float32 ``base`` (the largest) times a float16 ratio per
channel (half the bytes of float32 scales; the scales are rounded to that form *before* the
weights are quantized, so what is predicted in memory and what is loaded from a file agree
exactly). A model file packs every layer into one byte array (:func:`pack`): each array in a
file costs a zip member, an ``.npy`` header and a schema entry.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

__all__ = ["QUANTIZE_MODES", "QTensor", "quantize", "quantize_bias", "prepare", "qmatmul", "check_mode", "pack",
           "unpack"]

#: accepted values of ``quantize=``
QUANTIZE_MODES = (None, "float32", "float16", "int8")

_QMAX = 127  # symmetric: [-127, 127], so -w quantizes to -q


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
    (:func:`numpy.packbits`), an eighth of a byte per weight. ``zero_point`` is only set on
    tensors read from files written before quantization became symmetric (affine int8).
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
        return _operand(self) * (self.scale if self.mode == "int8" else np.float32(1))


def _ratios(values: np.ndarray) -> tuple[np.float32, np.ndarray] | None:
    """``(base, ratios)``: a float32 ``base`` (the largest value) and float16 ``ratios`` in (0, 1],
    the compact form of a layer's int8 scales; ``None`` when a ratio would fall below float16's
    normal range (a value 10^4 times smaller than the largest)."""
    base = np.float32(values.max())
    ratio = (np.asarray(values, np.float64) / base).astype(np.float16)
    return (base, ratio) if ratio.min() >= np.finfo(np.float16).smallest_normal else None


def _int8_scale(amax: np.ndarray) -> np.ndarray:
    """``max|w| / 127`` per channel, rounded to what a file stores (see :func:`pack`).

    The float32 base times float16 ratios of :func:`_ratios`, or the float32 scales when
    those would lose precision. An all-zero channel gets the base (its integers are all 0
    whatever the step).
    """
    top = float(amax.max()) or 1.0
    scale = np.where(amax > 0, amax, top) / _QMAX
    compact = _ratios(scale)
    if compact is None:
        return scale.astype(np.float32)
    base, ratio = compact
    return base * ratio.astype(np.float32)


def quantize(w: np.ndarray, mode: str | None = "int8", *, per_channel: bool = True,
             sparse: bool | None = None) -> QTensor:
    """Quantize a weight matrix ``(n_in, n_out)``; channels are the output columns.

    Parameters
    ----------
    w : ndarray of shape (n_in, n_out)
    mode : {"int8", "float16", "float32", None}
    per_channel : bool
        int8 only: one scale per output column (else one for the tensor).
    sparse : bool or None
        Store only the nonzeros plus a bit mask. ``None`` decides by size.

    Examples
    --------
    >>> import numpy as np
    >>> w = np.array([[0.5, -1.0], [0.0, 2.0]])
    >>> q = quantize(w, "int8")
    >>> q.values.dtype.name, q.values.tolist(), bool(np.abs(q.dequantize() - w).max() < 0.01)
    ('int8', [[127, -64], [0, 127]], True)
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
    scale = None
    if mode == "int8":
        amax = np.abs(w).max(axis=0) if per_channel else np.abs(w).max(keepdims=True).ravel()
        scale = _int8_scale(amax)
        q = np.clip(np.round(w / scale), -_QMAX, _QMAX).astype(np.int8)
    else:
        q = w.astype(np.float16 if mode == "float16" else np.float32)
    if not sparse:
        return QTensor(mode, w.shape, q, scale)
    return QTensor(mode, w.shape, q[nz], scale, None, np.packbits(nz.ravel()))


def quantize_bias(b: np.ndarray, mode: str | None = "int8") -> np.ndarray:
    """Biases as a file stores them: float32, rounded to float16 next to int8 / float16 weights.

    A half-precision bias adds an error of at most 2^-11 of its value, far below the int8
    weights' half step (1/254 of a channel's largest weight); biases beyond float16's range
    stay float32.

    Examples
    --------
    >>> import numpy as np
    >>> quantize_bias(np.array([0.1, -2.0]), "int8").tolist()
    [0.0999755859375, -2.0]
    >>> quantize_bias(np.array([0.1, 1e6]), "int8").tolist() == np.float32([0.1, 1e6]).tolist()
    True
    """
    b = np.atleast_1d(np.asarray(b, np.float32))
    if check_mode(mode) != "float32" and np.all(np.abs(b) <= np.finfo(np.float16).max):
        return b.astype(np.float16).astype(np.float32)
    return b


def _operand(qt: QTensor) -> np.ndarray:
    """The stored values as a dense float32 matrix (int8: the integers, zero point removed)."""
    q = qt.stored()
    op = (q.toarray() if sp.issparse(q) else q).astype(np.float32)
    if qt.zero_point is not None:
        op -= qt.zero_point.astype(np.float32)
        if qt.sparse:
            op[~qt.mask()] = 0.0
    return op


def prepare(qt: QTensor) -> np.ndarray:
    """The matmul operand of ``qt``, built once per process and kept between blocks.

    int8: the integers (exact, in [-127, 127]), zero where a weight was pruned; float16: the
    halves. Both are widened to float32 because NumPy has no int8 or float16 BLAS kernel, and
    BLAS on this dense operand beats a sparse kernel down to a few percent density. The scale
    is *not* folded in: it is applied once to the accumulated product (:func:`qmatmul`).
    Nothing float64 is kept, and the file keeps the int8 / sparse form.
    """
    return _operand(qt)


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


# -- the file form ---------------------------------------------------------------------------
_MODES = ("float32", "float16", "int8")
_DTYPES = {"float32": np.float32, "float16": np.float16, "int8": np.int8}
_FORMAT = 2
_NO_SCALE, _SCALE_F32, _SCALE_F16 = 0, 1, 2  # how a layer's scales are stored
_INDEX = 11  # int32 per layer: n_in, n_out, mode, scale form, n_scales, bias as float16, 5 section lengths


def _scale_bytes(scale: np.ndarray | None) -> tuple[int, np.ndarray]:
    """``(kind, bytes)``: float16 ratios of a float32 base when that is lossless, else float32."""
    if scale is None:
        return _NO_SCALE, np.zeros(0, np.uint8)
    scale = np.asarray(scale, np.float32)
    compact = _ratios(scale) if scale.size > 1 else None
    if compact is not None:
        base, ratio = compact
        if np.array_equal(base * ratio.astype(np.float32), scale):  # lossless: the form _int8_scale rounds to
            return _SCALE_F16, np.concatenate([np.atleast_1d(base).view(np.uint8), ratio.view(np.uint8)])
    return _SCALE_F32, scale.view(np.uint8)


def _scale_from(kind: int, raw: np.ndarray, n: int) -> np.ndarray | None:
    if kind == _NO_SCALE:
        return None
    if kind == _SCALE_F32:
        return raw.view(np.float32).copy()
    base = raw[:4].view(np.float32)[0]
    return base * raw[4:4 + 2 * n].view(np.float16).astype(np.float32)


def pack(layers: list[QTensor], biases: list[np.ndarray], scaler: np.ndarray | None = None) -> np.ndarray:
    """Every layer in one byte array, the form a model file stores.

    Layout: int32 ``[format, n_layers, n_scaler]``, an int32 index row per layer (shape, mode,
    scale form, bias precision and the byte length of each section), the input scaler
    (``scaler``: float32 ``[mean, scale]`` rows, ``n_scaler`` columns, or none), then per layer
    its values, bit mask, zero points (only tensors read from old affine files have them),
    scales and biases (float16 when that is lossless, see :func:`quantize_bias`, else float32).
    One array is one zip member: with three members, or one per layer, the fixed cost of each
    would be a visible share of a small model's file.
    """
    index, parts = [], []
    empty = np.zeros(0, np.uint8)
    for q, b in zip(layers, biases):
        kind, sbytes = _scale_bytes(q.scale)
        b = np.asarray(b, np.float32).ravel()
        half = bool(np.array_equal(b.astype(np.float16).astype(np.float32), b))  # lossless only
        sec = [np.ascontiguousarray(q.values).view(np.uint8).ravel(), empty if q.bitmask is None else q.bitmask,
               empty if q.zero_point is None else q.zero_point.view(np.uint8), sbytes,
               b.astype(np.float16 if half else np.float32).view(np.uint8)]
        n_scale = 0 if q.scale is None else q.scale.size
        index.append([*q.shape, _MODES.index(q.mode), kind, n_scale, int(half), *(s.size for s in sec)])
        parts += sec
    pre = np.zeros((2, 0), np.float32) if scaler is None else np.asarray(scaler, np.float32).reshape(2, -1)
    head = np.asarray([_FORMAT, len(layers), pre.shape[1]], np.int32)
    return np.concatenate([head.view(np.uint8), np.asarray(index, np.int32).reshape(-1).view(np.uint8),
                           np.ascontiguousarray(pre).reshape(-1).view(np.uint8), *parts])


def unpack(packed: np.ndarray | dict[str, np.ndarray]) -> tuple[list[QTensor], list[np.ndarray], np.ndarray | None]:
    """Inverse of :func:`pack`: ``(layers, biases, scaler)``; also reads the three-array form
    of older files (their scaler was folded into the first layer)."""
    if isinstance(packed, dict):
        return (*_unpack_v1(packed), None)
    raw = np.asarray(packed, np.uint8)
    fmt, n, n_pre = raw[:12].view(np.int32).tolist()
    if fmt != _FORMAT:
        raise ValueError(f"packed weights in format {fmt}; this daskscale reads format {_FORMAT}")
    at = 12 + 4 * _INDEX * n
    index = raw[12:at].view(np.int32).reshape(n, _INDEX).tolist()
    scaler = raw[at:at + 8 * n_pre].copy().view(np.float32).reshape(2, n_pre) if n_pre else None
    at += 8 * n_pre
    layers, biases = [], []
    for n_in, n_out, mode, kind, n_scale, half, *sizes in index:
        sec = []
        for size in sizes:
            sec.append(raw[at:at + size].copy())
            at += size
        mode = _MODES[mode]
        values = sec[0].view(_DTYPES[mode])
        mask = sec[1] if sizes[1] else None
        zp = sec[2].view(np.int8) if sizes[2] else None
        if mask is None:
            values = values.reshape(n_in, n_out)
        layers.append(QTensor(mode, (n_in, n_out), values, _scale_from(kind, sec[3], n_scale), zp, mask))
        biases.append(sec[4].view(np.float16).astype(np.float32) if half else sec[4].view(np.float32))
    return layers, biases, scaler


def _unpack_v1(packed: dict[str, np.ndarray]) -> tuple[list[QTensor], list[np.ndarray]]:
    """Files written before format 2: bytes (values, masks, int8 zero points), float32 (scales,
    biases) and an int64 index, affine int8."""
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
