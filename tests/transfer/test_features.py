"""Frozen feature extractors: blockwise on dask, a new head in a Pipeline, PCA from the reducers."""

from __future__ import annotations

import dask.array as da
import numpy as np
import pytest
from sklearn.decomposition import PCA
from sklearn.linear_model import SGDClassifier
from sklearn.pipeline import Pipeline
from sklearn.utils.estimator_checks import parametrize_with_checks

from daskscale.errors import InputTypeError, SchemaError
from daskscale.transfer import FrozenFeatures, feature_pipeline, load_pretrained, pca_features


def test_frozen_mlp_features_blockwise_equal_eager_and_stay_lazy(blur_task):
    ff = FrozenFeatures("digits_mlp").fit(blur_task.X_target)
    X = da.from_array(blur_task.X_target, chunks=(150, -1))
    lazy = ff.transform(X)
    assert isinstance(lazy, da.Array) and lazy.numblocks == (4, 1) and lazy.shape == (600, 64)
    np.testing.assert_allclose(lazy.compute(), ff.transform(blur_task.X_target), rtol=1e-5)
    # the hidden layer really is the MLP's: relu(scale(X) @ W0 + b0)
    pre = load_pretrained("digits_mlp").model
    h = np.maximum(pre[0].transform(blur_task.X_target[:3]) @ pre[-1].coefs_[0] + pre[-1].intercepts_[0], 0)
    np.testing.assert_allclose(ff.transform(blur_task.X_target[:3]), h, rtol=1e-4, atol=1e-5)


def test_new_head_on_frozen_features_beats_a_head_on_random_features(blur_task):
    t = blur_task
    pipe = feature_pipeline("digits_mlp").fit(t.X_target[:100], t.y_target[:100])
    assert isinstance(pipe, Pipeline) and isinstance(pipe[-1], SGDClassifier)
    ours = pipe.score(t.X_test, t.y_test)
    # the same head on random hidden units of the same shape: the pre-trained features carry knowledge
    rnd = load_pretrained("digits_mlp").model
    rnd[-1].coefs_[0] = np.random.default_rng(0).normal(0, 0.2, rnd[-1].coefs_[0].shape)
    base = feature_pipeline(rnd).fit(t.X_target[:100], t.y_target[:100]).score(t.X_test, t.y_test)
    assert ours > 0.88 and ours > base + 0.04


def test_new_head_on_frozen_features_learns_new_classes():
    from daskscale.transfer.tasks import digits_new_classes

    t = digits_new_classes()
    pipe = feature_pipeline("digits_0_4_mlp").fit(t.X_target[:100], t.y_target[:100])
    assert list(pipe.classes_) == [5, 6, 7, 8, 9]
    assert pipe.score(t.X_test, t.y_test) > 0.85


def test_pca_features_from_the_covariance_reducer_match_sklearn(client, rng):
    X = (rng.normal(size=(2000, 6)) * [5, 3, 1, 0.5, 0.2, 0.1]).astype("float32")
    ff = pca_features(da.from_array(X, chunks=(500, -1)), 3)
    ours = ff.transform(X)
    ref = PCA(3).fit(X).transform(X)
    np.testing.assert_allclose(np.abs(ours), np.abs(ref), rtol=1e-3, atol=1e-3)


def test_frozen_features_reject_wrong_width_and_unsupported_models(blur_task):
    ff = FrozenFeatures("digits_mlp").fit(blur_task.X_target)
    with pytest.raises(SchemaError, match="64"):
        ff.transform(da.zeros((10, 13), chunks=(5, 13)))
    with pytest.raises(InputTypeError, match="MLPClassifier"):
        FrozenFeatures(SGDClassifier().fit(np.eye(3), [0, 1, 0])).fit(np.eye(3))


@parametrize_with_checks([FrozenFeatures(PCA(n_components=1))])
def test_sklearn_estimator_checks(estimator, check):
    check(estimator)
