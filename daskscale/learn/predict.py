"""The public ``predict``/``score`` boundary of every trainer, on any input (no gather of X).

:func:`apply_method` and :func:`score_method`: NumPy or pandas in, NumPy out (validated as at
fit: feature count and names); a dask array, xarray object or store path in, a lazy dask
array out, one task per row block (:func:`daskscale.engine.apply.apply_blockwise`). The score
is the one pooled score of :mod:`daskscale.engine.apply`.
"""

from __future__ import annotations

from typing import Any

import dask.array as da
import numpy as np
from sklearn.utils.metaestimators import available_if

from daskscale.engine.apply import apply_blockwise, in_memory, score_blockwise
from daskscale.errors import NotFittedError, SchemaError
from daskscale.storage.convert import Data, as_data

__all__ = ["predict_blockwise", "classes_of", "apply_method", "score_method", "require_n_features",
           "DelegatingPredictor"]


def classes_of(data: Data) -> np.ndarray:
    """Class labels: from the store's attributes, else the union of each block's labels."""
    if data.classes is not None:
        return np.asarray(data.classes)
    return np.unique(data.y.map_blocks(np.unique, dtype=data.y.dtype).compute())


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
    return apply_blockwise(getattr(model, method), X if isinstance(X, Data) else as_data(X))


def apply_method(est: Any, X: Any, method: str, fn: Any, *, fitted: str) -> Any:
    """``est.<method>(X)`` at the public boundary.

    ``fn(X_numpy)`` computes the answer on validated in-memory rows; ``fitted`` names the
    attribute that exists once ``est`` is fitted. In-memory ``X``: ``fn`` of the validated
    array (NumPy out). Any other input: ``est.<method>`` mapped over its row blocks (lazy).
    """
    from sklearn.utils.validation import validate_data

    from daskscale.learn.prep import NotFitted

    if not hasattr(est, fitted):
        raise NotFitted(f"this {type(est).__name__} is not fitted yet: call fit(X, y) first")
    if in_memory(X):
        return fn(validate_data(est, X, reset=False, accept_sparse=False, dtype=("float64", "float32")))
    data = X if isinstance(X, Data) else as_data(X)
    require_n_features(est, data)
    return apply_blockwise(getattr(est, method), data)


def require_n_features(model: Any, data: Data) -> None:
    """Raise a :class:`SchemaError` naming the data when its width is not the model's."""
    expected = getattr(model, "n_features_in_", None)
    if expected is not None and data.n_features != expected:
        raise SchemaError(f"{data.source or 'X'} has {data.n_features} features, but {type(model).__name__} "
                          f"was fitted with {expected}: give data with the same features")


def score_method(est: Any, X: Any, y: Any = None, *, fitted: str) -> float:
    """Accuracy (classifiers) or R^2 (regressors) of ``est`` on any accepted input.

    The one score of :func:`daskscale.engine.apply.score_blockwise`: in-memory input is one
    block; any other input is scored blockwise, nothing gathered but a few sums.
    """
    from daskscale.learn.prep import NotFitted

    if not hasattr(est, fitted):
        raise NotFitted(f"this {type(est).__name__} is not fitted yet: call fit(X, y) first")
    return score_blockwise(est, X, y)


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
