"""What an incremental fit checks and learns before and during training.

- :class:`Labels`: the distinct target values, as a mergeable reducer, so class discovery is
  one fused pass with the scaling :class:`~daskscale.reduce.Moments`.
- :func:`require_partial_fit`: refuses estimators that cannot learn from mini-batches and
  names the strategies that fit them instead.
- :func:`check_block`: NaN and unseen labels in a block, with its index and row range.
- :func:`block_loss`: the progressive per-block loss of the history (scores: :mod:`daskscale.engine.apply`).
- :func:`fit_source` / :func:`fit_data`, :func:`in_memory`, :func:`delegate_tags`, :class:`NotFitted`: the public
  boundary every trainer shares (scikit-learn's validation for in-memory input, one conversion).

NaN policy (every trainer of :mod:`daskscale.learn`)
----------------------------------------------------
A NaN in ``X`` (or in a float ``y``) is never learned silently. Every trainer checks each row
block it learns from with :func:`check_block`, where the block is read (on its worker), and by
default raises a :class:`~daskscale.errors.SchemaError` of one shape::

    block 2 (rows 1000-1500) has NaN in 1 row(s), first at row 7 of the block. Clean the data,
    or pass nan='skip' to drop rows with NaN

``nan="skip"`` is the explicit choice to drop those rows instead; it is offered by the trainers
that read whole rows (``Incremental``, ``ParameterAveraging``, ``DistributedOneVsRest``,
``DistributedBagging``, ``SuccessiveHalvingSearch``, ``HyperbandSearch``).
``FeatureShardedLinear`` takes ``nan="raise"`` only: each worker holds some columns of every
row, so dropping a row would need every shard to agree on it first. Infinities are left to
scikit-learn, which refuses them. NumPy and pandas input is one block (block 0). Prediction
on NaN is refused by the fitted scikit-learn model.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from sklearn.exceptions import NotFittedError as _SklearnNotFitted

from daskscale.engine.apply import in_memory, kind_of
from daskscale.engine.source import Source
from daskscale.errors import InputTypeError, NotFittedError, SchemaError
from daskscale.reduce import Reducer

__all__ = ["Labels", "require_partial_fit", "check_block", "block_loss", "kind_of", "NAN_CHOICES",
           "check_nan_option", "where_block", "in_memory", "fit_data", "fit_source", "delegate_tags", "NotFitted"]

#: the values of every trainer's ``nan=`` option (see the NaN policy above)
NAN_CHOICES = ("raise", "skip")


class NotFitted(NotFittedError, _SklearnNotFitted):
    """Raised before fit: a daskscale error that is also scikit-learn's NotFittedError."""


class Labels(Reducer):
    """The sorted distinct values of ``y`` (NaN excluded).

    Examples
    --------
    >>> r = Labels()
    >>> r.finalize(r.merge(r.map(None, np.array([2, 0])), r.map(None, np.array([1, 2])))).tolist()
    [0, 1, 2]
    """

    name = "labels"
    needs_y = True
    needs_x = False
    whole_blocks = True

    def map(self, X: Any, y: np.ndarray | None = None) -> np.ndarray:
        y = np.asarray(y if y is not None else [])
        u = np.unique(y)
        return u[~np.isnan(u)] if u.dtype.kind == "f" else u

    def merge(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        return np.union1d(a, b)


def require_partial_fit(estimator: Any) -> None:
    """Raise :class:`InputTypeError` when ``estimator`` has no ``partial_fit``."""
    if hasattr(estimator, "partial_fit"):
        return
    name = type(estimator).__name__
    if "Logistic" in name or "Linear" in name or "Ridge" in name or "Poisson" in name or "Lasso" in name:
        alt = "'exact' (full-batch solver by map-reduce), 'average' or 'feature-sharded'"
    elif "Forest" in name or "Tree" in name or "Boost" in name or "SVC" in name or "Neighbors" in name:
        alt = "'ensemble' (members trained on shards) or 'ovr'"
    else:
        alt = "'average' (parameter averaging), 'ensemble' or 'exact'"
    raise InputTypeError(
        f"{name} has no partial_fit, so the mini-batch strategy cannot train it. Use strategy {alt} "
        "(daskscale.learn.make_trainer / `daskscale fit --strategy ...`), or an estimator with partial_fit "
        "such as SGDClassifier, SGDRegressor, MLPClassifier, MultinomialNB, MiniBatchKMeans"
    )


def check_block(X: Any, y: Any, *, where: str, nan: str,
                classes: np.ndarray | None) -> tuple[np.ndarray, np.ndarray | None, bool]:
    """Validate one block; returns ``(X, y, finite)``.

    ``nan="skip"`` drops rows with NaN, ``"raise"`` names the first one; a label outside
    ``classes`` is named. ``where`` (say ``"block 3 (rows 300-400)"``) starts every message.
    A NaN or an infinity anywhere makes the sum non-finite, so one ``sum`` (about 1 ms for
    20 MB) proves a clean block; only a block failing it is checked row by row. ``finite`` is
    true when every value of ``X`` (and of a float ``y``) is finite: then scikit-learn need not
    check it again (``assume_finite``). Infinities are left to scikit-learn.

    Examples
    --------
    >>> X, y, finite = check_block(np.ones((3, 2)), np.array([0, 1, 0]), where="block 0", nan="raise",
    ...                            classes=np.array([0, 1]))
    >>> X.shape, finite
    ((3, 2), True)
    >>> X, y, finite = check_block(np.array([[1.0], [np.nan]]), None, where="block 0", nan="skip", classes=None)
    >>> X.tolist(), finite
    ([[1.0]], False)
    >>> check_block(np.array([[1.0], [np.nan]]), None, where="block 7 (rows 70-72)", nan="raise", classes=None)
    Traceback (most recent call last):
    daskscale.errors.SchemaError: block 7 (rows 70-72) has NaN in 1 row(s), first at row 1 of the block. ...
    """
    X = np.asarray(X)
    y = None if y is None else np.asarray(y)
    finite = X.dtype.kind != "f" or bool(np.isfinite(X.sum()))
    if finite and y is not None and y.dtype.kind == "f":
        finite = bool(np.isfinite(y.sum()))
    if not finite:
        bad = np.isnan(X).any(axis=1) if X.dtype.kind == "f" else None
        if y is not None and y.dtype.kind == "f":
            ybad = np.isnan(y)
            bad = ybad if bad is None else (bad | ybad)
        if bad is not None and bad.any():
            if nan != "skip":
                rows = np.flatnonzero(bad)
                raise SchemaError(
                    f"{where} has NaN in {len(rows)} row(s), first at row {rows[0]} of the block. Clean the data, "
                    "or pass nan='skip' to drop rows with NaN")
            X, y = X[~bad], (None if y is None else y[~bad])
    if classes is not None and y is not None and len(y) and not np.isin(y, classes).all():
        unseen = np.setdiff1d(np.unique(y), classes)
        raise SchemaError(
            f"{where} has class label(s) {unseen.tolist()[:10]} not among the classes {classes.tolist()[:20]} "
            "fixed at the start of training; pass classes= with every label, or let daskscale discover them "
            "(classes=None) before the first epoch")
    return X, y, finite


def check_nan_option(nan: str, choices: tuple[str, ...] = NAN_CHOICES) -> None:
    """Refuse a ``nan=`` value outside ``choices``, naming them."""
    if nan not in choices:
        raise SchemaError(f"nan must be one of {', '.join(map(repr, choices))}, not {nan!r}")


def where_block(index: int, first_row: int, n_rows: int) -> str:
    """How messages name a row block: ``"block 2 (rows 1000-1500)"``."""
    return f"block {index} (rows {first_row}-{first_row + n_rows})"


def fit_source(est: Any, X: Any, y: Any, *, classifier: bool, chunk_rows: int | None = None) -> Source:
    """The one input boundary of a trainer's ``fit``: the :class:`~daskscale.engine.source.Source` of ``X``.

    In-memory input first goes through scikit-learn's checks, (shapes, dtype, infinities, ``n_features_in_``,
    ``feature_names_in_``, label types; NaN is left to the per-block check of the loop);
    ``chunk_rows`` re-cuts the row blocks. Nothing looks at ``X`` again afterwards.
    """
    from sklearn.utils.multiclass import check_classification_targets
    from sklearn.utils.validation import validate_data

    memory = in_memory(X)
    if memory:
        X, y = validate_data(est, X, y, accept_sparse=False, ensure_all_finite="allow-nan",
                             dtype=("float64", "float32"), y_numeric=not classifier)
        if classifier:
            check_classification_targets(y)
    elif y is not None and in_memory(y) and np.ndim(y) == 2 and np.shape(y)[1] == 1:
        y = np.ravel(np.asarray(y))
    source = Source.of(X, y, require_y=True, chunk_rows=chunk_rows)
    if not memory and hasattr(est, "feature_names_in_"):
        del est.feature_names_in_  # a name check at predict is for names given at fit only
    est.n_features_in_ = source.n_features
    return source


def fit_data(est: Any, X: Any, y: Any, *, classifier: bool, chunk_rows: int | None = None) -> Any:
    """The :class:`~daskscale.storage.convert.Data` of :func:`fit_source` (trainers that fit on the cluster)."""
    return fit_source(est, X, y, classifier=classifier, chunk_rows=chunk_rows).data


def delegate_tags(tags: Any, estimator: Any) -> Any:
    """``tags`` of a meta-estimator, with the kind (classifier, regressor) and target of ``estimator``.

    As scikit-learn's own meta-estimators do (1.6+), so ``is_classifier`` is true for a
    wrapped classifier and ``GridSearchCV`` stratifies its folds.
    """
    if estimator is None or not hasattr(estimator, "__sklearn_tags__"):
        return tags
    inner = estimator.__sklearn_tags__()
    tags.estimator_type = inner.estimator_type
    tags.classifier_tags = inner.classifier_tags
    tags.regressor_tags = inner.regressor_tags
    tags.target_tags = inner.target_tags
    tags.target_tags.required = inner.estimator_type in ("classifier", "regressor")
    tags.target_tags.multi_output = False  # the trainers learn one target column
    tags.target_tags.single_output = True
    if tags.classifier_tags is not None:
        tags.classifier_tags.multi_label = False
    tags.input_tags.sparse = False
    tags.input_tags.allow_nan = False
    return tags


def block_loss(est: Any, kind: str, X: np.ndarray, y: np.ndarray | None) -> float | None:
    """Loss of the current model on a block, before it trains on it (progressive validation).

    Classifiers: log loss when ``predict_proba`` exists, else zero-one loss; regressors: mean
    squared error; clusterers: mean negative score (inertia per row); transformers with
    ``inverse_transform``: mean squared reconstruction error.
    """
    if not len(X):
        return None
    if kind == "classifier":
        if hasattr(est, "predict_proba"):
            try:
                proba = est.predict_proba(X)
            except AttributeError:  # e.g. SGDClassifier(loss="hinge") has no probabilities
                proba = None
            if proba is not None:
                # sklearn's log_loss, without its input checks (they cost ~10% of a block's training)
                rows = np.searchsorted(est.classes_, y)
                p = proba[np.arange(len(y)), np.minimum(rows, proba.shape[1] - 1)]
                p = np.where(est.classes_[np.minimum(rows, len(est.classes_) - 1)] == y, p, 0.0)
                return float(-np.mean(np.log(np.clip(p, np.finfo(proba.dtype).eps, 1.0))))
        return float(np.mean(est.predict(X) != y))
    if kind == "regressor":
        return float(np.mean((est.predict(X) - y) ** 2))
    if kind == "cluster" and hasattr(est, "score"):
        return float(-est.score(X) / len(X))
    if hasattr(est, "inverse_transform"):
        return float(np.mean((est.inverse_transform(est.transform(X)) - X) ** 2))
    return None
