"""The prequential loop on micro-batches with online preprocessing, and its metrics."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.linear_model import SGDClassifier
from sklearn.preprocessing import StandardScaler

from daskscale.online.evaluate import Features, prequential
from daskscale.online.events import EventBatcher
from daskscale.online.metrics import PrequentialMetrics
from daskscale.online.preprocess import OnlineOneHot


def _sgd():
    return SGDClassifier(loss="log_loss", learning_rate="constant", eta0=0.01, alpha=0.0, shuffle=False)


def _events(n=2000, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 3)) * [1, 1000, 0.01] + [0, 5e4, 1]
    y = ((X[:, 0] + (X[:, 1] - 5e4) / 1000) > 0).astype(int)
    return X, y, [{"a": a, "b": b, "c": c, "y": int(t)} for (a, b, c), t in zip(X.tolist(), y.tolist())]


def test_every_row_is_predicted_with_scaler_and_model_from_before_its_batch():
    X, y, events = _events()
    res = prequential(EventBatcher(max_batch=100).batches(events), _sgd(), classes=[0, 1])
    # the same loop by hand: scikit-learn's scaler refitted on the rows before each batch
    model, preds = _sgd(), []
    for a in range(0, len(X), 100):
        Xb, yb = X[a:a + 100], y[a:a + 100]
        if a:
            preds.append(model.predict(StandardScaler().fit(X[:a]).transform(Xb)))
        Xt = StandardScaler().fit(X[:a + 100]).transform(Xb)
        model.partial_fit(Xt, yb, classes=[0, 1])
    expected = np.mean(np.concatenate(preds) == y[100:])
    assert res.metrics.n_scored == 1900 and res.metrics.accuracy == pytest.approx(expected, abs=2e-3)
    np.testing.assert_allclose(res.model.coef_, model.coef_, rtol=1e-6)
    assert res.metrics.accuracy > 0.9


def test_scaling_is_what_makes_badly_scaled_streams_learnable():
    _, _, events = _events(seed=1)
    scaled = prequential(EventBatcher(max_batch=50).batches(events), _sgd(), classes=[0, 1])
    raw = prequential(EventBatcher(max_batch=50).batches(events), _sgd(), features=Features(scaler=None),
                      classes=[0, 1])
    assert scaled.metrics.accuracy > raw.metrics.accuracy + 0.05


def test_categorical_fields_are_one_hot_encoded_into_a_fixed_width():
    rng = np.random.default_rng(2)
    cities = np.array(["oslo", "lima", "pune", "kyiv"])
    c = rng.integers(0, 4, 3000)
    events = [{"x": float(v), "city": cities[k], "y": int(k >= 2)} for v, k in zip(rng.normal(size=3000), c)]
    feats = Features(onehot=[OnlineOneHot(max_categories=2, n_buckets=4)])
    res = prequential(EventBatcher(categorical=["city"], max_batch=64).batches(events), _sgd(), features=feats,
                      classes=[0, 1])
    assert res.model.coef_.shape == (1, 1 + 2 + 4)
    assert res.features.onehot[0].categories_ == [cities[c[0]], next(cities[k] for k in c if k != c[0])]
    assert res.metrics.accuracy > 0.9  # the label is the city: learnable only through the encoding


def test_metrics_weight_latency_by_rows_and_keep_the_worst_lag():
    m = PrequentialMetrics()
    m.update(np.zeros(1), np.zeros(1), arrived=0.0, learned=10.0)
    m.update(np.zeros(99), np.ones(99), arrived=10.0, learned=10.5, lag_rows=150)
    r = m.report()
    assert r["latency_p95_s"] == 0.5 and r["latency_p50_s"] == 0.5
    assert r["accuracy"] == pytest.approx(1 / 100) and r["max_lag_rows"] == 150 and r["rows_per_s"] == 100 / 10.5
    assert np.isnan(PrequentialMetrics().report()["accuracy"])
