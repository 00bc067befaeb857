"""int8 / float16 quantization: error bounds, exact zeros, products from the stored integers."""

from __future__ import annotations

import numpy as np
import pytest

from daskscale.compress.quantize import pack, qmatmul, quantize, unpack
from daskscale.errors import InputTypeError


@pytest.mark.parametrize("per_channel", [True, False])
def test_int8_error_is_at_most_half_a_step(rng, per_channel):
    w = rng.normal(size=(40, 7)) * rng.uniform(0.1, 10, size=7)  # channels of very different ranges
    q = quantize(w, "int8", per_channel=per_channel)
    assert q.values.dtype == np.int8 and q.scale.shape == ((7,) if per_channel else (1,))
    err = np.abs(q.dequantize() - w)
    assert np.all(err <= q.scale / 2 + 1e-6)
    if per_channel:  # each channel gets its own, finer step
        assert np.abs(quantize(w, "int8", per_channel=False).dequantize() - w).mean() > err.mean()


def test_pruned_zeros_stay_exactly_zero_and_are_stored_sparse(rng):
    w = rng.normal(size=(64, 8))
    w[np.abs(w) < 1.2] = 0.0  # about 77% zeros
    q = quantize(w, "int8")
    assert q.sparse and q.values.size == np.count_nonzero(w)
    assert np.all(q.dequantize()[w == 0] == 0)
    assert q.nbytes < w.size / 2  # far below 1 byte per weight


@pytest.mark.parametrize("mode", ["int8", "float16", "float32"])
@pytest.mark.parametrize("sparse", [False, True])
def test_qmatmul_equals_product_with_dequantized_weights(rng, mode, sparse):
    w = rng.normal(size=(30, 5))
    if sparse:
        w[np.abs(w) < 1.0] = 0.0
    q = quantize(w, mode, sparse=sparse)
    X = rng.normal(size=(100, 30)).astype(np.float32)
    out = qmatmul(X, q)
    assert out.dtype == np.float32
    np.testing.assert_allclose(out, X @ q.dequantize(), rtol=1e-4, atol=1e-4)
    tol = {"int8": 0.1, "float16": 0.01, "float32": 1e-4}[mode]
    assert np.abs(out - X @ w).max() < tol * np.abs(X @ w).max()


def test_pack_roundtrip_keeps_every_layer(rng):
    ws = [rng.normal(size=(12, 6)), rng.normal(size=(6, 3))]
    ws[0][np.abs(ws[0]) < 1] = 0
    layers = [quantize(ws[0], "int8"), quantize(ws[1], "float16")]
    back, biases = unpack(pack(layers, [np.arange(6.0), np.arange(3.0)]))
    for a, b in zip(layers, back):
        np.testing.assert_array_equal(a.dequantize(), b.dequantize())
    np.testing.assert_array_equal(biases[1], [0, 1, 2])


def test_unknown_mode_lists_supported():
    with pytest.raises(InputTypeError, match="int8"):
        quantize(np.ones((2, 2)), "int4")
