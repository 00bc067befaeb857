"""Prequential (test-then-train) learning on a stream, with drift detection and reactions.

For each batch: predict with the current model, score against the labels, feed the batch
error to the drift detector, THEN ``partial_fit`` on the batch (Dawid 1984; Gama et al.
2013, "On evaluating stream learning algorithms"). Every row is tested before the model has
seen it, so the cumulative accuracy is an honest estimate of performance on new data.

Reactions to a detected drift (``reaction=``):

- ``"reset"``: a fresh model (clone of the template) trained from the drifting batch on;
- ``"retrain"``: a fresh model trained on the last ``recent`` batches (the batch that
  triggered the drift included), then continuing;
- ``"background"``: switch to a background model. With a detector that warns (DDM) the
  background model starts at the first warning and is dropped if the warning clears;
  with one that does not (ADWIN, Page-Hinkley) it is restarted every ``window`` batches.
  Without a background model, as ``"reset"``;
- ``None``: record the event only.

Bad batches (wrong number of features, non-numeric or non-finite values, a label outside
the known classes, no labels): with ``on_bad_batch="skip"`` (default) the batch is not
learned, and is counted in ``n_skipped_`` and listed in ``skipped_`` with its position
and the reason, and logged; with ``"raise"`` a :class:`~daskscale.errors.SchemaError`.
The known classes are ``classes=``, else the source's, else those of the first batch.

The learner follows scikit-learn's conventions: ``__init__`` stores its parameters untouched
(``get_params`` / ``set_params`` / ``clone`` work), parameters are checked and the learning
state (every attribute ending in ``_``) is created at first use: :meth:`learn_batch`,
:meth:`partial_fit`, :meth:`run`, or reading a learned attribute such as ``events_``.
"""

from __future__ import annotations

import collections
import logging
import signal
import threading
import time
import uuid
from typing import Any, Callable

import numpy as np
from sklearn import config_context
from sklearn.base import BaseEstimator, clone, is_classifier

from daskscale.errors import InputTypeError, SchemaError
from daskscale.online.drift import make_detector
from daskscale.online.linear import linear_predict as _linear_predict
from daskscale.online.sources import as_source
from daskscale.reduce import Moments, update

__all__ = ["OnlineLearner"]

log = logging.getLogger("daskscale.online")

REACTIONS = ("reset", "retrain", "background", None)

#: the streaming statistics, one reducer set for every learner (reducers hold parameters only)
STATISTICS = {"moments": Moments()}

#: the learning state made by ``_init_state`` (read before first use, it is made then)
_STATE = frozenset({
    "is_classifier_", "estimator_", "background_", "detector_", "classes_", "n_features_in_", "n_batches_",
    "n_rows_", "n_scored_", "n_trained_", "n_skipped_", "loss_sum_", "window_", "recent_", "pending_",
    "history_", "events_", "skipped_", "stats_", "position_", "run_id_"})


class OnlineLearner(BaseEstimator):
    """Test-then-train learning of ``estimator`` (any ``partial_fit`` estimator) on a stream.

    Parameters
    ----------
    estimator : estimator with ``partial_fit``
        The template; it is cloned, never modified.
    metrics : tuple of str
        ``"accuracy"`` for classifiers (batch, rolling and cumulative); ``"mse"`` / ``"mae"``
        for regressors.
    drift_detector : {"ddm", "page-hinkley", "adwin"}, DriftDetector or None
        Watches the batch error (classifiers only).
    reaction : {"reset", "retrain", "background", None}
        What to do on drift (see the module docstring).
    window : int
        Batches in the rolling metrics.
    recent : int
        Batches kept in memory (and in checkpoints) for ``reaction="retrain"``.
    label_delay : int
        Labels of a batch arrive this many batches later: the batch is predicted on
        arrival, scored and learned when its labels come.
    classes : array-like, optional
        All labels the stream may have.
    on_bad_batch : {"skip", "raise"}
    statistics : bool
        Keep streaming per-feature moments (``daskscale.reduce.Moments``) in ``stats_``.
    publish : bool
        Publish metrics to the Dask scheduler (``daskscale.monitor.MetricsPublisher``).
    run_id : str, optional
        Names the run in published metrics (``run_id_``; default a new ``stream-<hex>``).

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn.linear_model import SGDClassifier
    >>> rng = np.random.default_rng(0)
    >>> batches = [(X, (X[:, 0] > 0).astype(int)) for X in rng.normal(size=(20, 50, 3))]
    >>> ol = OnlineLearner(SGDClassifier(random_state=0), publish=False).run(batches)
    >>> ol.n_batches_, ol.n_rows_, ol.cumulative_accuracy > 0.8
    (20, 1000, True)
    """

    def __init__(self, estimator: Any, *, metrics: tuple[str, ...] = ("accuracy",), drift_detector: Any = None,
                 reaction: str | None = "reset", window: int = 20, recent: int = 5, label_delay: int = 0,
                 classes: Any = None, on_bad_batch: str = "skip", statistics: bool = True,
                 publish: bool = True, run_id: str | None = None):
        self.estimator = estimator
        self.metrics = metrics
        self.drift_detector = drift_detector
        self.reaction = reaction
        self.window = window
        self.recent = recent
        self.label_delay = label_delay
        self.classes = classes
        self.on_bad_batch = on_bad_batch
        self.statistics = statistics
        self.publish = publish
        self.run_id = run_id

    # ------------------------------------------------------------------ state
    def __getattr__(self, name: str) -> Any:
        # learned attributes read before the first batch (a caller showing events_ or n_rows_):
        # make the state now, as the first batch would
        if name in _STATE and "_started" not in self.__dict__:
            self._start()
            return getattr(self, name)
        raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")

    def _start(self) -> None:
        """Check the parameters and make the learning state, once (a loaded learner has its state)."""
        if "_started" in self.__dict__:
            return
        if not hasattr(self.estimator, "partial_fit"):
            raise InputTypeError(f"{type(self.estimator).__name__} has no partial_fit: online learning needs one "
                                 "(e.g. SGDClassifier, Perceptron, MultinomialNB)")
        if self.reaction not in REACTIONS:
            raise SchemaError(f"reaction must be one of {REACTIONS}, not {self.reaction!r}")
        if self.on_bad_batch not in ("skip", "raise"):
            raise SchemaError(f"on_bad_batch must be 'skip' or 'raise', not {self.on_bad_batch!r}")
        self._started = True
        if "estimator_" not in self.__dict__:
            self._init_state()
        self.is_classifier_ = is_classifier(self.estimator)
        self.__dict__.setdefault("run_id_", self.run_id or f"stream-{uuid.uuid4().hex[:8]}")
        self.__dict__.setdefault("_label_range", (None, None, None))  # see _known_labels
        self.__dict__.setdefault("_stop", False)

    def _init_state(self) -> None:
        self.is_classifier_ = is_classifier(self.estimator)
        self.estimator_ = clone(self.estimator)
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
        self.history_: list[dict[str, Any]] = []
        self.events_: list[dict[str, Any]] = []
        self.skipped_: list[dict[str, Any]] = []
        self.stats_: dict[str, Any] | None = None
        self.position_: Any = None
        self._stop = False

    @property
    def cumulative_accuracy(self) -> float:
        """Prequential accuracy over every scored row so far (classifiers)."""
        self._start()
        return 1.0 - self.loss_sum_ / self.n_scored_ if self.n_scored_ else float("nan")

    @property
    def rolling_accuracy(self) -> float:
        """Prequential accuracy over the last ``window`` batches (classifiers)."""
        self._start()
        n = sum(w[0] for w in self.window_)
        return 1.0 - sum(w[1] for w in self.window_) / n if n else float("nan")

    def feature_statistics(self) -> dict[str, np.ndarray]:
        """Count, mean, var and std of every feature over the rows learned so far."""
        if self.stats_ is None:
            return {}
        return STATISTICS["moments"].finalize(self.stats_["moments"])

    # ------------------------------------------------------------------ validation
    def _problem(self, X: Any, y: Any) -> tuple[str | None, np.ndarray, np.ndarray]:
        try:
            X = np.asarray(X)
        except Exception as exc:  # noqa: BLE001 - ragged input etc.
            return f"X is not an array ({exc})", X, y
        if X.ndim != 2 or X.shape[0] == 0:
            return f"X must be a non-empty 2-D array, got shape {X.shape}", X, y
        if not (np.issubdtype(X.dtype, np.number) or X.dtype == bool):
            return f"X has dtype {X.dtype}: features must be numeric", X, y
        if self.n_features_in_ is not None and X.shape[1] != self.n_features_in_:
            return f"X has {X.shape[1]} features, the model was trained on {self.n_features_in_}", X, y
        if not np.isfinite(X).all():
            return "X has NaN or infinite values", X, y
        if y is None:
            return "the batch has no labels", X, y
        y = np.asarray(y)
        if y.shape != (X.shape[0],):
            return f"y has shape {y.shape} for {X.shape[0]} rows", X, y
        if self.is_classifier_ and self.classes_ is not None and not self._known_labels(y):
            unseen = np.setdiff1d(np.unique(y), self.classes_)
            return f"labels {unseen.tolist()[:5]} were never seen (known classes {self.classes_.tolist()})", X, y
        return None, X, y

    def _known_labels(self, y: np.ndarray) -> bool:
        """True if every label of ``y`` is one of ``classes_``."""
        c = self.classes_
        if y.dtype.kind in "iu" and y.size:
            if self._label_range[0] is not c:  # classes_ set or replaced since: look at them again
                consecutive = (c.dtype.kind in "iu" and c.size > 0
                               and int(c.max()) - int(c.min()) + 1 == c.size == np.unique(c).size)
                self._label_range = (c, int(c.min()), int(c.max())) if consecutive else (c, None, None)
            _, lo, hi = self._label_range
            if lo is not None:
                # integer classes lo..hi (0..k-1 most often): two bounds, no sort or hash of y
                return lo <= int(y.min()) and int(y.max()) <= hi
        return bool(np.isin(y, c).all())

    def _skip(self, reason: str, position: Any, where: str) -> None:
        if self.on_bad_batch == "raise":
            raise SchemaError(f"bad batch {where or ''} (position {position}): {reason}")
        self.n_skipped_ += 1
        self.skipped_.append({"position": position, "where": where, "reason": reason})
        log.warning("skipped batch %s (position %s): %s", where, position, reason)

    # ------------------------------------------------------------------ learning
    def learn_batch(self, X: Any, y: Any, *, position: Any = None, where: str = "",
                    arrived: float | None = None) -> dict[str, Any] | None:
        """Test on ``(X, y)``, then train on it; return the batch's record (None if skipped)."""
        self._start()
        arrived = time.perf_counter() if arrived is None else arrived
        problem, X, y = self._problem(X, y)
        self.position_ = position if position is not None else self.position_
        if problem is not None:
            self._skip(problem, position, where)
            return None
        if self.n_features_in_ is None:
            self.n_features_in_ = int(X.shape[1])
        if self.is_classifier_ and self.classes_ is None:
            self.classes_ = np.unique(y)
        # the batch was validated above, once: spare scikit-learn its per-call checks
        with config_context(assume_finite=True, skip_parameter_validation=True):
            y_pred = None
            if self.n_trained_:
                y_pred = _linear_predict(self.estimator_, X)
                if y_pred is None:
                    y_pred = self.estimator_.predict(X)
            self.pending_.append((X, y, y_pred, position, where, arrived))
            record = None
            while len(self.pending_) > self.label_delay:
                record = self._score_and_train(*self.pending_.popleft())
        return record

    def partial_fit(self, X: Any, y: Any) -> "OnlineLearner":
        """:meth:`learn_batch` as scikit-learn spells it: test on the batch, train on it, return ``self``."""
        self.learn_batch(X, y)
        return self

    def predict(self, X: Any) -> np.ndarray:
        """Predictions of the current model (after at least one batch learned)."""
        from daskscale.learn.prep import NotFitted

        if not self.__dict__.get("n_trained_"):
            raise NotFitted(f"this {type(self).__name__} has learned no batch yet: call learn_batch, partial_fit "
                            "or run first")
        return self.estimator_.predict(np.asarray(X))

    def _score_and_train(self, X: np.ndarray, y: np.ndarray, y_pred: Any, position: Any, where: str,
                         arrived: float) -> dict[str, Any]:
        n = int(X.shape[0])
        rec: dict[str, Any] = {"batch": self.n_batches_, "position": position, "rows": n}
        event = None
        if y_pred is not None:
            if self.is_classifier_:
                loss = float(np.count_nonzero(y_pred != y))
            else:
                diff = np.asarray(y_pred, float) - np.asarray(y, float)
                loss = float((diff**2).sum() if "mse" in self.metrics or "mae" not in self.metrics
                             else np.abs(diff).sum())
            self.loss_sum_ += loss
            self.n_scored_ += n
            self.window_.append((n, loss))
            rec.update(self._metric_record(loss, n))
            if self.detector_ is not None:
                event = self.detector_.update(loss, n)
        self._train(X, y, event)
        self.recent_.append((X, y))
        if self.statistics:
            self.stats_ = update(STATISTICS, self.stats_, X)
        self.n_batches_ += 1
        self.n_rows_ += n
        rec["latency_s"] = time.perf_counter() - arrived
        rec["drift"] = event == "drift"
        if event == "drift":
            ev = {"batch": rec["batch"], "position": position, "where": where, "rows_seen": self.n_rows_,
                  "detector": self.detector_.name, "reaction": self.reaction}
            self.events_.append(ev)
            log.info("drift detected at %s (batch %d): %s", where, rec["batch"], self.reaction)
        self.history_.append(rec)
        if self.publish:
            self._publisher().publish(force=event == "drift", **{k: v for k, v in rec.items() if k != "position"})
        return rec

    def _metric_record(self, loss: float, n: int) -> dict[str, float]:
        if self.is_classifier_:
            return {"accuracy": 1 - loss / n, "rolling_accuracy": self.rolling_accuracy,
                    "cumulative_accuracy": self.cumulative_accuracy}
        name = "mae" if "mae" in self.metrics and "mse" not in self.metrics else "mse"
        rolling = sum(w[1] for w in self.window_) / max(1, sum(w[0] for w in self.window_))
        return {name: loss / n, f"rolling_{name}": rolling, f"cumulative_{name}": self.loss_sum_ / self.n_scored_}

    def _fit(self, model: Any, X: np.ndarray, y: np.ndarray) -> None:
        if self.is_classifier_:
            # scikit-learn needs ``classes`` on the first call only, and re-checks it on every
            # call it is given: once the model knows its classes, leave it out
            first = getattr(model, "classes_", None) is None
            model.partial_fit(X, y, classes=self.classes_ if first else None)
        else:
            model.partial_fit(X, y)

    def _train(self, X: np.ndarray, y: np.ndarray, event: str | None) -> None:
        if event == "drift" and self.reaction is not None:
            self._react(X, y)
        else:
            self._fit(self.estimator_, X, y)
        if self.reaction == "background" and self.detector_ is not None:
            self._background(X, y, event)
        self.n_trained_ += 1

    def _react(self, X: np.ndarray, y: np.ndarray) -> None:
        if self.reaction == "background" and self.background_ is not None:
            self.estimator_, self.background_ = self.background_, None
            self._fit(self.estimator_, X, y)
            return
        self.estimator_ = clone(self.estimator)
        batches = list(self.recent_) + [(X, y)] if self.reaction == "retrain" else [(X, y)]
        for Xb, yb in batches[-max(1, self.recent):]:
            self._fit(self.estimator_, Xb, yb)

    def _background(self, X: np.ndarray, y: np.ndarray, event: str | None) -> None:
        if self.detector_.has_warning:
            if event == "warning" and self.background_ is None:
                self.background_ = clone(self.estimator)
            elif event is None:
                self.background_ = None
        elif self.background_ is None or self.n_batches_ % max(1, self.window) == 0:
            self.background_ = clone(self.estimator)
        if self.background_ is not None and event != "drift":
            self._fit(self.background_, X, y)

    def _publisher(self) -> Any:
        if getattr(self, "_pub", None) is None:
            from daskscale.monitor import MetricsPublisher

            self._pub = MetricsPublisher(self.run_id_)
        return self._pub

    # ------------------------------------------------------------------ driving a source
    def run(self, source: Any, *, checkpoint: Any = None, checkpoint_every: int = 1, max_batches: int | None = None,
            callback: Callable[[dict[str, Any]], None] | None = None, **source_kwargs: Any) -> "OnlineLearner":
        """Learn from ``source`` (a store, folder, iterable or source) until it ends.

        With ``checkpoint`` (a file path) the learner, its metrics and the source position
        are saved together every ``checkpoint_every`` batches and at the end; Ctrl-C
        (SIGINT) stops after the current batch with a checkpoint. A learner loaded with
        :meth:`load` resumes at its saved position: each batch is learned exactly once.
        """
        self._start()
        src = as_source(source, **source_kwargs)
        if self.position_ is not None:
            src.seek(self.position_)
        if self.classes_ is None and getattr(src, "classes", None):
            self.classes_ = np.asarray(src.classes)
        self._stop, seen_skips, done = False, len(src.skipped), 0
        src.stopped, self._src = False, src
        previous = self._install_sigint(src)
        try:
            for batch in src:
                rec = self.learn_batch(batch.X, batch.y, position=batch.position, where=batch.where,
                                       arrived=batch.arrived)
                seen_skips = self._source_skips(src, seen_skips)
                done += 1
                if checkpoint is not None and done % max(1, checkpoint_every) == 0:
                    self.save(checkpoint)
                if callback is not None and rec is not None:
                    callback(rec)
                if self._stop or (max_batches is not None and done >= max_batches):
                    break
            else:
                self.position_ = src.position
                self._source_skips(src, seen_skips)
        finally:
            if previous is not None:
                signal.signal(signal.SIGINT, previous)
        if checkpoint is not None:
            self.save(checkpoint)
        return self

    def _source_skips(self, src: Any, seen: int) -> int:
        for s in src.skipped[seen:]:
            self.n_skipped_ += 1
            self.skipped_.append(dict(s, position=None))
        return len(src.skipped)

    def _install_sigint(self, src: Any) -> Any:
        if threading.current_thread() is not threading.main_thread():
            return None

        def stop(signum: int, frame: Any) -> None:
            self._stop = src.stopped = True  # finish the batch in hand, checkpoint, then return

        return signal.signal(signal.SIGINT, stop)

    def stop(self) -> None:
        """Ask :meth:`run` to stop after the current batch (with a checkpoint)."""
        self._stop = True
        if getattr(self, "_src", None) is not None:
            self._src.stopped = True

    @property
    def stopped(self) -> bool:
        """True if the last :meth:`run` was stopped (Ctrl-C or :meth:`stop`) before the source ended."""
        return bool(self.__dict__.get("_stop", False))

    # ------------------------------------------------------------------ checkpoints and reports
    def save(self, path: Any) -> Any:
        """Save model, metrics, detector and source position together, atomically."""
        from daskscale.online.checkpoint import save_learner

        return save_learner(self, path)

    @classmethod
    def load(cls, path: Any) -> "OnlineLearner":
        """A learner restored from :meth:`save`; :meth:`run` continues where it stopped."""
        from daskscale.online.checkpoint import load_learner

        return load_learner(cls, path)

    def summary(self) -> dict[str, Any]:
        """Counts, cumulative and rolling metrics, drift events and skips so far."""
        self._start()
        lat = np.array([h["latency_s"] for h in self.history_]) if self.history_ else np.array([np.nan])
        out = {"batches": self.n_batches_, "rows": self.n_rows_, "scored_rows": self.n_scored_,
               "skipped_batches": self.n_skipped_, "drift_events": len(self.events_),
               "latency_p50_s": float(np.percentile(lat, 50)), "latency_p95_s": float(np.percentile(lat, 95))}
        if self.is_classifier_:
            out.update(cumulative_accuracy=self.cumulative_accuracy, rolling_accuracy=self.rolling_accuracy)
        return out

    def history(self) -> Any:
        """The per-batch records as a pandas DataFrame."""
        import pandas as pd

        return pd.DataFrame(self.history_)

    def _repr_html_(self) -> str:
        rows = "".join(f"<tr><th style='text-align:left'>{k}</th><td>{v:.4g}</td></tr>" if isinstance(v, float)
                       else f"<tr><th style='text-align:left'>{k}</th><td>{v}</td></tr>"
                       for k, v in self.summary().items())
        return f"<table><caption>OnlineLearner({type(self.estimator).__name__})</caption>{rows}</table>"

    def __repr__(self, N_CHAR_MAX: int = 700) -> str:
        params = super().__repr__(N_CHAR_MAX)
        if "_started" not in self.__dict__:
            return params
        return f"{params} [batches={self.n_batches_}, rows={self.n_rows_}]"
