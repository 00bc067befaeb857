"""The per-batch update of :class:`~daskscale.online.OnlineLearner`: check, test, then train.

:class:`PrequentialUpdate` holds what the learner does with one batch and the learning state
it does it on (made by ``_init_state``):

- the check (``_problem``): a bad batch is skipped or raised (``on_bad_batch``), never learned;
- the test: predict with the model and the features as they were before the batch, score,
  feed the detector;
- the train: the features learn the batch, then the model learns it through the block loop's
  :class:`~daskscale.engine.loop.Step` (the one ``partial_fit`` call of daskscale: classes on
  the model's first call only, an estimator's ``ValueError`` re-raised as a
  :class:`~daskscale.errors.SchemaError` naming the batch, say ``events 1200:1232``), or, for a
  model with ``predict_then_learn``, in the same step as its prediction; a drift reaction
  replaces the model (:mod:`daskscale.online.reactions`) and trains the new one through ``Step`` too;
- the record: a compact row per batch, published to the dashboard throttled.
"""

from __future__ import annotations

import collections
import contextlib
import functools
import logging
import math
import time
from typing import Any

import numpy as np
from sklearn.base import clone, is_classifier

from daskscale.engine.loop import Step
from daskscale.errors import SchemaError
from daskscale.online.drift import make_detector
from daskscale.online.evaluate import make_features
from daskscale.online.linear import OnlineLogisticRegression, linear_predict
from daskscale.online.preprocess import RunningMoments
from daskscale.online.reactions import follow_background, react

__all__ = ["PrequentialUpdate"]

log = logging.getLogger("daskscale.online")

_sum, _max = np.add.reduce, np.maximum.reduce
_UNSIGNED = {size: np.dtype(f"u{size}") for size in (1, 2, 4, 8)}


class PrequentialUpdate:
    """Test-then-train of one batch, for :class:`~daskscale.online.OnlineLearner` (a mixin: the
    learner's parameters and ``_start`` come from there)."""

    def _init_state(self) -> None:
        # the default model, a new OnlineLogisticRegression at each read of template_: a classifier,
        # used as it is (scikit-learn's clone and tags cost more than the first batches)
        self.is_classifier_ = self.estimator is None or is_classifier(self.estimator)
        self.estimator_ = self.template_ if self.estimator is None else clone(self.estimator)
        self.features_ = make_features(self.preprocess)
        scaler = None if self.features_ is None else self.features_.scaler
        # one set of running moments: the scaler's, else the learner's own (statistics=True)
        self.moments_ = scaler.moments_ if scaler is not None else RunningMoments() if self.statistics else None
        self.background_: Any = None
        self.detector_ = make_detector(self.drift_detector)
        if self.detector_ is not None and not self.is_classifier_:
            raise SchemaError("drift detectors watch a classification error: use a classifier or drift_detector=None")
        self.classes_ = None if self.classes is None else np.asarray(self.classes)
        self._label_range: tuple[Any, int | None, int | None] = (None, None, None)  # see _known_labels
        self.n_features_in_: int | None = None
        self.n_batches_ = self.n_rows_ = self.n_scored_ = self.n_trained_ = self.n_skipped_ = 0
        self.loss_sum_ = 0.0  # errors (classifier) or squared / absolute error sum (regressor)
        self.window_: collections.deque = collections.deque(maxlen=self.window)
        self.recent_: collections.deque = collections.deque(maxlen=self.recent)
        self.pending_: collections.deque = collections.deque()
        self.history_ = []
        self.events_: list[dict[str, Any]] = []
        self.skipped_: list[dict[str, Any]] = []
        self.position_: Any = None
        self._stop = False

    # ------------------------------------------------------------------ validation
    def _problem(self, X: Any, y: Any) -> tuple[str | None, np.ndarray, np.ndarray]:
        try:
            X = np.asarray(X)
        except Exception as exc:  # noqa: BLE001 - ragged input etc.
            return f"X is not an array ({exc})", X, y
        if X.ndim != 2 or X.shape[0] == 0:
            return f"X must be a non-empty 2-D array, got shape {X.shape}", X, y
        if X.dtype.kind not in "biufc":
            return f"X has dtype {X.dtype}: features must be numeric", X, y
        if self.n_features_in_ is not None and X.shape[1] != self.n_features_in_:
            return f"X has {X.shape[1]} features, the model was trained on {self.n_features_in_}", X, y
        # a finite sum means every value is finite (NaN and inf propagate); else look at each value
        with np.errstate(over="ignore", invalid="ignore"):  # an inf or an overflowing sum is looked at below
            finite_sum = X.dtype.kind == "f" and math.isfinite(_sum(X, None))
        if not finite_sum and not np.isfinite(X).all():
            return "X has NaN or infinite values", X, y
        if y is None:
            return "the batch has no labels", X, y
        y = np.asarray(y)
        if y.shape != (X.shape[0],):
            return f"y has shape {y.shape} for {X.shape[0]} rows", X, y
        if self.is_classifier_ and self.classes_ is not None and not self._known_labels(y):
            if self._grows_classes():
                self.classes_ = np.union1d(self.classes_, y)  # a label never seen: a new class
                return None, X, y
            unseen = np.setdiff1d(np.unique(y), self.classes_)
            return f"labels {unseen.tolist()[:5]} were never seen (known classes {self.classes_.tolist()})", X, y
        return None, X, y

    def _grows_classes(self) -> bool:
        """Labels not known are new classes: classes not given, and a model that learns new ones."""
        return self.classes is None and isinstance(self.estimator_, OnlineLogisticRegression)

    def _known_labels(self, y: np.ndarray) -> bool:
        """True if every label of ``y`` is one of ``classes_``."""
        c = self.classes_
        if y.dtype.kind in "iu" and y.size:
            if self._label_range[0] is not c:  # classes_ set or replaced since: look at them again
                consecutive = (c.dtype.kind in "iu" and c.size > 0
                               and int(c.max()) - int(c.min()) + 1 == c.size == np.unique(c).size)
                self._label_range = (c, int(c.min()), int(c.max())) if consecutive else (c, None, None)
            _, lo, hi = self._label_range
            if lo == 0 and y.dtype.isnative:
                # classes 0..k-1, the most common: as unsigned, a negative label is above any k,
                # so one maximum checks both bounds
                u = y.view(_UNSIGNED[y.itemsize])
                # a micro-batch's few labels: Python's max beats the call of a NumPy reduction
                return (max(u.tolist()) if u.size <= 64 else int(_max(u, None))) <= hi
            if lo is not None:
                # integer classes lo..hi: two bounds, no sort or hash of y
                return lo <= int(y.min()) and int(y.max()) <= hi
        return bool(np.isin(y, c).all())

    def _skip(self, reason: str, position: Any, where: str) -> None:
        if self.on_bad_batch == "raise":
            raise SchemaError(f"bad batch {where or ''} (position {position}): {reason}")
        self.n_skipped_ += 1
        self.skipped_.append({"position": position, "where": where, "reason": reason})
        log.warning("skipped batch %s (position %s): %s", where, position, reason)


    def _take(self, X: Any, y: Any, position: Any, where: str, arrived: float | None, lag_rows: int | None,
              categories: Any) -> bool:
        """:meth:`learn_batch` without building its record: True if a batch was learned."""
        self._start()
        arrived = time.perf_counter() if arrived is None else arrived
        problem, X, y = self._problem(X, y)
        self.position_ = position if position is not None else self.position_
        if problem is None and self.features_ is not None and len(self.features_.onehot):
            ok = categories is not None and np.shape(categories) == (X.shape[0], len(self.features_.onehot))
            problem = None if ok else (f"the batch needs categories of shape ({X.shape[0]}, "
                                       f"{len(self.features_.onehot)}) for the one-hot steps")
        if problem is not None:
            self._skip(problem, position, where)
            return False
        if self.n_features_in_ is None:
            self.n_features_in_ = int(X.shape[1])
        if self.is_classifier_ and self.classes_ is None:
            self.classes_ = np.unique(y)
        return self._learn(X, y, position, where, arrived, categories, lag_rows)

    def _learn(self, X: np.ndarray, y: np.ndarray, position: Any, where: str, arrived: float, categories: Any,
               lag_rows: int | None) -> bool:
        """Predict, score and learn a checked batch; True if a batch was learned (and recorded)."""
        if self._quiet is contextlib.nullcontext:  # the default model: no scikit-learn checks to turn off
            return self._test_then_train(X, y, position, where, arrived, categories, lag_rows)
        with self._quiet():
            return self._test_then_train(X, y, position, where, arrived, categories, lag_rows)

    def _test_then_train(self, X: np.ndarray, y: np.ndarray, position: Any, where: str, arrived: float,
                         categories: Any, lag_rows: int | None) -> bool:
        """:meth:`_learn` inside the model's context."""
        model = self.estimator_
        if not self.label_delay and self.n_trained_ and hasattr(model, "predict_then_learn"):
            # the model predicts each row after the rows before it in the batch (first order)
            # and learns the batch in the same step: see OnlineLogisticRegression
            f = self.features_
            Xp, Xt = (X, self._learn_features(X, categories)) if f is None else f.transform_learn(X, categories)
            # labels the learner checked against classes_, which the model's classes_ equal when as many
            known = self.classes_ is not None and model.classes_.size == self.classes_.size
            y_pred = model.predict_then_learn(Xp, Xt, y, labels_known=known)
            self._score_and_train(X, y, y_pred, position, where, arrived, categories, lag_rows, Xt)
            return True
        y_pred = self._predict(X, categories) if self.n_trained_ else None
        self.pending_.append((X, y, y_pred, position, where, arrived, categories, lag_rows))
        learned = False
        while len(self.pending_) > self.label_delay:
            self._score_and_train(*self.pending_.popleft())
            learned = True
        return learned


    def _predict(self, X: np.ndarray, categories: Any) -> np.ndarray:
        Xt = X if self.features_ is None else self.features_.transform(X, categories)
        y_pred = linear_predict(self.estimator_, Xt)
        return self.estimator_.predict(Xt) if y_pred is None else y_pred


    def _learn_features(self, X: np.ndarray, categories: Any) -> np.ndarray:
        """The features (or the statistics) learn the batch; the batch as the updated features give it."""
        if self.features_ is not None:
            return self.features_.partial_fit(X, categories).transform(X, categories)
        if self.moments_ is not None:
            self.moments_.update(np.asarray(X, dtype=np.float64))
        return X

    def _score_and_train(self, X: np.ndarray, y: np.ndarray, y_pred: Any, position: Any, where: str,
                         arrived: float, categories: Any = None, lag_rows: int | None = None,
                         learned: np.ndarray | None = None) -> None:
        """Score the predictions, watch for drift, learn the batch, record it.

        ``learned``: the batch as the model has already learned it (``predict_then_learn``);
        then only a drift reaction trains here.
        """
        n = X.shape[0]
        event, loss, rolling, cumulative = None, None, None, None
        if y_pred is not None:
            wrong = None
            if self.is_classifier_:
                wrong = y_pred != y
                loss = int(np.count_nonzero(wrong))
            else:
                diff = np.asarray(y_pred, float) - np.asarray(y, float)
                loss = float((diff**2).sum() if self._metric == "mse" else np.abs(diff).sum())
            self.loss_sum_ += loss
            self.n_scored_ += n
            self._window_add(n, loss)
            rolling, cumulative = self._win[1] / self._win[0], self.loss_sum_ / self.n_scored_
            if self.detector_ is not None:
                event = (self.detector_.update(loss, n, errors=wrong) if self.detector_.takes_errors
                         else self.detector_.update(loss, n))
        Xt = self._learn_features(X, categories) if learned is None else learned
        self._train(Xt, y, event, where or f"batch {self.n_batches_} (rows {self.n_rows_}-{self.n_rows_ + n})",
                    learned is not None)
        self.recent_.append((Xt, y))
        batch = self.n_batches_
        self.n_batches_ += 1
        self.n_rows_ += n
        now = time.perf_counter()
        row = (batch, position, n, loss, rolling, cumulative, now - arrived, n if lag_rows is None else int(lag_rows),
               event == "drift")
        self._rows.append(row)
        if event == "drift":
            self.events_.append({"batch": batch, "position": position, "where": where, "rows_seen": self.n_rows_,
                                 "detector": self.detector_.name, "reaction": self.reaction})
            log.info("drift detected at %s (batch %d): %s", where, batch, self.reaction)
        if self.publish and (event == "drift" or now >= self._pub_next):
            pub = self._publisher()
            # without a client the publisher never publishes (it looks for one once): no more look here
            self._pub_next = now + pub.min_interval if pub.client is not None else math.inf
            if pub.client is not None:
                rec = self._record(row)
                del rec["position"]
                pub.publish(force=event == "drift", **rec)

    @property
    def _metric(self) -> str:
        return "mae" if "mae" in self.metrics and "mse" not in self.metrics else "mse"

    def _record(self, row: tuple) -> dict[str, Any]:
        """A batch's record (a dict) from its compact row (a checkpoint's record: itself)."""
        if isinstance(row, dict):
            return row
        batch, position, n, loss, rolling, cumulative, latency, lag, drift = row
        rec: dict[str, Any] = {"batch": batch, "position": position, "rows": n}
        if loss is not None:
            if self.is_classifier_:
                rec.update(accuracy=1 - loss / n, rolling_accuracy=1 - rolling, cumulative_accuracy=1 - cumulative)
            else:
                name = self._metric
                rec.update({name: loss / n, f"rolling_{name}": rolling, f"cumulative_{name}": cumulative})
        rec.update(latency_s=latency, lag_rows=lag, drift=drift)
        return rec

    def _window_add(self, n: int, loss: float) -> None:
        w, sums = self.window_, self._win
        if not w.maxlen:
            return
        if len(w) == w.maxlen:
            gone_n, gone_loss = w[0]
            sums[0] -= gone_n
            sums[1] -= gone_loss
        w.append((n, loss))
        sums[0] += n
        sums[1] += loss

    def _fit(self, model: Any, X: np.ndarray, y: np.ndarray, where: str = "a batch") -> None:
        # classes go with the model's first call only: a model that knows its classes has classes_
        fitted = not self.is_classifier_ or getattr(model, "classes_", None) is not None
        Step(model, "classifier" if self.is_classifier_ else "regressor", classes=self.classes_, fitted=fitted)(
            X, y, where)

    def _train(self, X: np.ndarray, y: np.ndarray, event: str | None, where: str, learned: bool = False) -> None:
        background = self.reaction == "background" and self.detector_ is not None
        if learned and not background and (event != "drift" or self.reaction is None):
            self.n_trained_ += 1  # the model learned the batch as it predicted it: nothing to do here
            return
        fit = functools.partial(self._fit, where=where)
        if event == "drift" and self.reaction is not None:
            # the model is replaced (whether or not it learned the batch): the new one learns it
            self.estimator_, self.background_ = react(self.reaction, self.template_, self.estimator_,
                                                      self.background_, self.recent_, X, y, fit, self.recent)
        elif not learned:
            fit(self.estimator_, X, y)
        if background:
            self.background_ = follow_background(self.background_, self.template_, self.detector_, event,
                                                 self.n_batches_, self.window, X, y, fit)
        self.n_trained_ += 1

    def _publisher(self) -> Any:
        if getattr(self, "_pub", None) is None:
            from daskscale.monitor import MetricsPublisher

            self._pub = MetricsPublisher(self.run_id_)
        return self._pub
