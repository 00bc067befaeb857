"""scikit-learn internals: the only module of daskscale that reaches them.

Pruning edits a fitted model's weights and keeps training it, so it must know more than the
public API tells: which estimators are linear or multilayer perceptrons (their base classes
live in private modules), which hidden arrays an SGD model trains (an averaged SGD reports
the average as ``coef_`` but learns in its iterate), and what an MLP keeps between
``partial_fit`` calls (its optimizer's moments, shaped like the old weights).

Each function names the internals it relies on; ``tests/adapters/test_sklearn_adapter.py``
runs each on real fitted estimators and fails naming the scikit-learn version when they change.
"""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["is_mlp", "is_linear_model", "reset_mlp_optimizer", "sgd_iterate", "TRUSTED_BASES"]

#: Base classes whose subclasses defined in ``sklearn`` / ``daskscale`` a model file may hold
#: (:mod:`daskscale.models`): estimators, and the loss and optimiser objects a fitted SGD or MLP
#: keeps, whose bases live in private modules.
TRUSTED_BASES = ("sklearn.base.BaseEstimator", "sklearn._loss._loss.CyLossFunction",
                 "sklearn.neural_network._stochastic_optimizers.BaseOptimizer")

#: what an MLP keeps between ``partial_fit`` calls, shaped like its weights
_MLP_TRAINING_STATE = ("_optimizer", "_best_coefs", "_best_intercepts")
#: the weight arrays an SGD model's solver reads and writes (besides ``coef_``)
_SGD_ITERATE = ("_standard_coef", "_average_coef")


def is_mlp(est: Any) -> bool:
    """Whether ``est`` is a scikit-learn multilayer perceptron (``MLPClassifier``, ``MLPRegressor``
    or a subclass of their base).

    Relies on ``sklearn.neural_network._multilayer_perceptron.BaseMultilayerPerceptron``.

    Examples
    --------
    >>> from sklearn.neural_network import MLPRegressor
    >>> from sklearn.linear_model import Ridge
    >>> is_mlp(MLPRegressor()), is_mlp(Ridge())
    (True, False)
    """
    from sklearn.neural_network._multilayer_perceptron import BaseMultilayerPerceptron

    return isinstance(est, BaseMultilayerPerceptron)


def is_linear_model(est: Any) -> bool:
    """Whether ``est`` is a scikit-learn linear model with ``coef_`` / ``intercept_``.

    Relies on ``sklearn.linear_model._base.LinearModel`` and ``LinearClassifierMixin`` and on
    ``sklearn.linear_model._stochastic_gradient.BaseSGD`` (``SGDRegressor`` derives from
    neither of the first two).

    Examples
    --------
    >>> from sklearn.linear_model import SGDRegressor
    >>> from sklearn.tree import DecisionTreeRegressor
    >>> is_linear_model(SGDRegressor()), is_linear_model(DecisionTreeRegressor())
    (True, False)
    """
    from sklearn.linear_model._base import LinearClassifierMixin, LinearModel
    from sklearn.linear_model._stochastic_gradient import BaseSGD
    from sklearn.svm import LinearSVC, LinearSVR

    return isinstance(est, (LinearModel, LinearClassifierMixin, BaseSGD, LinearSVC, LinearSVR))


def reset_mlp_optimizer(est: Any) -> None:
    """Forget what a fitted MLP keeps between ``partial_fit`` calls, in place.

    After its hidden layers change shape (structured pruning), the optimizer's moments and the
    best weights seen still have the old shapes; the next ``partial_fit`` then starts fresh ones.
    Relies on the attributes ``_optimizer``, ``_best_coefs`` and ``_best_intercepts`` of
    ``BaseMultilayerPerceptron`` (``partial_fit`` makes a new optimizer when ``_optimizer`` is
    missing).

    Examples
    --------
    >>> from sklearn.neural_network import MLPClassifier
    >>> import warnings
    >>> with warnings.catch_warnings():  # max_iter=5 does not converge
    ...     warnings.simplefilter("ignore")
    ...     m = MLPClassifier((4,), max_iter=5).fit([[0.0], [1.0]], [0, 1])
    >>> reset_mlp_optimizer(m)
    >>> hasattr(m, "_optimizer"), m.coefs_[0].shape
    (False, (1, 4))
    """
    for attr in _MLP_TRAINING_STATE:
        if hasattr(est, attr):
            delattr(est, attr)


def sgd_iterate(est: Any) -> list[np.ndarray]:
    """The weight arrays a fitted SGD model trains, besides ``coef_`` (each of ``coef_``'s size).

    An averaged SGD (``average=True``) learns in its iterate and reports the running average
    as ``coef_``: a weight held at zero must be zero in both, or it goes on learning in the
    iterate. Without averaging, ``coef_`` is the iterate and the list is empty, as for any
    model that is not an SGD one; only writeable arrays of ``coef_``'s size are returned. Relies on the
    attributes ``_standard_coef`` and ``_average_coef`` of
    ``sklearn.linear_model._stochastic_gradient.BaseSGD``.

    Examples
    --------
    >>> from sklearn.linear_model import SGDRegressor
    >>> m = SGDRegressor(average=True, max_iter=5, tol=None).fit([[0.0, 1.0], [1.0, 0.0]], [0.0, 1.0])
    >>> [a.shape for a in sgd_iterate(m)]
    [(2,), (2,)]
    """
    coef = getattr(est, "coef_", None)
    if coef is None or hasattr(est, "coefs_"):
        return []
    arrays = (getattr(est, name, None) for name in _SGD_ITERATE)
    return [a for a in arrays if isinstance(a, np.ndarray) and a.size == np.size(coef) and a.flags.writeable]
