"""Feature-sharded linear models (ADMM sharing) against the unsplit in-memory solution."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression, Ridge

from daskscale.errors import InputTypeError, SchemaError
from daskscale.learn.model_parallel import FeatureShardedLinear


@pytest.fixture(scope="module")
def wide():
    # 400 features for 2,000 rows: wide enough that each worker holding half the columns matters
    rng = np.random.default_rng(0)
    X = (rng.normal(size=(2_000, 400)) + rng.normal(size=400)).astype("float32")
    w = rng.normal(size=400) * (rng.random(400) < 0.2)
    return X, X @ w + rng.normal(size=2_000), w


def test_ridge_sharded_matches_unsplit(client, wide):
    X, y, _ = wide
    ours = FeatureShardedLinear("squared", alpha=5.0, n_shards=2).fit(X, y)
    ref = Ridge(alpha=5.0).fit(X, y)
    assert ours.converged_ and len(ours.shard_bounds_) == 3
    np.testing.assert_allclose(ours.coef_, ref.coef_, rtol=1e-3, atol=1e-4 * np.abs(ref.coef_).max())
    assert ours.intercept_ == pytest.approx(ref.intercept_, abs=1e-3)


def test_logistic_sharded_close_to_unsplit(client, wide):
    X, _, w = wide
    t = X @ w
    y = (t + np.random.default_rng(1).logistic(size=len(t)) > np.median(t)).astype(int)
    ours = FeatureShardedLinear("logistic", alpha=1.0, n_shards=2, max_iter=150).fit(X, y)
    ref = LogisticRegression(C=1.0, max_iter=5000).fit(X, y)
    assert ours.coef_.shape == (1, 400)
    assert abs(ours.score(X, y) - ref.score(X, y)) <= 0.01
    assert np.corrcoef(ours.coef_.ravel(), ref.coef_.ravel())[0, 1] > 0.99


def test_bad_loss_and_multiclass_are_refused(client):
    X = np.random.default_rng(0).normal(size=(30, 4))
    with pytest.raises(InputTypeError, match="loss"):
        FeatureShardedLinear("hinge").fit(X, X[:, 0])
    with pytest.raises(SchemaError, match="binary"):
        FeatureShardedLinear("logistic").fit(X, np.arange(30) % 3)
