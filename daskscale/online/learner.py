"""Prequential (test-then-train) learning on a stream, with drift detection and reactions.

For each batch: predict with the current model, score against the labels, feed the batch
error to the drift detector, THEN ``partial_fit`` on the batch (Dawid 1984; Gama et al.
2013, "On evaluating stream learning algorithms"). Every row is tested before the model has
seen it, so the cumulative accuracy is an honest estimate of performance on new data.

Drift reactions (``reaction=``: ``"reset"``, ``"retrain"``, ``"background"`` or ``None``) are
in :mod:`daskscale.online.reactions`; the detectors (River's) in :mod:`daskscale.online.drift`.
DDM is fed the batch's per-row error bits.

Online preprocessing (``preprocess=``, default ``"standard"``): each batch is predicted with
the features as they were before it (a running standard scaler by default, see
:mod:`daskscale.online.preprocess`), then the features learn the batch and the model learns
it transformed with them, as River's ``StandardScaler() | LogisticRegression()`` does; the
scaler is checkpointed with the model. The default model is
:class:`~daskscale.online.linear.OnlineLogisticRegression` (River's logistic regression).

Events (dicts, Kafka-style records, rows) are learned in micro-batches: an iterable of them
given to :meth:`OnlineLearner.run` goes through :class:`~daskscale.online.events.EventSource`;
:meth:`OnlineLearner.stream` returns an :class:`~daskscale.online.events.EventStream` to push
them from any thread. Each batch's record has ``latency_s`` (oldest row's arrival to learned)
and ``lag_rows`` (rows received but not learned when it was predicted); :meth:`summary` gives
their row-weighted percentiles and maximum.

Throughput and latency against micro-batch size (``max_batch``), one-row dict events replayed
as fast as they are learned, ``benchmarks/bench_online.py::OnlineRealStreams`` on weather_rain
(18,159 rows, 8 features), daskscale and River interleaved in one process on a machine
heavily loaded by other jobs (so only the ratios mean anything; re-measure on a quiet
machine with the command in that benchmark's docstring):

=====================  ===========  =================  ===========  ====================
input                  max_batch    rows/s vs River    p95 latency  accuracy (River 75.02)
=====================  ===========  =================  ===========  ====================
one-row dicts          1            0.2x               0.3 ms       75.02
one-row dicts          4            0.5x               0.4 ms       74.92
one-row dicts          8            1.1x               4.4 ms       74.84
one-row dicts          16 (default) 2.1x               4.4 ms       74.68
one-row dicts          32           3.7x               4.4 ms       74.43
one-row dicts          64           5.2x               8.5 ms       74.07
10-row arrays          16           3.8x               6.6 ms       74.61
100-row arrays         100          11.2x              8.5 ms       73.98
10,000-row arrays      10,000       39.8x              34 ms        (first 10,000 unscored)
=====================  ===========  =================  ===========  ====================

The goal of issue 20 (one-row input at >= 5x River within 0.5 point) is not met: what a
micro-batch costs (about 25 NumPy calls and the per-event dict handling) needs about 64 rows
to reach 5x, and predicting 64 rows behind the stream costs weather_rain 0.95 point.
Accuracy is River's exactly at ``max_batch=1`` (the model is River's, row for row).

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
import contextlib
import functools
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
from daskscale.online.evaluate import make_features
from daskscale.online.events import DEFAULT_MAX_BATCH, EventStream
from daskscale.online.linear import OnlineLogisticRegression
from daskscale.online.linear import linear_predict as _linear_predict
from daskscale.online.metrics import weighted_percentile
from daskscale.online.preprocess import RunningMoments
from daskscale.online.reactions import REACTIONS, follow_background, react
from daskscale.online.sources import as_source
from daskscale.reduce import Moments

__all__ = ["OnlineLearner"]

log = logging.getLogger("daskscale.online")

#: reads the running moments of ``stats_`` (state ``(count, mean, M2)``)
_MOMENTS = Moments()

#: the learning state made by ``_init_state`` (read before first use, it is made then)
_STATE = frozenset({
    "is_classifier_", "estimator_", "background_", "detector_", "classes_", "n_features_in_", "n_batches_",
    "n_rows_", "n_scored_", "n_trained_", "n_skipped_", "loss_sum_", "window_", "recent_", "pending_",
    "history_", "events_", "skipped_", "moments_", "features_", "position_", "run_id_"})


class OnlineLearner(BaseEstimator):
    """Test-then-train learning of ``estimator`` (any ``partial_fit`` estimator) on a stream.

    Parameters
    ----------
    estimator : estimator with ``partial_fit``, optional
        The template; it is cloned, never modified. Default
        :class:`~daskscale.online.linear.OnlineLogisticRegression` (River's logistic regression).
    preprocess : None, "standard" or Features
        Online preprocessing before the model (see the module notes); ``None`` gives the model
        the batches as they come. With a River pipeline that scales itself, use ``None``.
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
        Keep streaming per-feature moments of the raw rows in ``stats_`` (the scaler's own
        when ``preprocess`` scales: kept once).
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
    >>> events = [{"a": float(a), "b": 1e3 * float(b), "y": int(a + b > 0)} for a, b in rng.normal(size=(3000, 2))]
    >>> s = OnlineLearner(publish=False).run(events, max_batch=16).summary()
    >>> s["rows"], s["max_lag_rows"], s["cumulative_accuracy"] > 0.9
    (3000, 16, True)
    """

    def __init__(self, estimator: Any = None, *, preprocess: Any = "standard", metrics: tuple[str, ...] = ("accuracy",),
                 drift_detector: Any = None, reaction: str | None = "reset", window: int = 20, recent: int = 5,
                 label_delay: int = 0, classes: Any = None, on_bad_batch: str = "skip", statistics: bool = True,
                 publish: bool = True, run_id: str | None = None):
        self.estimator = estimator
        self.preprocess = preprocess
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
        if self.estimator is not None and not hasattr(self.estimator, "partial_fit"):
            raise InputTypeError(f"{type(self.estimator).__name__} has no partial_fit: online learning needs one "
                                 "(e.g. SGDClassifier, Perceptron, MultinomialNB)")
        if self.reaction not in REACTIONS:
            raise SchemaError(f"reaction must be one of {REACTIONS}, not {self.reaction!r}")
        if self.on_bad_batch not in ("skip", "raise"):
            raise SchemaError(f"on_bad_batch must be 'skip' or 'raise', not {self.on_bad_batch!r}")
        self._started = True
        if "estimator_" not in self.__dict__:
            self._init_state()
        self.is_classifier_ = is_classifier(self.template_)
        # the rolling window's sums, kept as batches come and go (not summed again per batch)
        self._win = [sum(w[0] for w in self.window_), sum(w[1] for w in self.window_)]
        # scikit-learn estimators get batches checked here: spare them their own per-call checks
        self._quiet = (contextlib.nullcontext if isinstance(self.estimator_, OnlineLogisticRegression)
                       else functools.partial(config_context, assume_finite=True, skip_parameter_validation=True))
        self.__dict__.setdefault("run_id_", self.run_id or f"stream-{uuid.uuid4().hex[:8]}")
        self.__dict__.setdefault("_label_range", (None, None, None))  # see _known_labels
        self.__dict__.setdefault("_stop", False)

    @property
    def template_(self) -> Any:
        """The estimator cloned for every new model (``estimator``, or the default)."""
        return OnlineLogisticRegression() if self.estimator is None else self.estimator

    def _init_state(self) -> None:
        self.is_classifier_ = is_classifier(self.template_)
        self.estimator_ = clone(self.template_)
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
        self.history_: list[dict[str, Any]] = []
        self.events_: list[dict[str, Any]] = []
        self.skipped_: list[dict[str, Any]] = []
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
        n, loss = self._win
        return 1.0 - loss / n if n else float("nan")

    @property
    def stats_(self) -> dict[str, Any] | None:
        """``{"moments": (count, mean, M2)}`` per raw feature (``daskscale.reduce.Moments`` state), or None."""
        self._start()
        m = self.moments_
        return None if m is None or m.mean is None or not self.statistics else {"moments": m.state()}

    def feature_statistics(self) -> dict[str, np.ndarray]:
        """Count, mean, var and std of every feature over the rows learned so far."""
        st = self.stats_
        return {} if st is None else _MOMENTS.finalize(st["moments"])

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
        if not np.isfinite(X).all():
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
    def learn_batch(self, X: Any, y: Any, *, position: Any = None, where: str = "", arrived: float | None = None,
                    lag_rows: int | None = None, categories: Any = None) -> dict[str, Any] | None:
        """Test on ``(X, y)``, then train on it; return the batch's record (None if skipped).

        ``arrived``: when its oldest row arrived (``time.perf_counter``; default now);
        ``lag_rows``: rows received but not learned when it was predicted (default its rows);
        ``categories``: rows x fields for the one-hot steps of ``preprocess``.
        """
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
            return None
        if self.n_features_in_ is None:
            self.n_features_in_ = int(X.shape[1])
        if self.is_classifier_ and self.classes_ is None:
            self.classes_ = np.unique(y)
        with self._quiet():
            y_pred = None
            if self.n_trained_:
                y_pred = self._predict(X, categories)
            self.pending_.append((X, y, y_pred, position, where, arrived, categories, lag_rows))
            record = None
            while len(self.pending_) > self.label_delay:
                record = self._score_and_train(*self.pending_.popleft())
        return record

    def partial_fit(self, X: Any, y: Any) -> "OnlineLearner":
        """:meth:`learn_batch` as scikit-learn spells it: test on the batch, train on it, return ``self``."""
        self.learn_batch(X, y)
        return self

    def _predict(self, X: np.ndarray, categories: Any) -> np.ndarray:
        Xt = X if self.features_ is None else self.features_.transform(X, categories)
        y_pred = _linear_predict(self.estimator_, Xt)
        return self.estimator_.predict(Xt) if y_pred is None else y_pred

    def predict(self, X: Any, categories: Any = None) -> np.ndarray:
        """Predictions of the current model, through the current features (after a batch learned)."""
        from daskscale.learn.prep import NotFitted

        if not self.__dict__.get("n_trained_"):
            raise NotFitted(f"this {type(self).__name__} has learned no batch yet: call learn_batch, partial_fit "
                            "or run first")
        return self._predict(np.asarray(X), categories)

    def _score_and_train(self, X: np.ndarray, y: np.ndarray, y_pred: Any, position: Any, where: str,
                         arrived: float, categories: Any = None, lag_rows: int | None = None) -> dict[str, Any]:
        n = int(X.shape[0])
        rec: dict[str, Any] = {"batch": self.n_batches_, "position": position, "rows": n}
        event = None
        if y_pred is not None:
            wrong = None
            if self.is_classifier_:
                wrong = y_pred != y
                loss = float(np.count_nonzero(wrong))
            else:
                diff = np.asarray(y_pred, float) - np.asarray(y, float)
                loss = float((diff**2).sum() if "mse" in self.metrics or "mae" not in self.metrics
                             else np.abs(diff).sum())
            self.loss_sum_ += loss
            self.n_scored_ += n
            self._window_add(n, loss)
            rec.update(self._metric_record(loss, n))
            if self.detector_ is not None:
                event = (self.detector_.update(loss, n, errors=wrong) if self.detector_.takes_errors
                         else self.detector_.update(loss, n))
        if self.features_ is not None:
            # the features learn the batch first; the model learns it as they now transform it
            Xt = self.features_.partial_fit(X, categories).transform(X, categories)
        else:
            Xt = X
            if self.moments_ is not None:
                self.moments_.update(np.asarray(X, dtype=np.float64))
        self._train(Xt, y, event)
        self.recent_.append((Xt, y))
        self.n_batches_ += 1
        self.n_rows_ += n
        rec["latency_s"] = time.perf_counter() - arrived
        rec["lag_rows"] = n if lag_rows is None else int(lag_rows)
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

    def _window_add(self, n: int, loss: float) -> None:
        w = self.window_
        if not w.maxlen:
            return
        if len(w) == w.maxlen:
            self._win[0] -= w[0][0]
            self._win[1] -= w[0][1]
        w.append((n, loss))
        self._win[0] += n
        self._win[1] += loss

    def _metric_record(self, loss: float, n: int) -> dict[str, float]:
        if self.is_classifier_:
            return {"accuracy": 1 - loss / n, "rolling_accuracy": self.rolling_accuracy,
                    "cumulative_accuracy": self.cumulative_accuracy}
        name = "mae" if "mae" in self.metrics and "mse" not in self.metrics else "mse"
        rolling = self._win[1] / max(1, self._win[0])
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
            self.estimator_, self.background_ = react(self.reaction, self.template_, self.estimator_,
                                                      self.background_, self.recent_, X, y, self._fit, self.recent)
        else:
            self._fit(self.estimator_, X, y)
        if self.reaction == "background" and self.detector_ is not None:
            self.background_ = follow_background(self.background_, self.template_, self.detector_, event,
                                                 self.n_batches_, self.window, X, y, self._fit)
        self.n_trained_ += 1

    def _publisher(self) -> Any:
        if getattr(self, "_pub", None) is None:
            from daskscale.monitor import MetricsPublisher

            self._pub = MetricsPublisher(self.run_id_)
        return self._pub

    # ------------------------------------------------------------------ driving a source
    def run(self, source: Any, *, checkpoint: Any = None, checkpoint_every: int = 1, max_batches: int | None = None,
            callback: Callable[[dict[str, Any]], None] | None = None, **source_kwargs: Any) -> "OnlineLearner":
        """Learn from ``source`` (a store, folder, iterable or source) until it ends.

        An iterable of events (dicts, Kafka-style records) becomes an
        :class:`~daskscale.online.events.EventSource`: ``source_kwargs`` may then give
        ``max_batch``, ``max_latency``, ``features``, ``target`` and ``categorical``.
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
                                       arrived=batch.arrived, lag_rows=getattr(batch, "lag_rows", None),
                                       categories=getattr(batch, "categories", None))
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

    def stream(self, *, max_batch: int = DEFAULT_MAX_BATCH, max_latency: float = 0.05, features: Any = None,
               target: str | int | None = "y", categorical: Any = (),
               callback: Callable[[dict[str, Any]], None] | None = None) -> EventStream:
        """Push events from any thread: an :class:`~daskscale.online.events.EventStream` that learns them.

        Its background thread groups the events put into micro-batches of up to
        ``max_batch`` rows or ``max_latency`` seconds and learns each (test, then train);
        ``close()`` (or leaving its ``with`` block) learns the rest and re-raises an error of
        the learner. Do not call :meth:`learn_batch` elsewhere while it is open.

        Examples
        --------
        >>> import numpy as np
        >>> ol = OnlineLearner(publish=False)
        >>> with ol.stream(max_batch=8, max_latency=0.01) as s:
        ...     for i, v in enumerate(np.random.default_rng(0).normal(size=400)):
        ...         s.put({"x": float(v), "y": int(v > 0)})
        >>> ol.n_rows_, ol.cumulative_accuracy > 0.9
        (400, True)
        """
        self._start()

        def learn(mb: Any) -> None:
            rec = self.learn_batch(mb.X, mb.y, position=mb.position, where=mb.where, arrived=mb.arrived,
                                   lag_rows=mb.lag_rows, categories=mb.categories)
            if callback is not None and rec is not None:
                callback(rec)

        return EventStream(learn, features=features, target=target, categorical=categorical, max_batch=max_batch,
                           max_latency=max_latency)

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
        """Counts, metrics, drift events and skips so far; latency and lag of the rows.

        ``latency_p50_s`` / ``latency_p95_s``: percentiles over rows (a batch weighs its rows)
        of the time from a batch's oldest row's arrival to the model having learned it;
        ``max_lag_rows``: the most rows received but not learned when a batch was predicted.
        """
        self._start()
        h = self.history_
        lat, rows = [r["latency_s"] for r in h], [r["rows"] for r in h]
        out = {"batches": self.n_batches_, "rows": self.n_rows_, "scored_rows": self.n_scored_,
               "skipped_batches": self.n_skipped_, "drift_events": len(self.events_),
               "latency_p50_s": weighted_percentile(lat, rows, 50), "latency_p95_s": weighted_percentile(lat, rows, 95),
               "max_lag_rows": max((r.get("lag_rows", r["rows"]) for r in h), default=0)}
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
        return f"<table><caption>OnlineLearner({type(self.template_).__name__})</caption>{rows}</table>"

    def __repr__(self, N_CHAR_MAX: int = 700) -> str:
        params = super().__repr__(N_CHAR_MAX)
        if "_started" not in self.__dict__:
            return params
        return f"{params} [batches={self.n_batches_}, rows={self.n_rows_}]"
