"""Online preprocessing steps: streaming standard scaling and fixed-width one-hot."""

from __future__ import annotations

import json
import zlib

import numpy as np
import pytest
from sklearn.preprocessing import StandardScaler

from daskscale.errors import SchemaError
from daskscale.models import load_model, save_model
from daskscale.online.preprocess import OnlineOneHot, OnlineStandardScaler


def _data(n=400, seed=0):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(n, 4)) * [1, 50, 1e-3, 7] + [0, 1e6, -3, 12]


@pytest.mark.parametrize("sizes", [[1] * 20 + [380], [7, 93, 300], [400]])
def test_scaler_matches_scikit_learn_on_the_rows_so_far_whatever_the_batches(sizes):
    X = _data()
    s, start = OnlineStandardScaler(), 0
    for n in sizes:
        s.partial_fit(X[start:start + n])
        start += n
        ref = StandardScaler().fit(X[:start])
        np.testing.assert_allclose(s.mean_, ref.mean_, rtol=1e-12)
        np.testing.assert_allclose(s.scale_, ref.scale_, rtol=1e-9)
    np.testing.assert_allclose(s.transform(X[:5]), StandardScaler().fit(X).transform(X[:5]), rtol=1e-8, atol=1e-9)


def test_partial_fit_transform_uses_only_the_rows_before_the_batch():
    X = _data()
    s = OnlineStandardScaler().partial_fit(X[:100])
    out = s.partial_fit_transform(X[100:150])
    np.testing.assert_allclose(out, StandardScaler().fit(X[:100]).transform(X[100:150]), rtol=1e-8, atol=1e-9)
    assert s.n_samples_seen_ == 150


def test_a_column_without_spread_is_only_centred():
    X = np.c_[np.full(10, 3.0), np.arange(10.0)]
    s = OnlineStandardScaler().partial_fit(X[:1])
    out = s.transform(X)
    assert np.isfinite(out).all()
    np.testing.assert_array_equal(out[:, 0], 0.0)
    np.testing.assert_array_equal(out[:, 1], np.arange(10.0))  # one row: centred on 0, scale 1
    with pytest.raises(SchemaError, match="3 columns"):
        s.partial_fit(np.zeros((2, 3)))


def test_scaler_checkpoint_in_a_skops_archive_resumes_identically(tmp_path):
    X = _data()
    full = OnlineStandardScaler().partial_fit(X[:200]).partial_fit(X[200:])
    half = OnlineStandardScaler().partial_fit(X[:200])
    save_model({"scaler": half.get_state()}, tmp_path / "s.skops")
    back = OnlineStandardScaler().set_state(load_model(tmp_path / "s.skops")["scaler"]).partial_fit(X[200:])
    np.testing.assert_array_equal(back.transform(X), full.transform(X))
    assert back.n_samples_seen_ == 400


def test_one_hot_has_a_fixed_width_and_buckets_late_values():
    oh = OnlineOneHot(max_categories=2, n_buckets=4)
    oh.partial_fit(["a", "b", "c", "d"])
    assert oh.categories_ == ["a", "b"] and oh.n_columns == 6
    out = oh.transform(["a", "b", "c", "zz"])
    assert out.shape == (4, 6) and (out.sum(axis=1) == 1).all()
    assert out[0, 0] == 1 and out[1, 1] == 1
    # late values go to their CRC32 bucket: the same column in any process
    assert out[2, 2 + zlib.crc32(b"c") % 4] == 1 and out[3, 2 + zlib.crc32(b"zz") % 4] == 1


def test_one_hot_prequential_order_and_json_state():
    oh = OnlineOneHot(max_categories=3, n_buckets=0)
    first = oh.partial_fit_transform(np.array(["x", "y"], dtype=object))
    np.testing.assert_array_equal(first[:, 3], [1, 1])  # not learned yet: the "other" column
    oh.partial_fit(np.array([5, 5]))  # a NumPy integer is kept as a plain int
    state = json.loads(json.dumps(oh.get_state()))
    back = OnlineOneHot(max_categories=3, n_buckets=0).set_state(state)
    assert back.categories_ == ["x", "y", 5]
    np.testing.assert_array_equal(back.transform(["y", 5, "q"]), oh.transform(["y", 5, "q"]))
    np.testing.assert_array_equal(back.transform(["y", 5, "q"]).argmax(axis=1), [1, 2, 3])
    with pytest.raises(SchemaError, match="max_categories"):
        OnlineOneHot(max_categories=-1)


@pytest.mark.parametrize("params", [{}, {"with_std": False}, {"with_mean": False}])
def test_transform_learn_is_transform_then_partial_fit_then_transform_to_the_bit(params):
    X = np.c_[_data(), np.full(400, 2.5)]  # and a column without spread
    one, two = OnlineStandardScaler(**params), OnlineStandardScaler(**params)
    for a, b in [(0, 1), (1, 33), (33, 40), (40, 104), (104, 400)]:
        before, after = one.transform_learn(X[a:b])
        ref_before = two.transform(X[a:b])
        ref_after = two.partial_fit(X[a:b]).transform(X[a:b])
        assert before.tobytes() == ref_before.tobytes() and after.tobytes() == ref_after.tobytes()
    assert one.mean_.tobytes() == two.mean_.tobytes() and one.scale_.tobytes() == two.scale_.tobytes()
    np.testing.assert_array_equal(after[:, -1], 0.0 if params.get("with_mean", True) else 2.5)


def test_features_transform_learn_with_one_hot_steps_matches_the_separate_calls():
    from daskscale.online.evaluate import Features

    rng = np.random.default_rng(3)
    X, cats = _data(60), rng.choice(np.array(["a", "b", "c", "d"], dtype=object), size=(60, 1))
    one = Features(onehot=[OnlineOneHot(max_categories=2, n_buckets=1)])
    two = Features(onehot=[OnlineOneHot(max_categories=2, n_buckets=1)])
    for a in range(0, 60, 20):
        before, after = one.transform_learn(X[a:a + 20], cats[a:a + 20])
        ref_before = two.transform(X[a:a + 20], cats[a:a + 20])
        ref_after = two.partial_fit(X[a:a + 20], cats[a:a + 20]).transform(X[a:a + 20], cats[a:a + 20])
        assert before.tobytes() == ref_before.tobytes() and after.tobytes() == ref_after.tobytes()
    assert before.shape == (20, 4 + 3) and one.onehot[0].categories_ == two.onehot[0].categories_


def test_a_column_without_spread_after_many_batches_keeps_scale_one():
    X = np.c_[np.full(96, 1e6), np.arange(96.0)]
    s = OnlineStandardScaler()
    for a in range(0, 96, 32):
        s.partial_fit(X[a:a + 32])
    assert s.scale_.tolist()[0] == 1.0 and s.scale_[1] == pytest.approx(np.arange(96.0).std(), rel=1e-12)
    np.testing.assert_array_equal(s.transform(X[:3])[:, 0], 0.0)
