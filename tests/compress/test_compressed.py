"""The compressed estimator: measured trade-offs, blockwise prediction, smaller files."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression, SGDClassifier
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from daskscale.compress import compress, file_size, magnitude_prune, prune_gradually, save_compressed
from daskscale.models import load_model


@pytest.fixture(scope="module")
def wide_pipeline(rng=np.random.default_rng(7)):
    """StandardScaler + MLP(256) on 50 features (the benchmark's synthetic model, smaller data)."""
    import warnings

    from sklearn.datasets import make_classification
    from sklearn.neural_network import MLPClassifier

    X, y = make_classification(6000, 50, n_informative=20, random_state=7)
    X = (X * rng.uniform(0.1, 100, size=50) + rng.normal(0, 50, size=50)).astype(np.float32)  # raw scales
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # max_iter is kept small on purpose
        m = make_pipeline(StandardScaler(), MLPClassifier((256,), max_iter=20, random_state=0)).fit(X[:4000], y[:4000])
    return m, X[4000:], y[4000:]


@pytest.mark.parametrize("model", ["digits", "wide"])
def test_int8_costs_under_half_a_point_and_is_3_5x_smaller_than_float32(model, digits_mlp, digits, wide_pipeline,
                                                                       tmp_path):
    if model == "digits":
        m, (_, Xte, _, yte) = digits_mlp, digits
    else:
        m, Xte, yte = wide_pipeline
    base = compress(m, quantize="float32")
    assert base.score(Xte, yte) == pytest.approx(m.score(Xte, yte), abs=1e-9)
    # the reference: the same model in the same format and zip compression, weights float32
    assert all(layer.values.dtype == np.float32 for layer in base.layers_)
    ref_bytes = file_size(base, tmp_path / "f32.skops")
    for per_channel in (True, False):
        q = compress(m, quantize="int8", per_channel=per_channel)
        assert all(layer.values.dtype == np.int8 for layer in q.layers_)
        assert q.score(Xte, yte) >= base.score(Xte, yte) - 0.005
        # the quantized weights really differ from the float ones (nothing silently kept)
        assert not np.array_equal(q.layers_[0].dequantize(), base.layers_[0].dequantize())
        # per tensor: >= 3.5x. Per channel spends more bits on precision: a channel of 50 inputs,
        # scaled to its own max, has ~7.7 bits of entropy a weight (per tensor ~6.9), so with the
        # file's fixed 2 KB (schema, classes, scaler, biases) a 13k-weight layer reaches ~3.35x
        least = 3.3 if (model, per_channel) == ("wide", True) else 3.5
        assert ref_bytes / file_size(q, tmp_path / f"q{per_channel}.skops") >= least
    assert compress(m, quantize="float16").nbytes_ < 0.55 * base.nbytes_


def test_int8_predictions_are_computed_from_the_stored_integers(rng):
    X = rng.normal(size=(300, 6)).astype(np.float32)
    y = (X[:, 0] - X[:, 2] > 0).astype(int)
    m = LogisticRegression().fit(X, y)
    c = compress(m, quantize="int8")
    q, b = c.layers_[0], c.intercepts_[0]
    by_hand = (X.astype(np.float64) @ q.values.astype(np.float64)) * q.scale + b
    np.testing.assert_allclose(c.decision_function(X), by_hand[:, 0], rtol=1e-5, atol=1e-5)
    # and not the float weights: int8 moves the scores by far more than float32 rounding would
    assert np.abs(c.decision_function(X) - m.decision_function(X)).max() > 1e-4


def test_90pct_pruning_after_fine_tune_costs_under_one_point(digits_mlp, digits, tmp_path):
    Xtr, Xte, ytr, yte = digits
    ref = digits_mlp.score(Xte, yte)
    one_shot, _ = magnitude_prune(digits_mlp, 0.9)
    assert one_shot.score(Xte, yte) < ref - 0.03  # pruning alone hurts: the fine-tuning is what recovers
    pruned, masks = prune_gradually(digits_mlp, 0.9, Xtr, ytr, epochs=100, batch_rows=200)
    after = compress(pruned, quantize="float32")
    assert after.sparsity_ == pytest.approx(0.9, abs=0.001)
    assert sum(int(mk.sum()) for mk in masks) == sum(int((w != 0).sum()) for w in pruned.coefs_)
    assert all(np.all(w[~mk] == 0) for w, mk in zip(pruned.coefs_, masks))  # zeros exactly where masked
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
    # the scaler runs in float32 before the first layer: same probabilities as the float pipeline
    c32 = compress(m, quantize="float32")
    np.testing.assert_allclose(c32.predict_proba(Xn[:500]), m.predict_proba(Xn[:500]), atol=1e-4)
    assert (c.predict(Xn) == m.predict(Xn)).mean() > 0.95  # int8 + 30% pruned: close, not equal


@pytest.mark.parametrize("kind", ["classifier", "regressor"])
def test_lazy_score_weighs_rows_as_the_numpy_score_does(kind, rng, client):
    import dask.array as da
    from sklearn.linear_model import LinearRegression

    X = rng.normal(size=(900, 5)).astype(np.float32)
    y = X @ np.arange(1.0, 6.0) + np.repeat([0.0, 3.0, -2.0], 300) + rng.normal(size=900)
    if kind == "classifier":
        y = (y > 0).astype(int)
    m = LogisticRegression().fit(X[:300], y[:300]) if kind == "classifier" else LinearRegression().fit(X[:300], y[:300])
    c = compress(m, quantize="int8")
    w = np.where(np.arange(900) < 300, 5.0, 0.5)  # the rows the model was fitted on count most
    Xd, yd = da.from_array(X, chunks=((300, 250, 350), 5)), da.from_array(y, chunks=((300, 250, 350),))
    lazy = c.score(Xd, yd, sample_weight=w)
    assert lazy == pytest.approx(c.score(X, y, sample_weight=w), rel=1e-6)
    assert abs(lazy - c.score(Xd, yd)) > 1e-3  # the weights changed the answer: they were not ignored


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
