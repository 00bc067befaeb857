"""Frozen feature extractors: a pre-trained MLP's hidden layers, or a PCA, as a transformer.

:class:`FrozenFeatures` applies a fitted model's feature map and never changes it; on a dask
array it works block by block (``map_blocks``), so it scales like any other daskscale
transform. :func:`feature_pipeline` puts a new, small head on top in a scikit-learn
Pipeline; :func:`pca_features` fits a PCA with the one-pass covariance reducer of
:mod:`daskscale.reduce` (one read of the data, tree-merged on the cluster).
"""

from __future__ import annotations

from typing import Any

import dask.array as da
import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin, clone
from sklearn.decomposition import PCA as SkPCA
from sklearn.exceptions import NotFittedError as SkNotFittedError
from sklearn.linear_model import SGDClassifier
from sklearn.neural_network import MLPClassifier, MLPRegressor
from sklearn.pipeline import Pipeline
from sklearn.utils.validation import check_is_fitted, validate_data

from daskscale.errors import InputTypeError, SchemaError
from daskscale.transfer.zoo import resolve_pretrained

__all__ = ["FrozenFeatures", "feature_pipeline", "pca_features"]

_ACTIVATIONS = {
    "relu": lambda z: np.maximum(z, 0, out=z),
    "tanh": np.tanh,
    "logistic": lambda z: 1.0 / (1.0 + np.exp(-z)),
    "identity": lambda z: z,
}


def _hidden(mlp: Any, X: np.ndarray, n_layers: int) -> np.ndarray:
    act = _ACTIVATIONS[mlp.activation]
    h = np.asarray(X, dtype=mlp.coefs_[0].dtype)
    for W, b in zip(mlp.coefs_[:n_layers], mlp.intercepts_[:n_layers]):
        h = act(h @ W + b)
    return h


class FrozenFeatures(TransformerMixin, BaseEstimator):
    """The feature map of a pre-trained model, frozen: an MLP's hidden layers, or a transformer.

    Parameters
    ----------
    model : estimator, zoo name or model file
        A fitted MLP (or a Pipeline ending in one: its leading steps are applied first), or a
        fitted transformer such as a PCA. An unfitted transformer is fitted once on the data
        given to :meth:`fit` and then frozen.
    n_layers : int, optional
        How many hidden layers of an MLP to apply (default: all of them).

    Examples
    --------
    >>> from daskscale.transfer.tasks import digits_blur
    >>> t = digits_blur()
    >>> ff = FrozenFeatures("digits_mlp").fit(t.X_target)
    >>> ff.transform(t.X_target[:5]).shape
    (5, 64)
    """

    def __init__(self, model: Any = None, n_layers: int | None = None):
        self.model = model
        self.n_layers = n_layers

    def fit(self, X: Any, y: Any = None) -> "FrozenFeatures":
        if self.model is None:
            raise InputTypeError("FrozenFeatures needs a model: a fitted MLP, a zoo name or a transformer")
        if not isinstance(X, da.Array):
            X = validate_data(self, X, dtype=[np.float64, np.float32])
        model = resolve_pretrained(self.model).model if isinstance(self.model, str) else self.model
        steps, final = (model.steps[:-1], model.steps[-1][1]) if isinstance(model, Pipeline) else ([], model)
        if isinstance(final, (MLPClassifier, MLPRegressor)):
            check_is_fitted(final)
            n_hidden = len(final.coefs_) - 1
            n = n_hidden if self.n_layers is None else int(self.n_layers)
            if not 1 <= n <= n_hidden:
                raise SchemaError(f"n_layers={self.n_layers}: the MLP has {n_hidden} hidden layers")
            self.steps_, self.mlp_, self.depth_ = list(steps), final, n
            self.n_features_out_ = final.coefs_[n - 1].shape[1]
        elif hasattr(model, "transform"):
            try:
                check_is_fitted(model)
                self.transformer_ = model
            except SkNotFittedError:  # pre-train once, then frozen
                self.transformer_ = clone(model).fit(np.asarray(X))
            self.steps_, self.mlp_ = [], None
            probe = np.zeros((1, _n_in(self.transformer_)), dtype=np.float64)
            self.n_features_out_ = self.transformer_.transform(probe).shape[1]
        else:
            raise InputTypeError(f"FrozenFeatures cannot extract features from a {type(final).__name__}: "
                                 "use an MLPClassifier/MLPRegressor (or a Pipeline ending in one) or a transformer")
        n_model = _n_in(self.transformer_ if self.mlp_ is None else model)
        if X.shape[1] != n_model:
            raise SchemaError(f"the data has shape {X.shape} but the frozen model expects {n_model} features")
        self.n_features_in_ = n_model
        return self

    def _block(self, X: np.ndarray) -> np.ndarray:
        for _, step in self.steps_:
            X = step.transform(X)
        if self.mlp_ is not None:
            return _hidden(self.mlp_, X, self.depth_).astype(np.float32)
        return np.asarray(self.transformer_.transform(X), dtype=np.float32)

    def transform(self, X: Any) -> Any:
        """The frozen features; blockwise (lazy) for a dask array, eager for NumPy."""
        check_is_fitted(self, "n_features_out_")
        if isinstance(X, da.Array):
            if X.shape[1] != self.n_features_in_:
                raise SchemaError(f"X has shape {X.shape} but the frozen model expects {self.n_features_in_} features")
            X = X.rechunk({1: -1})
            return X.map_blocks(self._block, dtype=np.float32, chunks=(X.chunks[0], (self.n_features_out_,)))
        X = validate_data(self, X, reset=False, dtype=[np.float64, np.float32])
        return self._block(X)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.requires_fit = True
        tags.transformer_tags.preserves_dtype = ["float32"]  # features are float32, like daskscale stores
        return tags


def _n_in(model: Any) -> int:
    n = getattr(model, "n_features_in_", None)
    if n is None:
        raise InputTypeError(f"{type(model).__name__} does not record its number of input features")
    return int(n)


def feature_pipeline(pretrained: Any, head: Any = None, *, n_layers: int | None = None) -> Pipeline:
    """Frozen features of ``pretrained`` followed by a new ``head`` (default: logistic SGD).

    Examples
    --------
    >>> from daskscale.transfer.tasks import digits_new_classes
    >>> t = digits_new_classes()
    >>> pipe = feature_pipeline("digits_0_4_mlp").fit(t.X_target[:100], t.y_target[:100])
    >>> pipe.score(t.X_test, t.y_test) > 0.8
    True
    """
    model = resolve_pretrained(pretrained).model if isinstance(pretrained, str) else pretrained
    head = head if head is not None else SGDClassifier(loss="log_loss", alpha=1e-3, max_iter=200, random_state=0)
    return Pipeline([("features", FrozenFeatures(model, n_layers)), ("head", head)])


def pca_features(X: Any, n_components: int, *, y: Any = None) -> FrozenFeatures:
    """A PCA fitted in one pass by :class:`daskscale.reduce.covariance.PCA`, as frozen features.

    The result holds a plain :class:`sklearn.decomposition.PCA` (safe to save with
    :func:`daskscale.models.save_model`).

    Examples
    --------
    >>> import numpy as np
    >>> X = np.random.default_rng(0).normal(size=(400, 5)).astype("float32")
    >>> pca_features(X, 2).transform(X).shape
    (400, 2)
    """
    from daskscale.reduce import reduce
    from daskscale.reduce.covariance import PCA as PCAReducer
    from daskscale.storage.convert import as_data

    data = as_data(X, y)
    res = reduce(data, [PCAReducer(n_components)])["pca"]
    pca = SkPCA(n_components=n_components)
    # the attributes sklearn's PCA.transform reads, set from the reducer's one-pass result
    pca.components_ = res["components"]
    pca.mean_ = res["mean"]
    pca.explained_variance_ = res["explained_variance"]
    pca.explained_variance_ratio_ = res["explained_variance_ratio"]
    pca.singular_values_ = np.sqrt(np.maximum(res["explained_variance"], 0) * max(res["n"] - 1, 1))
    pca.n_components_ = len(res["components"])
    pca.n_features_in_ = data.n_features
    pca.n_samples_ = res["n"]
    pca.noise_variance_ = 0.0
    return FrozenFeatures(pca).fit(data.X[:1].compute())
