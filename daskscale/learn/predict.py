"""Blockwise prediction and scoring of any fitted model on dask collections (no gather of X).

``predict_blockwise`` maps the model over the row blocks of ``X`` (``map_blocks``), so each
worker predicts the blocks it holds; ``score_blockwise`` folds per-block sums (correct count,
or residual and total sums of squares) through :mod:`daskscale.reduce`, so only a few numbers
reach the client.

:func:`apply_method` and :func:`score_method` are the public boundary of every trainer's
``predict``/``score``: NumPy or pandas in, NumPy out (validated as at fit: feature count and
names); a dask array, xarray object or store path in, a lazy dask array out (blockwise).
"""

from __future__ import annotations

from typing import Any

import dask.array as da
import numpy as np
from sklearn.base import is_classifier
from sklearn.utils.metaestimators import available_if

from daskscale.errors import NotFittedError, SchemaError
from daskscale.reduce import Reducer, reduce
from daskscale.storage.convert import Data, as_data

__all__ = ["predict_blockwise", "score_blockwise", "ScoreReducer", "classes_of", "apply_method", "score_method"]


def classes_of(data: Data) -> np.ndarray:
    """Class labels: from the store's attributes, else the union of each block's labels."""
    if data.classes is not None:
        return np.asarray(data.classes)
    return np.unique(data.y.map_blocks(np.unique, dtype=data.y.dtype).compute())


def _apply(block: np.ndarray, model: Any, method: str) -> np.ndarray:
    if len(block) == 0:
        return np.empty((0,) if method == "predict" else (0, len(getattr(model, "classes_", [0, 1]))))
    return np.asarray(getattr(model, method)(block))


def predict_blockwise(model: Any, X: Any, *, method: str = "predict") -> da.Array:
    """``model.<method>`` over the row blocks of ``X``, lazily: a dask array, nothing gathered.

    Parameters
    ----------
    model : fitted estimator
    X : anything :func:`daskscale.storage.convert.as_data` accepts
    method : "predict", "predict_proba", "decision_function" or "transform"

    Returns
    -------
    dask.array.Array
        1-D for ``predict``, 2-D (rows, outputs) otherwise.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn.linear_model import LogisticRegression
    >>> X = np.arange(8.0).reshape(4, 2); y = [0, 0, 1, 1]
    >>> m = LogisticRegression().fit(X, y)
    >>> predict_blockwise(m, X).compute().tolist()
    [0, 0, 1, 1]
    """
    if not hasattr(model, method):
        raise NotFittedError(f"{type(model).__name__} has no {method}()")
    Xd = (X if isinstance(X, Data) else as_data(X)).X
    probe = _apply(np.zeros((1, Xd.shape[1]), dtype=Xd.dtype), model, method)
    if probe.ndim == 1:
        return Xd.map_blocks(_apply, model, method, drop_axis=1, dtype=probe.dtype, meta=np.empty((0,), probe.dtype))
    return Xd.map_blocks(_apply, model, method, chunks=(Xd.chunks[0], (probe.shape[1],)), dtype=probe.dtype,
                         meta=np.empty((0, 0), probe.dtype))


class ScoreReducer(Reducer):
    """Per-block sums for accuracy (classifiers) or R^2 (regressors) of a fitted model."""

    name = "score"
    needs_y = True

    def __init__(self, model: Any):
        self.model = model

    def map(self, X: np.ndarray, y: np.ndarray | None = None) -> np.ndarray:
        y = np.asarray(y).ravel()
        if len(X) == 0:
            return np.zeros(4)
        p = self.model.predict(X)
        if is_classifier(self.model):
            return np.array([len(y), float(np.sum(p == y)), 0.0, 0.0])
        y = y.astype(float)
        return np.array([len(y), float(np.sum((y - p) ** 2)), float(y.sum()), float((y * y).sum())])

    def merge(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        return a + b

    def finalize(self, s: np.ndarray) -> float:
        n = max(s[0], 1.0)
        if is_classifier(self.model):
            return float(s[1] / n)
        tss = s[3] - s[2] ** 2 / n
        return float(1.0 - s[1] / tss) if tss > 0 else 0.0


def score_blockwise(model: Any, X: Any, y: Any = None) -> float:
    """Accuracy (classifier) or R^2 (regressor) of ``model`` on ``X``/``y``, in one blockwise pass.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn.linear_model import LinearRegression
    >>> X = np.arange(10.0).reshape(5, 2); y = X[:, 0] * 2.0
    >>> round(score_blockwise(LinearRegression().fit(X, y), X, y), 6)
    1.0
    """
    d = X if isinstance(X, Data) and y is None else as_data(X, y)
    if d.y is None:
        raise SchemaError("score needs a target: pass y= or a store with a target")
    return reduce(d, [ScoreReducer(model)])["score"]


def apply_method(est: Any, X: Any, method: str, fn: Any, *, fitted: str) -> Any:
    """``est.<method>(X)`` at the public boundary.

    ``fn(X_numpy)`` computes the answer on validated in-memory rows; ``fitted`` names the
    attribute that exists once ``est`` is fitted. In-memory ``X``: ``fn`` of the validated
    array (NumPy out). Any other input: ``est.<method>`` mapped over its row blocks (lazy).
    """
    from sklearn.utils.validation import validate_data

    from daskscale.learn.prep import NotFitted, in_memory

    if not hasattr(est, fitted):
        raise NotFitted(f"this {type(est).__name__} is not fitted yet: call fit(X, y) first")
    if in_memory(X):
        return fn(validate_data(est, X, reset=False, accept_sparse=False, dtype=("float64", "float32")))
    data = X if isinstance(X, Data) else as_data(X)
    require_n_features(est, data)
    return predict_blockwise(est, data, method=method)


def require_n_features(model: Any, data: Data) -> None:
    """Raise a :class:`SchemaError` naming the data when its width is not the model's."""
    expected = getattr(model, "n_features_in_", None)
    if expected is not None and data.n_features != expected:
        raise SchemaError(f"{data.source or 'X'} has {data.n_features} features, but {type(model).__name__} "
                          f"was fitted with {expected}: give data with the same features")


def score_method(est: Any, X: Any, y: Any = None, *, fitted: str) -> float:
    """Accuracy (classifiers) or R^2 (regressors) of ``est`` on any accepted input.

    In-memory input: scikit-learn's ``score`` on the NumPy predictions; any other input: one
    blockwise pass (:func:`score_blockwise`), nothing gathered but a few sums.
    """
    from sklearn.base import ClassifierMixin, RegressorMixin

    from daskscale.learn.prep import NotFitted, in_memory

    if not hasattr(est, fitted):
        raise NotFitted(f"this {type(est).__name__} is not fitted yet: call fit(X, y) first")
    if in_memory(X):
        mixin = ClassifierMixin if is_classifier(est) else RegressorMixin
        return float(mixin.score(est, X, y))
    return float(score_blockwise(est, X, y))


def _inner_has(name: str) -> Any:
    """``available_if`` check: the fitted inner model (or, before fit, ``estimator``) has ``name``."""
    return lambda self: hasattr(getattr(self, self._fitted_model, None) or self.estimator, name)


class DelegatingPredictor:
    """``predict``/``predict_proba``/``decision_function``/``score`` of a fitted inner model.

    A meta-estimator sets ``_fitted_model`` to the attribute holding that model once fitted
    (``"estimator_"``, ``"best_estimator_"``); each method goes through :func:`apply_method`
    (NumPy in, NumPy out; blockwise otherwise), and the optional ones exist only when the inner
    model (or, before fit, ``estimator``) has them. Tags follow ``estimator``.
    """

    _fitted_model = "estimator_"

    def _inner(self) -> Any:
        return getattr(self, self._fitted_model)

    def predict(self, X: Any) -> Any:
        """Predictions of the fitted model (NumPy in, NumPy out; else lazy and blockwise)."""
        return apply_method(self, X, "predict", lambda A: self._inner().predict(A), fitted=self._fitted_model)

    @available_if(_inner_has("predict_proba"))
    def predict_proba(self, X: Any) -> Any:
        """Class probabilities of the fitted model (when it has them)."""
        return apply_method(self, X, "predict_proba", lambda A: self._inner().predict_proba(A),
                            fitted=self._fitted_model)

    @available_if(_inner_has("decision_function"))
    def decision_function(self, X: Any) -> Any:
        """Decision function of the fitted model (when it has one)."""
        return apply_method(self, X, "decision_function", lambda A: self._inner().decision_function(A),
                            fitted=self._fitted_model)

    def score(self, X: Any, y: Any = None) -> float:
        """Accuracy (classifiers) or R^2 (regressors); blockwise for out-of-memory input."""
        return score_method(self, X, y, fitted=self._fitted_model)

    def __sklearn_tags__(self) -> Any:
        from daskscale.learn.prep import delegate_tags

        return delegate_tags(super().__sklearn_tags__(), self.estimator)
