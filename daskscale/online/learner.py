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

Per batch the learner keeps a compact row (counts, metrics, latency, lag) and builds the
record dicts of :attr:`history_` only when they are read; :meth:`learn_batch` returns the
batch's record. Publishing to the dashboard is throttled before any record is built.

Events (dicts, Kafka-style records, rows) are learned in micro-batches: an iterable of them
given to :meth:`OnlineLearner.run` goes through :class:`~daskscale.online.events.EventSource`;
:meth:`OnlineLearner.stream` returns an :class:`~daskscale.online.events.EventStream` to push
them from any thread. Each batch's record has ``latency_s`` (oldest row's arrival to learned)
and ``lag_rows`` (rows received but not learned when it was predicted); :meth:`summary` gives
their row-weighted percentiles and maximum. Throughput and latency against micro-batch size,
measured against River: :mod:`daskscale.online.loop`. The per-batch update (check, test,
train through the block loop's ``Step``): :mod:`daskscale.online.update`.

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

import contextlib
import functools
import uuid
from typing import Any, Callable

import numpy as np
from sklearn import config_context
from sklearn.base import BaseEstimator, is_classifier

from daskscale.errors import InputTypeError, SchemaError
from daskscale.online.events import DEFAULT_MAX_BATCH, EventStream
from daskscale.online.linear import OnlineLogisticRegression
from daskscale.online.loop import event_stream, run_source
from daskscale.online.metrics import weighted_percentile
from daskscale.online.reactions import REACTIONS
from daskscale.online.update import PrequentialUpdate
from daskscale.reduce import Moments

__all__ = ["OnlineLearner"]

#: reads the running moments of ``stats_`` (state ``(count, mean, M2)``)
_MOMENTS = Moments()

#: the learning state made by ``_init_state`` (read before first use, it is made then)
_STATE = frozenset({
    "is_classifier_", "estimator_", "background_", "detector_", "classes_", "n_features_in_", "n_batches_",
    "n_rows_", "n_scored_", "n_trained_", "n_skipped_", "loss_sum_", "window_", "recent_", "pending_",
    "events_", "skipped_", "moments_", "features_", "position_", "run_id_"})


class OnlineLearner(PrequentialUpdate, BaseEstimator):
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
        self._pub_next = 0.0  # publishing is throttled here, before any record is built

    @property
    def template_(self) -> Any:
        """The estimator cloned for every new model (``estimator``, or the default)."""
        return OnlineLogisticRegression() if self.estimator is None else self.estimator

    @property
    def cumulative_accuracy(self) -> float:
        """Prequential accuracy over every scored row so far (classifiers)."""
        self._start()
        return 1.0 - self.loss_sum_ / self.n_scored_ if self.n_scored_ else float("nan")

    @property
    def history_(self) -> list[dict[str, Any]]:
        """One record per learned batch (see :meth:`learn_batch`), built from compact rows when read."""
        self._start()
        rows, done = self._rows, self._history
        if len(done) < len(rows):
            done.extend(map(self._record, rows[len(done):]))
        return done

    @history_.setter
    def history_(self, records: list[dict[str, Any]]) -> None:
        # rows are the batches' compact tuples, or the records of a checkpoint as they were saved
        self._rows = list(records)
        self._history = list(records)

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

    # ------------------------------------------------------------------ learning
    def learn_batch(self, X: Any, y: Any, *, position: Any = None, where: str = "", arrived: float | None = None,
                    lag_rows: int | None = None, categories: Any = None) -> dict[str, Any] | None:
        """Test on ``(X, y)``, then train on it; return the batch's record (None if skipped).

        ``arrived``: when its oldest row arrived (``time.perf_counter``; default now);
        ``lag_rows``: rows received but not learned when it was predicted (default its rows);
        ``categories``: rows x fields for the one-hot steps of ``preprocess``.
        """
        learned = self._take(X, y, position, where, arrived, lag_rows, categories)
        return self._record(self._rows[-1]) if learned else None

    def partial_fit(self, X: Any, y: Any) -> "OnlineLearner":
        """:meth:`learn_batch` as scikit-learn spells it: test on the batch, train on it, return ``self``."""
        self.learn_batch(X, y)
        return self

    def predict(self, X: Any, categories: Any = None) -> np.ndarray:
        """Predictions of the current model, through the current features (after a batch learned)."""
        from daskscale.learn.prep import NotFitted

        if not self.__dict__.get("n_trained_"):
            raise NotFitted(f"this {type(self).__name__} has learned no batch yet: call learn_batch, partial_fit "
                            "or run first")
        return self._predict(np.asarray(X), categories)

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
        return run_source(self, source, checkpoint=checkpoint, checkpoint_every=checkpoint_every,
                          max_batches=max_batches, callback=callback, **source_kwargs)

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
        return event_stream(self, max_batch=max_batch, max_latency=max_latency, features=features, target=target,
                            categorical=categorical, callback=callback)

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
        h = self._rows
        lat = [r["latency_s"] if isinstance(r, dict) else r[6] for r in h]
        rows = [r["rows"] if isinstance(r, dict) else r[2] for r in h]
        lags = [r.get("lag_rows", r["rows"]) if isinstance(r, dict) else r[7] for r in h]
        out = {"batches": self.n_batches_, "rows": self.n_rows_, "scored_rows": self.n_scored_,
               "skipped_batches": self.n_skipped_, "drift_events": len(self.events_),
               "latency_p50_s": weighted_percentile(lat, rows, 50), "latency_p95_s": weighted_percentile(lat, rows, 95),
               "max_lag_rows": max(lags, default=0)}
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
