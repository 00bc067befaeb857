"""Every CLI model name builds an estimator that Incremental can train."""

from __future__ import annotations

import numpy as np
import pytest

from daskscale.errors import InputTypeError
from daskscale.learn import Incremental, make_estimator
from daskscale.learn.estimators import ESTIMATORS


@pytest.mark.parametrize("name", sorted(ESTIMATORS))
def test_every_named_estimator_trains_incrementally(name):
    rng = np.random.default_rng(0)
    X = np.abs(rng.normal(size=(600, 12)))  # non-negative: the naive Bayes models need counts
    y = (X[:, 0] > X[:, 1]).astype(int) if "regressor" not in name else X[:, 0] * 2.0
    kw = {"incremental-pca": {"n_components": 3}, "minibatch-kmeans": {"n_clusters": 3},
          # 30 Adam steps at the default rate barely move an MLP; a larger rate shows it learns
          "mlp-classifier": {"learning_rate_init": 0.01}}.get(name, {})
    inc = Incremental(make_estimator(name, random_state=0, **kw), epochs=5, batch_size=100, random_state=0,
                      progress=False, validation_fraction=0)
    inc.fit(X, None if name in ("minibatch-kmeans", "incremental-pca") else y)
    assert len(inc.history_.epochs) == 5
    out = inc.transform(X) if name == "incremental-pca" else inc.predict(X)
    assert len(out) == 600
    if name in ("sgd-classifier", "mlp-classifier", "perceptron", "passive-aggressive"):
        assert inc.score(X, y) > 0.75


def test_unknown_model_name_lists_choices():
    with pytest.raises(InputTypeError, match="sgd-classifier"):
        make_estimator("random-forest")
