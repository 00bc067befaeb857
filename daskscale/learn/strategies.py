"""One factory for every training strategy: ``make_trainer(strategy, estimator, ...)``.

Used by ``daskscale fit --strategy`` and by anyone who wants to switch strategy by name. The
returned object is an sklearn-like estimator whose ``fit(X, y)`` accepts anything
:func:`daskscale.storage.convert.as_data` accepts.

==================  ================================================================
strategy            trainer
==================  ================================================================
"average"           :class:`~daskscale.learn.parallel.ParameterAveraging`
"exact"             :mod:`daskscale.learn.solvers` (logistic, ridge/linear, Poisson)
"feature-sharded"   :class:`~daskscale.learn.model_parallel.FeatureShardedLinear`
"ovr"               :class:`~daskscale.learn.ensemble.DistributedOneVsRest`
"ensemble"          :class:`~daskscale.learn.ensemble.DistributedBagging`
"incremental"       ``daskscale.learn.incremental.Incremental`` (if installed)
"auto"              :class:`AutoTrainer`: :func:`daskscale.learn.planner.plan` decides at fit
==================  ================================================================
"""

from __future__ import annotations

from typing import Any

from sklearn.base import BaseEstimator

from daskscale.errors import InputTypeError, NotFittedError, OptionError

__all__ = ["make_trainer", "STRATEGIES", "AutoTrainer", "exact_solver_for"]

STRATEGIES = ("average", "exact", "feature-sharded", "ovr", "ensemble", "incremental", "auto")


def _build(cls: type, *args: Any, **kw: Any) -> Any:
    """``cls(*args, **kw)``, refusing by name an option ``cls`` does not take (instead of a bare
    ``TypeError``, or an option silently dropped)."""
    import inspect

    takes = [p for p in inspect.signature(cls).parameters if p not in ("self", "args", "kwargs")]
    unknown = sorted(set(kw) - set(takes))
    if unknown:
        raise OptionError(f"{cls.__name__} takes no option {', '.join(map(repr, unknown))}; "
                          f"its options: {', '.join(takes)}")
    return cls(*args, **kw)


def exact_solver_for(estimator: Any, **kw: Any) -> Any:
    """The exact distributed solver with the same objective as ``estimator``."""
    from daskscale.learn import solvers

    name = type(estimator).__name__
    params = estimator.get_params() if hasattr(estimator, "get_params") else {}
    if name in ("LogisticRegression", "SGDClassifier"):
        # SGD's alpha is per row, so its C depends on n; C=1 is sklearn's default strength
        C = params.get("C", 1.0) if name == "LogisticRegression" else 1.0
        return _build(solvers.ExactLogisticRegression, C=C, **kw)
    if name in ("Ridge", "LinearRegression", "SGDRegressor"):
        return _build(solvers.ExactLinearRegression, alpha=params.get("alpha", 0.0) if name == "Ridge" else 0.0, **kw)
    if name == "PoissonRegressor":
        return _build(solvers.ExactPoissonRegression, alpha=params.get("alpha", 1.0), **kw)
    raise InputTypeError(f"no exact solver for {name}: use LogisticRegression, Ridge, LinearRegression or "
                         "PoissonRegressor, or strategy='average'")


def make_trainer(strategy: str, estimator: Any, *, epochs: int = 1, batch_size: int | None = None,
                 random_state: int | None = None, **kw: Any) -> Any:
    """An sklearn-like trainer that fits ``estimator`` with ``strategy``.

    Parameters
    ----------
    strategy : one of :data:`STRATEGIES`
    estimator : sklearn estimator (the model, or the member/base model for ovr/ensemble)
    epochs : int
        Passes over the data for iterative strategies.
    batch_size : int or None
        Rows per ``partial_fit`` call, as everywhere in daskscale (for ``"average"``); default one
        call per block. Blocks are re-cut by the trainers' own ``chunk_rows`` option.
    random_state : int or None
    **kw
        Passed to the trainer (e.g. ``merge_every``, ``n_estimators``, ``alpha``).

    Raises
    ------
    InputTypeError
        For an unknown strategy, or an estimator the strategy cannot train.

    Examples
    --------
    >>> from sklearn.linear_model import SGDClassifier
    >>> make_trainer("average", SGDClassifier(), epochs=2)
    ParameterAveraging(epochs=2, estimator=SGDClassifier())
    """
    from sklearn.base import is_classifier

    s = str(strategy).lower()
    if s == "average":
        from daskscale.learn.parallel import ParameterAveraging

        return _build(ParameterAveraging, estimator, epochs=epochs, batch_size=batch_size, random_state=random_state,
                      **kw)
    if s == "exact":
        return exact_solver_for(estimator, **kw)
    if s == "feature-sharded":
        from daskscale.learn.model_parallel import FeatureShardedLinear

        params = estimator.get_params() if hasattr(estimator, "get_params") else {}
        if is_classifier(estimator):
            alpha = 1.0 / params["C"] if "C" in params else params.get("alpha", 1.0)
            return _build(FeatureShardedLinear, "logistic", alpha=alpha, **kw)
        return _build(FeatureShardedLinear, "squared", alpha=params.get("alpha", 1.0), **kw)
    if s == "ovr":
        from daskscale.learn.ensemble import DistributedOneVsRest

        return _build(DistributedOneVsRest, estimator, **kw)
    if s == "ensemble":
        from daskscale.learn.ensemble import DistributedBagging

        return _build(DistributedBagging, estimator, random_state=random_state, **kw)
    if s == "incremental":
        from daskscale.learn.incremental import Incremental

        return _build(Incremental, estimator, **kw)
    if s == "auto":
        return AutoTrainer(estimator, epochs=epochs, random_state=random_state, options=kw)
    raise InputTypeError(f"unknown strategy {strategy!r}: choose one of {', '.join(STRATEGIES)}")


_PLAN_TO_STRATEGY = {"model-parallel": "feature-sharded", "data-parallel-exact": "exact",
                     "data-parallel": "average", "incremental": "average", "ensemble": "ensemble"}


class AutoTrainer(BaseEstimator):
    """Asks :func:`daskscale.learn.planner.plan` at fit time and trains with the strategy it picks.

    ``plan_`` holds the decision and its reasons; ``trainer_`` the fitted trainer.
    """

    def __init__(self, estimator: Any = None, *, epochs: int = 1, random_state: int | None = None,
                 options: dict | None = None):
        self.estimator = estimator
        self.epochs = epochs
        self.random_state = random_state
        self.options = options

    def __sklearn_tags__(self) -> Any:
        """A classifier or a regressor as its estimator is (``evaluate`` then finds the target)."""
        from sklearn.utils import get_tags

        tags = super().__sklearn_tags__()
        tags.estimator_type = get_tags(self.estimator).estimator_type if self.estimator is not None else None
        return tags

    def fit(self, X: Any, y: Any = None) -> "AutoTrainer":
        from sklearn.base import clone

        from daskscale.learn.planner import plan
        from daskscale.storage.convert import as_data

        data = as_data(X, y, require_y=True)
        self.plan_ = plan(data, self.estimator, epochs=self.epochs)
        if self.plan_.strategy == "in-memory":
            from daskscale.learn.ensemble import DistributedBagging

            # one member on all blocks, fitted on a worker: the in-memory fit without the client's memory
            self.trainer_ = DistributedBagging(clone(self.estimator), n_estimators=1, max_blocks=1.0)
        else:
            self.trainer_ = make_trainer(_PLAN_TO_STRATEGY[self.plan_.strategy], self.estimator, epochs=self.epochs,
                                         random_state=self.random_state, **(self.options or {}))
        self.trainer_.fit(data)
        self.strategy_ = self.plan_.strategy
        return self

    def __getattr__(self, name: str) -> Any:
        if name in ("predict", "predict_proba", "score", "decision_function") and "trainer_" in self.__dict__:
            return getattr(self.__dict__["trainer_"], name)
        if name in ("predict", "predict_proba", "score", "decision_function"):
            raise NotFittedError("AutoTrainer is not fitted: call fit(X, y) first")
        raise AttributeError(name)
