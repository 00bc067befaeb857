"""The public boundary of the exact solvers: what ``fit`` accepts, what ``predict`` returns.

In-memory input (NumPy, pandas, lists) is validated by scikit-learn's own helpers (feature
names, ``n_features_in_``, dtypes) and checked for NaN / inf before anything else; every
other input (a store path, dask, xarray) goes through the engine's :class:`~daskscale.engine.source.Source`,
and its values are checked in the fit's first pass. ``predict`` and friends take the same
inputs: NumPy in, NumPy out; a store path, dask or xarray in, a lazy dask array out, computed
block by block where the blocks are.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.base import is_classifier
from sklearn.utils import column_or_1d
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import validate_data

from daskscale.engine.apply import in_memory
from daskscale.engine.source import Source
from daskscale.errors import NotFittedError, SchemaError
from daskscale.learn.solvers_fit import Spec, raise_if_not_finite
from daskscale.learn.solvers_kernels import Finite
from daskscale.storage.convert import Data, as_data

__all__ = ["SolverIO", "apply_linear"]


def apply_linear(X: np.ndarray, coef: np.ndarray, intercept: np.ndarray, how: str, classes: Any) -> np.ndarray:
    """A linear model's output on one block: ``how`` is "decision", "proba", "predict", "exp"
    or "identity"."""
    eta = np.asarray(X, dtype=np.float64) @ coef.T + intercept
    if how == "exp":
        return np.exp(eta[:, 0])
    if how == "identity":
        return eta[:, 0]
    if how == "decision":
        return eta[:, 0] if eta.shape[1] == 1 else eta
    if how == "predict":
        idx = (eta[:, 0] > 0).astype(np.intp) if eta.shape[1] == 1 else np.argmax(eta, axis=1)
        return np.asarray(classes)[idx]
    if eta.shape[1] == 1:
        from scipy.special import expit

        p1 = expit(eta[:, 0])
        return np.column_stack([1 - p1, p1])
    eta -= eta.max(axis=1, keepdims=True)
    P = np.exp(eta)
    return P / P.sum(axis=1, keepdims=True)


class SolverIO:
    """Input handling shared by the three solvers (a mixin placed before scikit-learn's)."""

    def _accept(self, X: Any, y: Any) -> tuple[Data, tuple | None, Any, Any]:
        """``(data, (X, y) arrays when in memory, known classes, reader)``; in-memory values checked
        here. ``reader`` reads a store's blocks where they are (the engine's :class:`ZarrReader`,
        3x zarr's own read of a blosc chunk), else None."""
        name = type(self).__name__
        if not in_memory(X):
            src = Source.of(X, y, require_y=True)
            return (src.data, None, (src.data.classes if is_classifier(self) else None),
                    src.reader if src.kind == "store" else None)
        if y is None:
            raise SchemaError(f"{name} requires y to be passed, but the target y is None: no target given "
                              "(pass y=, or a store with a target)")
        Xa = validate_data(self, X, reset=True, dtype=("float64", "float32"), ensure_all_finite=False,
                           ensure_min_samples=1)
        ya = column_or_1d(y, warn=True)
        if len(ya) != len(Xa):
            raise SchemaError(f"X has {len(Xa)} rows but y has {len(ya)}: they must match")
        if not is_classifier(self) and ya.dtype.kind not in "biuf":
            ya = ya.astype(np.float64)
        data = as_data(Xa, ya)
        raise_if_not_finite(Finite().map(Xa, ya), Spec(self._kind, 0.0, 0.0, 0, data.row_chunks, "X"))
        classes = None
        if is_classifier(self):
            check_classification_targets(ya)
            classes = np.unique(ya)
        return data, (Xa, ya), classes, None

    def _fitted(self) -> None:
        if not hasattr(self, "coef_"):
            raise NotFittedError(f"{type(self).__name__} is not fitted: call fit(X, y) first")

    def _apply(self, X: Any, how: str) -> Any:
        self._fitted()
        coef = np.atleast_2d(self.coef_)
        b = np.atleast_1d(self.intercept_)
        classes = getattr(self, "classes_", None)
        if in_memory(X):
            Xa = validate_data(self, X, reset=False, dtype=("float64", "float32"))
            return apply_linear(Xa, coef, b, how, classes)
        data = as_data(X)
        if data.n_features != self.n_features_in_:
            raise SchemaError(f"{data.source or 'X'} has {data.n_features} features, but {type(self).__name__} "
                              f"was fitted with {self.n_features_in_}")
        probe = apply_linear(np.zeros((1, data.n_features)), coef, b, how, classes)
        if probe.ndim == 1:
            return data.X.map_blocks(apply_linear, coef, b, how, classes, drop_axis=1, dtype=probe.dtype,
                                     meta=np.empty((0,), probe.dtype))
        return data.X.map_blocks(apply_linear, coef, b, how, classes, chunks=(data.X.chunks[0], (probe.shape[1],)),
                                 dtype=probe.dtype, meta=np.empty((0, 0), probe.dtype))

    def score(self, X: Any, y: Any = None, sample_weight: Any = None) -> float:
        """Accuracy (classifier) or R^2 (regressor); a store, dask or xarray input is scored blockwise."""
        if in_memory(X):
            return super().score(X, y, sample_weight=sample_weight)
        from daskscale.learn.predict import score_blockwise

        return score_blockwise(self, X, y)
