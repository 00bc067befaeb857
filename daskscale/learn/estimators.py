"""Named ``partial_fit`` estimators for the command line, with sensible defaults."""

from __future__ import annotations

import importlib
from typing import Any

from daskscale.errors import InputTypeError

__all__ = ["make_estimator", "ESTIMATORS"]

#: CLI name -> (class path, default parameters)
ESTIMATORS: dict[str, tuple[str, dict[str, Any]]] = {
    "sgd-classifier": ("sklearn.linear_model:SGDClassifier", {"loss": "log_loss", "alpha": 1e-4}),
    "sgd-regressor": ("sklearn.linear_model:SGDRegressor", {"alpha": 1e-4}),
    "mlp-classifier": ("sklearn.neural_network:MLPClassifier", {"hidden_layer_sizes": (64,), "learning_rate_init": 1e-3}),
    "mlp-regressor": ("sklearn.neural_network:MLPRegressor", {"hidden_layer_sizes": (64,), "learning_rate_init": 1e-3}),
    "multinomial-nb": ("sklearn.naive_bayes:MultinomialNB", {}),
    "bernoulli-nb": ("sklearn.naive_bayes:BernoulliNB", {}),
    "perceptron": ("sklearn.linear_model:Perceptron", {}),
    "passive-aggressive": ("sklearn.linear_model:SGDClassifier",
                           {"loss": "hinge", "penalty": None, "learning_rate": "pa1", "eta0": 1.0}),
    "minibatch-kmeans": ("sklearn.cluster:MiniBatchKMeans", {"n_clusters": 8, "n_init": 3}),
    "incremental-pca": ("sklearn.decomposition:IncrementalPCA", {"n_components": 10}),
}

#: estimators that draw random numbers take the fit's seed
_SEEDED = {"sgd-classifier", "sgd-regressor", "mlp-classifier", "mlp-regressor", "perceptron",
           "passive-aggressive", "minibatch-kmeans"}


def make_estimator(name: str, random_state: int | None = None, **params: Any) -> Any:
    """A new estimator by CLI name; ``params`` override the defaults.

    ``passive-aggressive`` is ``SGDClassifier(loss="hinge", learning_rate="pa1", penalty=None)``,
    scikit-learn's documented replacement for the deprecated ``PassiveAggressiveClassifier``.

    Examples
    --------
    >>> make_estimator("sgd-classifier", alpha=1e-3).get_params()["alpha"]
    0.001
    >>> type(make_estimator("incremental-pca", n_components=2)).__name__
    'IncrementalPCA'
    """
    if name not in ESTIMATORS:
        raise InputTypeError(f"unknown model {name!r}; choose one of {', '.join(ESTIMATORS)}")
    path, defaults = ESTIMATORS[name]
    module, _, cls = path.partition(":")
    kw = dict(defaults)
    if name in _SEEDED and random_state is not None:
        kw["random_state"] = random_state
    kw.update(params)
    return getattr(importlib.import_module(module), cls)(**kw)
