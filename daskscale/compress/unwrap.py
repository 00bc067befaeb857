"""The plain scikit-learn model inside what ``daskscale fit`` saves, whatever the strategy.

Every training strategy writes a trainer object (``Incremental``, ``ParameterAveraging``, the
exact solvers, ...). Tools that work on one fitted scikit-learn model (compression, transfer)
take :func:`plain_model` of it: the fitted model the trainer learned, with identical
predictions, or an :class:`~daskscale.errors.InputTypeError` that says in one line why there is
none and what to do instead.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from daskscale.errors import InputTypeError

__all__ = ["plain_model"]


def plain_model(model: Any) -> Any:
    """The fitted scikit-learn model (or ``Pipeline``) that makes ``model``'s predictions.

    ==========================  =====================================================
    saved by strategy           plain model
    ==========================  =====================================================
    incremental                 ``Pipeline([StandardScaler, estimator_])`` or ``estimator_``
    average                     the averaged ``estimator_``
    exact                       ``LogisticRegression`` / ``LinearRegression`` with its weights
    feature-sharded             ``LogisticRegression`` / ``LinearRegression`` with its weights
    ovr (linear members)        one linear classifier whose rows are the members' weights
    auto                        the plain model of the trainer the planner chose
    ensemble, ovr (others)      refused: several models vote, there is no one model
    ==========================  =====================================================

    Anything else (a scikit-learn model, a Pipeline) is returned as is.

    Raises
    ------
    InputTypeError
        When the predictions come from several models, or are not linear in the weights.

    Examples
    --------
    >>> import numpy as np
    >>> from daskscale.learn.solvers import ExactLinearRegression
    >>> X = np.random.default_rng(0).normal(size=(50, 3)); y = X @ [1.0, 2.0, 3.0]
    >>> m = ExactLinearRegression().fit(X, y)
    >>> p = plain_model(m)
    >>> type(p).__name__, bool(np.allclose(p.predict(X), m.predict(X)))
    ('LinearRegression', True)
    """
    name = type(model).__name__
    if hasattr(model, "as_pipeline"):  # Incremental: its scaler and estimator
        return model.as_pipeline()
    if hasattr(model, "trainer_"):  # AutoTrainer: the trainer the planner chose
        return plain_model(model.trainer_)
    if name == "ParameterAveraging" and hasattr(model, "estimator_"):
        return model.estimator_
    if name == "ExactPoissonRegression":
        raise InputTypeError("a Poisson model (strategy exact) predicts exp(X @ coef_ + intercept_): neither "
                             f"compression nor fine-tuning applies; its {np.size(model.coef_) + 1} weights are "
                             "few already, so use the model as it is")
    if name in ("ExactLogisticRegression", "ExactLinearRegression", "FeatureShardedLinear"):
        return _linear(model)
    if name == "DistributedOneVsRest":
        return _stacked(model)
    if name == "DistributedBagging":
        n = len(getattr(model, "estimators_", []))
        raise InputTypeError(f"an ensemble (strategy ensemble) is {n} models that vote, not one model to compress or "
                             "fine-tune: fit with --strategy incremental or average for one model")
    return model


def _linear(model: Any) -> Any:
    """A scikit-learn linear model holding ``model``'s fitted weights."""
    from sklearn.linear_model import LinearRegression, LogisticRegression

    if hasattr(model, "classes_"):
        out = LogisticRegression()
        out.classes_ = np.asarray(model.classes_)
        out.coef_ = np.atleast_2d(np.asarray(model.coef_, dtype=np.float64))
        out.intercept_ = np.atleast_1d(np.asarray(model.intercept_, dtype=np.float64))
    else:
        out = LinearRegression()
        out.coef_ = np.asarray(model.coef_, dtype=np.float64)
        out.intercept_ = model.intercept_
    out.n_features_in_ = model.n_features_in_
    return out


def _stacked(model: Any) -> Any:
    """One-vs-rest of linear binary members as one linear classifier (the same argmax)."""
    from sklearn.linear_model import RidgeClassifier

    members = list(getattr(model, "estimators_", []))
    if not members or not all(np.shape(getattr(m, "coef_", None))[:1] == (1,) for m in members):
        kinds = sorted({type(m).__name__ for m in members})
        raise InputTypeError(f"a one-vs-rest (strategy ovr) of {len(members)} {'/'.join(kinds)} models is not one "
                             "model: only linear members stack into one; fit with --strategy incremental")
    coef = np.vstack([m.coef_ for m in members]).astype(np.float64)
    intercept = np.concatenate([np.atleast_1d(m.intercept_) for m in members]).astype(np.float64)
    if len(members) == 2:  # argmax of two scores is the sign of their difference
        coef, intercept = coef[1:] - coef[:1], intercept[1:] - intercept[:1]
    # RidgeClassifier predicts by argmax (sign for two classes) and offers no probabilities,
    # like a one-vs-rest of margins
    out = RidgeClassifier()
    out.classes_ = np.asarray(model.classes_)
    out.coef_, out.intercept_ = coef, intercept
    out.n_features_in_ = model.n_features_in_
    return out
