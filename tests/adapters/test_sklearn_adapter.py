"""The scikit-learn internals daskscale relies on, checked on real fitted estimators.

Each test fails with a message naming the installed scikit-learn version and the internal
that changed: then ``daskscale/adapters/sklearn.py`` needs updating, not the callers.
"""

from __future__ import annotations

import numpy as np
import pytest
import sklearn
from sklearn.ensemble import RandomForestClassifier
from sklearn.linear_model import (LinearRegression, LogisticRegression, Perceptron, Ridge, SGDClassifier,
                                  SGDRegressor)
from sklearn.neighbors import KNeighborsClassifier
from sklearn.neural_network import MLPClassifier, MLPRegressor
from sklearn.svm import LinearSVC

from daskscale.adapters.sklearn import is_linear_model, is_mlp, reset_mlp_optimizer, sgd_iterate


def changed(what: str) -> str:
    return (f"scikit-learn {sklearn.__version__}: {what}; update daskscale/adapters/sklearn.py "
            "(pruning and fine-tuning rely on it)")


@pytest.fixture(scope="module")
def xy():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(300, 6))
    return X, (X[:, 0] + 0.5 * X[:, 1] > 0).astype(int)


def _call(fn, est, what):
    try:
        return fn(est)
    except (ImportError, AttributeError) as e:
        pytest.fail(changed(f"{what} is gone ({e!r})"))


def test_is_mlp_tells_multilayer_perceptrons_from_other_models(xy):
    X, y = xy

    class MyMLP(MLPClassifier):
        pass

    mlps = [MLPClassifier(hidden_layer_sizes=(5,), max_iter=20).fit(X, y),
            MLPRegressor(hidden_layer_sizes=(5,), max_iter=20).fit(X, y.astype(float)),
            MyMLP(hidden_layer_sizes=(5,), max_iter=20).fit(X, y)]
    others = [SGDClassifier().fit(X, y), LogisticRegression().fit(X, y), RandomForestClassifier(3).fit(X, y)]
    what = "BaseMultilayerPerceptron (sklearn.neural_network._multilayer_perceptron)"
    for est in mlps:
        assert _call(is_mlp, est, what), changed(f"{type(est).__name__} no longer derives from {what}")
    for est in others:
        assert not _call(is_mlp, est, what), changed(f"{type(est).__name__} now derives from {what}")


def test_is_linear_model_covers_every_model_with_coef(xy):
    X, y = xy
    linear = [SGDClassifier().fit(X, y), SGDRegressor().fit(X, y.astype(float)), Perceptron().fit(X, y),
              LogisticRegression().fit(X, y), Ridge().fit(X, y), LinearRegression().fit(X, y),
              LinearSVC().fit(X, y)]
    others = [MLPClassifier(hidden_layer_sizes=(5,), max_iter=20).fit(X, y), KNeighborsClassifier().fit(X, y),
              RandomForestClassifier(3).fit(X, y)]
    what = "LinearModel / LinearClassifierMixin (sklearn.linear_model._base) or BaseSGD (._stochastic_gradient)"
    for est in linear:
        assert hasattr(est, "coef_")
        assert _call(is_linear_model, est, what), changed(f"{type(est).__name__} no longer derives from {what}")
    for est in others:
        assert not _call(is_linear_model, est, what), changed(f"{type(est).__name__} now derives from {what}")


def test_reset_mlp_optimizer_lets_a_shrunk_mlp_train_again(xy):
    X, y = xy
    mlp = MLPClassifier(hidden_layer_sizes=(8,), max_iter=30, random_state=0).fit(X, y)
    assert hasattr(mlp, "_optimizer"), changed("a fitted MLP keeps no _optimizer between partial_fit calls")
    # drop half the hidden units, as structured pruning does: the optimizer's moments keep the old shapes
    shrink = [mlp.coefs_[0][:, :4].copy(), mlp.coefs_[1][:4].copy()]
    mlp.coefs_, mlp.intercepts_ = shrink, [mlp.intercepts_[0][:4].copy(), mlp.intercepts_[1]]
    mlp.hidden_layer_sizes = (4,)
    with pytest.raises(ValueError):  # the stale moments no longer fit the weights
        mlp.partial_fit(X, y)
    mlp.coefs_ = [w.copy() for w in shrink]
    reset_mlp_optimizer(mlp)
    for attr in ("_optimizer", "_best_coefs", "_best_intercepts"):
        assert not hasattr(mlp, attr), changed(f"reset_mlp_optimizer left {attr}")
    try:
        mlp.partial_fit(X, y)
    except ValueError as e:
        pytest.fail(changed(f"partial_fit after reset_mlp_optimizer failed ({e}): the MLP keeps other "
                            "weight-shaped state between calls"))
    assert [w.shape for w in mlp.coefs_] == [(6, 4), (4, 1)]
    assert not np.allclose(mlp.coefs_[0], shrink[0])  # it trained from the shrunk weights


@pytest.mark.parametrize("average", [True, False])
def test_sgd_iterate_is_what_the_solver_trains(xy, average):
    X, y = xy
    X = X.copy()
    X[:, 2] = 0.0  # weight 2 then gets no gradient: only the iterate can move it
    what = "the SGD iterate (_standard_coef / _average_coef of BaseSGD)"

    def tuned(hold_iterate: bool) -> float:
        est = SGDClassifier(average=average, random_state=0, alpha=1e-4).fit(X + np.eye(6)[2], y)
        assert est.coef_[0, 2] != 0
        iterate = _call(sgd_iterate, est, what)
        if average:
            assert iterate and all(a.size == est.coef_.size for a in iterate), changed(f"{what} is missing")
        est.coef_[0, 2] = 0.0
        if hold_iterate:
            for a in iterate:
                a.reshape(-1)[2] = 0.0
        est.partial_fit(X, y)
        return float(est.coef_[0, 2])

    assert tuned(hold_iterate=True) == 0.0, changed(f"zeroing coef_ and {what} no longer holds a weight at zero")
    if average:  # the average is coef_, the iterate is apart from it: zeroing coef_ alone is not enough
        assert tuned(hold_iterate=False) != 0.0, changed(f"{what} is no longer apart from coef_")
    else:  # without averaging coef_ is the iterate: sgd_iterate has nothing more to hold
        assert sgd_iterate(SGDClassifier(random_state=0).fit(X, y)) == [], changed("a plain SGD has an iterate")
    assert sgd_iterate(MLPClassifier(hidden_layer_sizes=(3,), max_iter=5).fit(X, y)) == []


def test_the_trusted_base_classes_of_model_files_exist_in_this_scikit_learn():
    """If scikit-learn moves its loss or optimiser bases, model files would silently stop loading
    fitted SGD/MLP models: the names must resolve to classes, and fitted models' objects derive from them."""
    import importlib

    import sklearn
    from sklearn.linear_model import SGDClassifier
    from sklearn.neural_network import MLPClassifier

    from daskscale.adapters.sklearn import TRUSTED_BASES

    bases = []
    for name in TRUSTED_BASES:
        module, _, cls = name.rpartition(".")
        try:
            bases.append(getattr(importlib.import_module(module), cls))
        except (ImportError, AttributeError) as e:
            raise AssertionError(f"scikit-learn {sklearn.__version__}: {name} is gone ({e}); "
                                 "update daskscale/adapters/sklearn.py") from e
    X, y = np.random.default_rng(0).normal(size=(40, 3)), np.arange(40) % 2
    sgd = SGDClassifier(random_state=0).fit(X, y)
    mlp = MLPClassifier(hidden_layer_sizes=(4,), max_iter=5, random_state=0).partial_fit(X, y, classes=[0, 1])
    assert isinstance(sgd._loss_function_, bases[1]), f"scikit-learn {sklearn.__version__}: SGD's loss moved"
    assert isinstance(mlp._optimizer, bases[2]), f"scikit-learn {sklearn.__version__}: MLP's optimiser moved"
