"""int8 / float16 quantization: error bounds, exact zeros, products from the stored integers."""

from __future__ import annotations

import numpy as np
import pytest

from daskscale.compress.quantize import pack, qmatmul, quantize, quantize_bias, unpack
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
    scaler = np.vstack([rng.normal(size=12), rng.uniform(0.1, 10, size=12)]).astype(np.float32)
    packed = pack(layers, [np.arange(6.0) + 0.1, np.arange(3.0)], scaler)
    assert packed.dtype == np.uint8 and packed.ndim == 1  # one array: one zip member in a file
    back, biases, scaler_back = unpack(packed)
    for a, b in zip(layers, back):
        np.testing.assert_array_equal(a.dequantize(), b.dequantize())
        assert b.mode == a.mode and b.sparse == a.sparse
    np.testing.assert_array_equal(back[0].scale, layers[0].scale)  # float16 ratios of a base: lossless
    np.testing.assert_array_equal(biases[0], np.float32(np.arange(6.0) + 0.1))  # not float16: kept float32
    np.testing.assert_array_equal(biases[1], [0, 1, 2])
    np.testing.assert_array_equal(scaler_back, scaler)
    assert unpack(pack(layers, [np.zeros(6), np.zeros(3)]))[2] is None


def test_int8_is_symmetric_without_zero_points(rng):
    w = rng.normal(size=(20, 4)) + 0.7  # skewed: an affine scheme would need a zero point
    q = quantize(w, "int8")
    assert q.zero_point is None and np.abs(q.values).max() == 127
    np.testing.assert_array_equal(quantize(-w, "int8").values, -q.values)
    assert np.all(q.dequantize()[np.round(w / q.scale) == 0] == 0)


def test_per_channel_scales_are_half_precision_ratios_or_float32_when_too_small(rng):
    w = rng.normal(size=(30, 5))
    q = quantize(w, "int8")
    ratios = q.scale / q.scale.max()
    np.testing.assert_array_equal(ratios.astype(np.float16).astype(np.float32) * q.scale.max(), q.scale)
    # one channel 10^6 times smaller than the others: float16 ratios would underflow
    w[:, 2] *= 1e-6
    tiny = quantize(w, "int8")
    assert np.all(np.abs(tiny.dequantize() - w) <= tiny.scale / 2 + 1e-12)
    assert np.abs(tiny.values[:, 2]).max() == 127  # the tiny channel still uses its full range
    back = unpack(pack([tiny], [np.zeros(5)]))[0][0]
    np.testing.assert_array_equal(back.scale, tiny.scale)


def test_biases_round_to_half_precision_only_next_to_quantized_weights():
    b = np.array([0.1, -3.3, 7e4])
    assert quantize_bias(b, "float32").tolist() == np.float32(b).tolist()
    assert quantize_bias(b, "int8").tolist() == np.float32(b).tolist()  # 7e4 is beyond float16: all kept
    np.testing.assert_array_equal(quantize_bias(b[:2], "int8"), np.float16(b[:2]).astype(np.float32))


def test_unknown_mode_lists_supported():
    with pytest.raises(InputTypeError, match="int8"):
        quantize(np.ones((2, 2)), "int4")
