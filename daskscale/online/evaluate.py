"""The prequential loop on micro-batches, with online preprocessing (River's ``evaluate`` shape).

For each micro-batch: build the features with the preprocessing steps as they were BEFORE
the batch, predict, then update the steps with the batch, build its features again with the
updated steps, and train the model on them (through the block loop's
:class:`~daskscale.engine.loop.Step` (classes on the first call only, an estimator's error
named by the batch; a model with ``predict_then_learn``,
:class:`~daskscale.online.linear.OnlineLogisticRegression`, does both in one step, each row
predicted after the rows before it in the batch); the metrics get the predictions, the
batch's arrival and lag (:class:`~daskscale.online.metrics.PrequentialMetrics`). Every row
is predicted before anything (model or scaler) has learned from it.

This is the loop :class:`~daskscale.online.OnlineLearner` runs per batch, written out
without drift reactions or checkpoints, so the benchmarks can measure preprocessing and
micro-batching on their own.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Iterable, Sequence

import numpy as np
from sklearn import config_context

from daskscale.engine.loop import Step
from daskscale.learn.prep import kind_of
from daskscale.online.linear import linear_predict
from daskscale.online.metrics import PrequentialMetrics
from daskscale.online.preprocess import OnlineOneHot, OnlineStandardScaler

__all__ = ["Features", "prequential", "PrequentialResult", "make_features"]


@dataclass
class Features:
    """Online preprocessing: a scaler on the numeric columns, one-hot steps on the categorical fields."""

    scaler: OnlineStandardScaler | None = field(default_factory=OnlineStandardScaler)
    onehot: Sequence[OnlineOneHot] = ()

    def transform(self, X: np.ndarray, categories: Any = None) -> np.ndarray:
        Xt = self.scaler.transform(X) if self.scaler is not None else np.asarray(X, dtype=np.float64)
        if not self.onehot:
            return Xt
        return np.hstack([Xt, *(oh.transform(categories[:, j]) for j, oh in enumerate(self.onehot))])

    def transform_learn(self, X: np.ndarray, categories: Any = None) -> tuple[np.ndarray, np.ndarray]:
        """The batch through the steps as they are (to predict it), then the steps learn it, then
        the batch through them again (to train on it): ``(before, after)``."""
        if self.scaler is not None and not self.onehot:
            return self.scaler.transform_learn(X)
        before = self.transform(X, categories)
        return before, self.partial_fit(X, categories).transform(X, categories)

    def partial_fit(self, X: np.ndarray, categories: Any = None) -> "Features":
        if self.scaler is not None:
            self.scaler.partial_fit(X)
        for j, oh in enumerate(self.onehot):
            oh.partial_fit(categories[:, j])
        return self

    def get_state(self) -> dict[str, Any]:
        """Arrays and JSON values only, for a checkpoint beside the model."""
        return {"scaler": None if self.scaler is None else self.scaler.get_state(),
                "onehot": [oh.get_state() for oh in self.onehot]}

    def set_state(self, state: dict[str, Any]) -> "Features":
        if self.scaler is not None:
            self.scaler.set_state(state["scaler"])
        for oh, s in zip(self.onehot, state["onehot"]):
            oh.set_state(s)
        return self

    def spec(self) -> dict[str, Any]:
        """The steps' parameters as JSON (no state): :func:`make_features` rebuilds them."""
        return {"scaler": None if self.scaler is None else self.scaler.get_params(),
                "onehot": [oh.get_params() for oh in self.onehot]}


def make_features(spec: Any) -> Features | None:
    """Fresh, unfitted preprocessing steps from ``preprocess=`` of a learner.

    ``None`` (no preprocessing), ``"standard"`` (:class:`OnlineStandardScaler` on every
    column), a :class:`Features` (its steps' parameters; the object given is not touched), or
    the dict of :meth:`Features.spec` (from a checkpoint).

    Examples
    --------
    >>> make_features("standard").spec()
    {'scaler': {'with_mean': True, 'with_std': True}, 'onehot': []}
    >>> make_features(None) is None
    True
    """
    from daskscale.errors import SchemaError

    if spec is None:
        return None
    if isinstance(spec, str) and spec == "standard":
        return Features()
    if isinstance(spec, Features):
        spec = spec.spec()
    if isinstance(spec, dict) and set(spec) == {"scaler", "onehot"}:
        return Features(scaler=None if spec["scaler"] is None else OnlineStandardScaler(**spec["scaler"]),
                        onehot=[OnlineOneHot(**p) for p in spec["onehot"]])
    raise SchemaError(f"preprocess must be None, 'standard' or a daskscale.online.Features, not {spec!r}")


@dataclass
class PrequentialResult:
    model: Any
    features: Features
    metrics: PrequentialMetrics


def prequential(batches: Iterable[Any], model: Any, *, features: Features | None = None,
                classes: Any = None) -> PrequentialResult:
    """Test-then-train ``model`` (a ``partial_fit`` classifier) on ``batches``.

    ``batches`` yields objects with ``X``, ``y``, ``arrived`` and optionally ``lag_rows`` and
    ``categories`` (:class:`~daskscale.online.events.MicroBatch`, or a source's ``Batch``).

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn.linear_model import SGDClassifier
    >>> from daskscale.online.events import EventBatcher
    >>> rng = np.random.default_rng(0)
    >>> events = [{"a": float(a), "b": 100 * float(b), "y": int(a + b > 0)} for a, b in rng.normal(size=(3000, 2))]
    >>> res = prequential(EventBatcher(max_batch=100).batches(events), SGDClassifier(loss="log_loss", random_state=0),
    ...                   classes=[0, 1])
    >>> r = res.metrics.report()
    >>> r["rows"], r["scored_rows"], r["accuracy"] > 0.9, r["max_lag_rows"]
    (3000, 2900, True, 100)
    """
    features = Features() if features is None else features
    metrics = PrequentialMetrics()
    step = None  # made at the first batch: its classes are those given, else the first batch's
    # batches are built here, finite and float64: spare scikit-learn its per-call checks
    with config_context(assume_finite=True, skip_parameter_validation=True):
        for b in batches:
            cats = getattr(b, "categories", None)
            y = np.asarray(b.y)
            y_pred = None
            if step is not None and hasattr(model, "predict_then_learn"):
                # each row predicted after the rows before it in the batch (first order), then learned
                y_pred = model.predict_then_learn(*features.transform_learn(b.X, cats), y)
            else:
                if step is not None:
                    Xp = features.transform(b.X, cats)
                    y_pred = linear_predict(model, Xp)
                    if y_pred is None:
                        y_pred = model.predict(Xp)
                else:
                    step = Step(model, kind_of(model), classes=np.unique(y) if classes is None else classes)
                Xt = features.partial_fit(b.X, cats).transform(b.X, cats)
                step(Xt, y, getattr(b, "where", "") or f"batch (rows {metrics.n_rows}-{metrics.n_rows + len(y)})")
            metrics.update(y, y_pred, arrived=b.arrived, learned=time.perf_counter(),
                           lag_rows=getattr(b, "lag_rows", None))
    return PrequentialResult(model, features, metrics)
