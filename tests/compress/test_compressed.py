"""The compressed estimator: measured trade-offs, blockwise prediction, smaller files."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression, SGDClassifier
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from daskscale.compress import compress, file_size, fine_tune, magnitude_prune, save_compressed
from daskscale.models import load_model


def test_int8_on_digits_mlp_costs_under_half_a_point_and_is_3_5x_smaller(digits_mlp, digits, tmp_path):
    _, Xte, _, yte = digits
    base = compress(digits_mlp, quantize="float32")
    assert base.score(Xte, yte) == pytest.approx(digits_mlp.score(Xte, yte), abs=1e-9)
    ref_bytes = file_size(base, tmp_path / "f32.skops")
    for per_channel in (True, False):
        q = compress(digits_mlp, quantize="int8", per_channel=per_channel)
        assert all(layer.values.dtype == np.int8 for layer in q.layers_)
        assert q.score(Xte, yte) >= base.score(Xte, yte) - 0.005
        # the quantized weights really differ from the float ones (nothing silently kept)
        assert not np.array_equal(q.layers_[0].dequantize(), base.layers_[0].dequantize())
    ratio_tensor = ref_bytes / file_size(compress(digits_mlp, quantize="int8", per_channel=False), tmp_path / "t")
    ratio_channel = ref_bytes / file_size(compress(digits_mlp, quantize="int8"), tmp_path / "c")
    assert ratio_tensor >= 3.5
    assert ratio_channel >= 3.0  # per-channel scales and less regular bytes cost ~10% (see report)
    assert compress(digits_mlp, quantize="float16").nbytes_ < 0.55 * base.nbytes_


def test_90pct_pruning_after_fine_tune_costs_under_one_point(digits_mlp, digits, tmp_path):
    Xtr, Xte, ytr, yte = digits
    ref = digits_mlp.score(Xte, yte)
    pruned, masks = magnitude_prune(digits_mlp, 0.9)
    before = pruned.score(Xte, yte)
    fine_tune(pruned, masks, Xtr, ytr, epochs=10, batch_rows=200)
    after = compress(pruned, quantize="float32")
    assert after.sparsity_ == pytest.approx(0.9, abs=0.01)
    assert before < ref - 0.03  # pruning alone hurts: the fine-tuning is what recovers
    assert after.score(Xte, yte) >= ref - 0.01
    both = compress(pruned, quantize="int8")
    assert both.score(Xte, yte) >= ref - 0.015
    assert file_size(both, tmp_path / "b") * 8 < file_size(compress(digits_mlp, quantize="float32"), tmp_path / "a")


def test_predicts_the_same_on_numpy_dask_and_store(small_store, client):
    from daskscale.storage import load_xy

    X, y = load_xy(small_store)
    Xn, yn = X.compute(), y.compute()
    m = make_pipeline(StandardScaler(), LogisticRegression()).fit(Xn[:5000], yn[:5000])
    c = compress(m, quantize="int8", sparsity=0.3)
    p_np = c.predict(Xn)
    p_da = c.predict(X)
    assert hasattr(p_da, "dask") and p_da.numblocks == X.numblocks[:1]  # lazy, one task per block
    np.testing.assert_array_equal(p_da.compute(), p_np)
    np.testing.assert_array_equal(c.predict(small_store).compute(), p_np)
    np.testing.assert_allclose(c.predict_proba(X).compute(), c.predict_proba(Xn), rtol=1e-6)
    assert c.score(small_store, None) == pytest.approx(c.score(Xn, yn))
    # the scaler is folded into the first layer: same probabilities as the float pipeline
    c32 = compress(m, quantize="float32")
    np.testing.assert_allclose(c32.predict_proba(Xn[:500]), m.predict_proba(Xn[:500]), atol=1e-4)
    assert (c.predict(Xn) == m.predict(Xn)).mean() > 0.95  # int8 + 30% pruned: close, not equal


def test_saved_file_loads_safely_and_predicts(digits_mlp, digits, tmp_path):
    _, Xte, _, yte = digits
    c = compress(digits_mlp, quantize="int8", sparsity=0.5)
    path = save_compressed(c, tmp_path / "m.skops", metadata={"setting": "int8"})
    back = load_model(path)
    np.testing.assert_array_equal(back.predict(Xte), c.predict(Xte))
    assert back.layers_[0].values.dtype == np.int8 and back.layers_[0].sparse
    assert path.stat().st_size < 0.25 * file_size(compress(digits_mlp, quantize="float32"), tmp_path / "f")


def test_binary_linear_decision_function_matches_sklearn(rng):
    X = rng.normal(size=(300, 6)).astype(np.float32)
    y = np.where(X[:, 0] + X[:, 1] > 0, "yes", "no")
    m = SGDClassifier(random_state=0).fit(X, y)
    c = compress(m, quantize="float32")
    np.testing.assert_allclose(c.decision_function(X), m.decision_function(X), rtol=1e-4, atol=1e-4)
    assert list(np.unique(c.predict(X))) == ["no", "yes"]
    assert not hasattr(c, "predict_proba")  # hinge loss: no probabilities, as in sklearn
