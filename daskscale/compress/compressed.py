"""A compressed model: a scikit-learn estimator whose weights are pruned and/or quantized.

:func:`compress` turns a fitted linear model or MLP into a :class:`CompressedClassifier` or
:class:`CompressedRegressor`; they also ``fit`` themselves (train the wrapped ``estimator``,
then compress it), so they pass scikit-learn's estimator checks. Prediction runs from the
stored int8 / float16 / sparse weights (:func:`daskscale.compress.quantize.qmatmul`), NumPy
in, NumPy out; a dask array, DataFrame or store path in, a lazy dask array out (one task
per row block). Saved with :func:`daskscale.models.save_model`, the file holds the int8
values and packed bit masks, so it is really smaller.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin, clone
from sklearn.utils.metaestimators import available_if
from sklearn.utils.validation import check_is_fitted, validate_data

from daskscale.compress.prune import check_sparsity, check_supported, magnitude_prune, prune_neurons
from daskscale.compress.quantize import check_mode, pack, prepare, qmatmul, quantize, quantize_bias, unpack
from daskscale.engine.apply import apply_blockwise, in_memory, score_blockwise

__all__ = ["CompressedClassifier", "CompressedRegressor", "compress"]


def _relu(z):
    return np.maximum(z, 0, out=z)


def _logistic(z):
    from scipy.special import expit  # no overflow warning for large |z|

    return expit(z)


def _softmax(z):
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


_ACT = {"relu": _relu, "tanh": np.tanh, "logistic": _logistic, "identity": lambda z: z}


class _Compressed(BaseEstimator):
    def __init__(self, estimator: Any = None, *, sparsity: float = 0.0, scope: str = "global",
                 keep_units: float | None = None, quantize: str | None = "int8", per_channel: bool = True):
        self.estimator = estimator
        self.sparsity = sparsity
        self.scope = scope
        self.keep_units = keep_units
        self.quantize = quantize
        self.per_channel = per_channel

    # -- building ------------------------------------------------------------------------
    def fit(self, X: Any, y: Any) -> "_Compressed":
        """Fit a clone of ``estimator`` on ``(X, y)`` (NumPy), then compress it."""
        X, y = validate_data(self, X, y)
        est = clone(self.estimator if self.estimator is not None else self._default_estimator())
        return self._load_fitted(est.fit(X, y))

    def _load_fitted(self, model: Any) -> "_Compressed":
        model, (shift, scale) = _unwrap(model)
        kind = check_supported(model)
        check_sparsity(self.sparsity)
        mode = check_mode(self.quantize)
        if self.keep_units is not None and kind == "mlp":
            model = prune_neurons(model, self.keep_units)
        if self.sparsity > 0:
            model, _ = magnitude_prune(model, self.sparsity, scope=self.scope)
        if kind == "mlp":
            ws, bs = model.coefs_, model.intercepts_
            self.activation_, out = model.activation, model.out_activation_
        else:
            ws, bs = [np.atleast_2d(model.coef_).T], [np.atleast_1d(model.intercept_)]
            self.activation_, out = "identity", "identity"
        # the scaler stays a float32 step before the first layer. Folded into it, W / s would put
        # features of very different scales in one int8 channel, and a large mean m / s would
        # multiply the weights' rounding error (x @ W' - (m / s) @ W cancels, the error does not)
        self.input_scaler_ = None if scale is None else np.asarray([shift, scale], dtype=np.float32)
        self.layers_ = [quantize(w, mode, per_channel=self.per_channel) for w in ws]
        self.intercepts_ = [quantize_bias(b, mode) for b in bs]
        self._ops = [prepare(q) for q in self.layers_]
        self.out_activation_ = out
        self.proba_ = _proba_kind(model, kind)
        self.source_type_ = type(model).__name__
        self.n_features_in_ = ws[0].shape[0]
        if hasattr(model, "feature_names_in_"):
            self.feature_names_in_ = model.feature_names_in_
        if hasattr(model, "classes_"):
            self.classes_ = model.classes_
        return self

    # -- size --------------------------------------------------------------------------
    @property
    def nbytes_(self) -> int:
        """Bytes of the weights, scales, masks, biases and input scaler in memory."""
        check_is_fitted(self, "layers_")
        pre = 0 if self.input_scaler_ is None else self.input_scaler_.nbytes
        return sum(q.nbytes for q in self.layers_) + sum(b.nbytes for b in self.intercepts_) + pre

    @property
    def sparsity_(self) -> float:
        """Fraction of weights that are exactly zero."""
        check_is_fitted(self, "layers_")
        nz = sum(int(q.mask().sum()) if q.sparse else int((q.dequantize() != 0).sum()) for q in self.layers_)
        return 1.0 - nz / sum(q.shape[0] * q.shape[1] for q in self.layers_)

    def __getstate__(self) -> dict:
        # the widened matmul operands are a per-process cache, never written to a file; the
        # layers travel as one byte array (see quantize.pack) to keep files small
        state = dict(super().__getstate__())  # object.__getstate__ returns __dict__ itself
        state.pop("_ops", None)
        if "layers_" in state:
            state["packed_"] = pack(state.pop("layers_"), state.pop("intercepts_"), state.pop("input_scaler_", None))
        return state

    def __setstate__(self, state: dict) -> None:
        state = dict(state)
        if "packed_" in state:  # one byte array; a dict of three arrays in older files
            state["layers_"], state["intercepts_"], state["input_scaler_"] = unpack(state.pop("packed_"))
            state["_ops"] = [prepare(q) for q in state["layers_"]]
        super().__setstate__(state)

    # -- prediction ----------------------------------------------------------------------
    def _forward(self, X: np.ndarray) -> np.ndarray:
        """Raw output (before the output activation) for a NumPy block."""
        ops = self._ops
        h = np.asarray(X, dtype=np.float32)
        if self.input_scaler_ is not None:
            h = (h - self.input_scaler_[0]) / self.input_scaler_[1]
        last = len(self.layers_) - 1
        for i, (q, b, op) in enumerate(zip(self.layers_, self.intercepts_, ops)):
            h = qmatmul(h, q, op, b)
            if i < last:
                h = _ACT[self.activation_](h)
        return h

    def _apply(self, X: Any, fn: Any) -> Any:
        """``fn`` on NumPy ``X`` directly; on anything else, lazily per row block."""
        check_is_fitted(self, "layers_")
        if in_memory(X):
            return fn(validate_data(self, X, reset=False))
        from daskscale.errors import SchemaError
        from daskscale.storage.convert import as_data

        data = as_data(X)
        if data.n_features != self.n_features_in_:
            raise SchemaError(f"{data.source or 'X'} has {data.n_features} features but this model was fitted "
                              f"with {self.n_features_in_}: give data with the same features")
        return apply_blockwise(fn, data)

    def _raw(self, X: Any) -> Any:
        """The last layer's output, 1-D when it has one unit."""
        check_is_fitted(self, "layers_")
        if self.layers_[-1].shape[1] == 1:
            return self._apply(X, lambda b: self._forward(b)[:, 0])
        return self._apply(X, self._forward)

    def _score(self, X: Any, y: Any, sample_weight: Any) -> float:
        """Accuracy or R^2 over every row (:func:`daskscale.engine.apply.score_blockwise`)."""
        check_is_fitted(self, "layers_")
        return score_blockwise(self, X, y, sample_weight=sample_weight)


def _unwrap(model: Any) -> tuple[Any, tuple[Any, Any]]:
    """``(final_model, (mean, scale))`` of a model or a Pipeline(StandardScaler, model)."""
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import StandardScaler

    from daskscale.errors import InputTypeError

    if not isinstance(model, Pipeline):
        return model, (None, None)
    steps = [s for _, s in model.steps if s not in (None, "passthrough")]
    if len(steps) == 1:
        return steps[0], (None, None)
    if len(steps) == 2 and isinstance(steps[0], StandardScaler):
        sc = steps[0]
        if not hasattr(sc, "n_features_in_"):
            from daskscale.errors import NotFittedError

            raise NotFittedError("the pipeline is not fitted; call fit before compressing it")
        n = sc.n_features_in_
        mean = sc.mean_ if sc.with_mean and sc.mean_ is not None else np.zeros(n)
        scale = sc.scale_ if sc.with_std and sc.scale_ is not None else np.ones(n)
        return steps[1], (np.asarray(mean, np.float64), np.asarray(scale, np.float64))
    raise InputTypeError("a Pipeline can be compressed when it is [StandardScaler,] model; got "
                         f"steps {[type(s).__name__ for s in steps]}")


def _proba_kind(model: Any, kind: str) -> str | None:
    if not hasattr(model, "classes_"):
        return None
    if kind == "mlp":
        return model.out_activation_
    name = type(model).__name__
    if name == "LogisticRegression":
        return "logistic" if len(model.classes_) == 2 else "softmax"
    if name == "SGDClassifier" and model.loss == "log_loss":
        return "logistic" if len(model.classes_) == 2 else "ovr"
    return None


def _has_proba(self: Any) -> bool:
    check_is_fitted(self, "layers_")
    return self.proba_ is not None


class CompressedClassifier(ClassifierMixin, _Compressed):
    """A pruned / quantized classifier, built by :func:`compress` or by ``fit``.

    Parameters
    ----------
    estimator : classifier with ``coef_`` or an MLPClassifier, default SGDClassifier(log_loss)
    sparsity : float in [0, 1)
        Fraction of weights zeroed by magnitude.
    scope : {"global", "layer"}
    keep_units : float or None
        MLP only: fraction of hidden units kept (structured pruning).
    quantize : {"int8", "float16", "float32", None}
    per_channel : bool
        int8: one scale per output unit (else per tensor).

    Examples
    --------
    >>> import numpy as np
    >>> X = np.random.default_rng(0).normal(size=(300, 8)); y = (X[:, 0] > 0).astype(int)
    >>> clf = CompressedClassifier(sparsity=0.5, quantize="int8").fit(X, y)
    >>> clf.layers_[0].values.dtype.name, clf.score(X, y) > 0.9
    ('int8', True)
    """

    def _default_estimator(self) -> Any:
        from sklearn.linear_model import SGDClassifier

        return SGDClassifier(loss="log_loss", random_state=0)

    def decision_function(self, X: Any) -> Any:
        """Raw scores (``(n,)`` for two classes, else ``(n, n_classes)``)."""
        return self._raw(X)

    def predict(self, X: Any) -> Any:
        """Class labels, blockwise."""
        classes = self.classes_ if hasattr(self, "classes_") else None
        check_is_fitted(self, "layers_")

        def labels(b: np.ndarray) -> np.ndarray:
            z = self._forward(b)
            idx = (z[:, 0] > 0).astype(int) if z.shape[1] == 1 else z.argmax(axis=1)
            return classes[idx]

        return self._apply(X, labels)

    @available_if(_has_proba)
    def predict_proba(self, X: Any) -> Any:
        """Class probabilities, blockwise (models trained with a probabilistic loss)."""
        def proba(b: np.ndarray) -> np.ndarray:
            z = self._forward(b)
            if self.proba_ == "softmax":
                return _softmax(z)
            p = _logistic(z)
            if z.shape[1] == 1:
                return np.hstack([1 - p, p])
            return p / np.where(p.sum(axis=1, keepdims=True) == 0, 1, p.sum(axis=1, keepdims=True))

        return self._apply(X, proba)

    def score(self, X: Any, y: Any, sample_weight: Any = None) -> float:
        """Accuracy over every row (blockwise for lazy input)."""
        return self._score(X, y, sample_weight)


class CompressedRegressor(RegressorMixin, _Compressed):
    """A pruned / quantized regressor (linear models with ``coef_``, MLPRegressor).

    Examples
    --------
    >>> import numpy as np
    >>> X = np.random.default_rng(0).normal(size=(300, 8)); y = X @ np.arange(8.0)
    >>> CompressedRegressor(quantize="int8").fit(X, y).score(X, y) > 0.99
    True
    """

    def _default_estimator(self) -> Any:
        from sklearn.linear_model import Ridge

        return Ridge()

    def predict(self, X: Any) -> Any:
        """Predictions, blockwise (``(n,)`` for one target)."""
        return self._raw(X)

    def score(self, X: Any, y: Any, sample_weight: Any = None) -> float:
        """R^2 over every row (blockwise for lazy input)."""
        return self._score(X, y, sample_weight)


def compress(model: Any, *, sparsity: float = 0.0, scope: str = "global", keep_units: float | None = None,
             quantize: str | None = "int8", per_channel: bool = True) -> _Compressed:
    """Compress a fitted linear model or MLP without refitting it.

    ``model`` may also be what a training strategy fitted (``Incremental``,
    ``ParameterAveraging``, an exact solver, ...): its plain model is compressed
    (:func:`daskscale.compress.unwrap.plain_model`).

    Raises
    ------
    InputTypeError
        For a model type that is not supported (the message lists the supported ones).
    NotFittedError
        For a model that is not fitted.
    SchemaError
        For a sparsity outside [0, 1).

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn.linear_model import LogisticRegression
    >>> X = np.random.default_rng(0).normal(size=(300, 8)); y = (X[:, 0] > 0).astype(int)
    >>> c = compress(LogisticRegression().fit(X, y), sparsity=0.5, quantize="int8")
    >>> type(c).__name__, round(c.sparsity_, 2), c.predict_proba(X[:2]).shape
    ('CompressedClassifier', 0.5, (2, 2))
    """
    from sklearn.base import is_classifier

    from daskscale.compress.unwrap import plain_model

    model = plain_model(model)  # a trainer saved by `daskscale fit`: the model it trained
    check_supported(_unwrap(model)[0])
    cls = CompressedClassifier if is_classifier(model) else CompressedRegressor
    c = cls(None, sparsity=sparsity, scope=scope, keep_units=keep_units, quantize=quantize, per_channel=per_channel)
    return c._load_fitted(model)
