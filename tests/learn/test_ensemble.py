"""One-vs-rest and bagging: members fitted as tasks on workers, blockwise voting prediction."""

from __future__ import annotations

import dask.array as da
import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.multiclass import OneVsRestClassifier
from sklearn.tree import DecisionTreeClassifier, DecisionTreeRegressor

from daskscale.datasets import make_classification
from daskscale.errors import InputTypeError
from daskscale.learn.ensemble import DistributedBagging, DistributedOneVsRest
from daskscale.storage import load_xy


@pytest.fixture(scope="module")
def three_class(client, tmp_path_factory):
    return make_classification(6_000, 6, n_classes=3, chunk_rows=1_500, seed=4,
                               store=tmp_path_factory.mktemp("ens") / "c3.zarr")


def test_ovr_members_equal_sklearn_one_vs_rest(client, three_class):
    X, y = (a.compute() for a in load_xy(three_class))
    ours = DistributedOneVsRest(LogisticRegression(max_iter=1000)).fit(three_class)
    ref = OneVsRestClassifier(LogisticRegression(max_iter=1000)).fit(X, y)
    assert len(ours.estimators_) == 3
    for a, b in zip(ours.estimators_, ref.estimators_):  # same fit, to lbfgs' tolerance in float32
        np.testing.assert_allclose(a.coef_, b.coef_, atol=1e-3)
    lazy = ours.predict(three_class)
    assert isinstance(lazy, da.Array)
    np.testing.assert_array_equal(lazy.compute(), ours.predict(X))
    assert np.mean(ours.predict(X) == ref.predict(X)) > 0.995


def test_bagging_members_see_block_subsamples(client, three_class):
    X, y = (a.compute() for a in load_xy(three_class))
    bag = DistributedBagging(DecisionTreeClassifier(max_depth=6), n_estimators=4, max_blocks=0.5,
                             random_state=0).fit(three_class)
    assert len(bag.estimators_) == 4 and all(len(b) == 2 for b in bag.estimators_blocks_)
    assert len({tuple(b) for b in bag.estimators_blocks_}) > 1
    single = DecisionTreeClassifier(max_depth=6).fit(X[:3_000], y[:3_000])
    assert bag.score(X, y) >= single.score(X, y) - 0.02
    np.testing.assert_array_equal(bag.predict(three_class).compute(), bag.predict(X))
    hard = DistributedBagging(DecisionTreeClassifier(max_depth=6), n_estimators=3, voting="hard", random_state=0)
    assert hard.fit(three_class).score(X, y) > 0.6


def test_bagging_regressor_averages(client):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(2_000, 3))
    y = X[:, 0] * 3 + rng.normal(size=2_000) * 0.1
    bag = DistributedBagging(DecisionTreeRegressor(max_depth=5), n_estimators=3, random_state=0)
    bag.fit(da.from_array(X, chunks=(500, 3)), da.from_array(y, chunks=500))
    np.testing.assert_allclose(bag.predict(X), np.mean([e.predict(X) for e in bag.estimators_], axis=0))
    assert bag.score(X, y) > 0.9


def test_missing_estimator_is_refused(client, three_class):
    with pytest.raises(InputTypeError):
        DistributedOneVsRest().fit(three_class)
    with pytest.raises(InputTypeError):
        DistributedBagging().fit(three_class)
