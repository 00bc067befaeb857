"""Online learning: daskscale's prequential OnlineLearner against River, in the same run.

The stream: ``daskscale.datasets.stream.stream_batches`` (10 features, binary, abrupt
drift at the middle), held in memory as numpy batches for daskscale and as River's dict
rows for River (the conversion is done in ``setup``, not timed, for both).

- daskscale: ``OnlineLearner(SGDClassifier(loss="log_loss", learning_rate="constant",
  eta0=0.01, alpha=0, shuffle=False), preprocess=None)`` (River's side has no scaler here:
  the same model on both sides) test-then-train per batch of ``batch_size`` rows
  (the same plain SGD on the log loss as River's default, each row once, in stream order),
  in the learner's default configuration (streaming feature statistics on), and as a
  labelled extra variant without the statistics (``*_no_stats``);
- River: ``river.linear_model.LogisticRegression()`` one row at a time, ``predict_one``
  then ``learn_one`` with ``river.metrics.Accuracy`` (River's prequential evaluation);
  River has no batches: its figures do not depend on ``batch_size`` (they are re-measured
  at each, which shows the run-to-run noise).

``track_*_rows_per_s`` and ``track_*_accuracy`` (prequential, in %) for each, and
``track_speedup`` (daskscale rows/s over River's, measured in the same call). The goal
(>= 20x River's rows/s, accuracy within 1 point) is stated at ``batch_size=10_000``; the
other sizes give the curve. scikit-learn's ``partial_fit`` costs a fixed ~0.25 ms a call
(its input checks) on top of ~0.1 us a row, which is what bounds the small batch sizes: at
100 rows a batch it alone caps the learner near 2x River's rate.
``OnlineLatency`` replays a store at a fixed rate and reports the latency from a batch's
arrival to the updated model (p50 / p95, ms). ``OnlineRealStreams`` compares River's scaled
pipeline (``StandardScaler() | LogisticRegression()``, one row at a time) with daskscale's
micro-batched, online-scaled SGD on every shipped real stream, for events of 1 to 10,000 rows
(rows/s, prequential accuracy, p95 latency).

On a quiet machine (the figures of the closing note), the real streams alone::

    asv run --quick --show-stderr --bench 'OnlineRealStreams' --python=same
    asv run --quick --show-stderr --bench 'OnlineVsRiver' --python=same
"""

from __future__ import annotations

import time

import numpy as np

from benchmarks.common import CACHE, scaled

N_FEATURES = 10


def _stream(n_rows: int) -> tuple[np.ndarray, np.ndarray]:
    from daskscale.datasets.stream import stream_batches

    X, y = zip(*stream_batches(n_rows, N_FEATURES, batch_rows=50_000, seed=7, drift="abrupt"))
    return np.concatenate(X), np.concatenate(y)


def _sgd():
    """River's model in scikit-learn: plain SGD on the log loss, learning rate 0.01, no penalty,
    each row once, in stream order (``shuffle=False``: River does not shuffle either). Without
    shuffling nothing in the model is random, so it needs no ``random_state``."""
    from sklearn.linear_model import SGDClassifier

    return SGDClassifier(loss="log_loss", learning_rate="constant", eta0=0.01, alpha=0.0, shuffle=False)


def run_daskscale(X: np.ndarray, y: np.ndarray, batch_size: int, statistics: bool = True) -> tuple[float, float]:
    """Rows/s and prequential accuracy (%) of the OnlineLearner on ``(X, y)``."""
    from daskscale.online import OnlineLearner

    batches = [(X[i:i + batch_size], y[i:i + batch_size]) for i in range(0, len(X), batch_size)]
    t = time.perf_counter()
    ol = OnlineLearner(_sgd(), preprocess=None, statistics=statistics, publish=False, classes=[0, 1]).run(batches)
    dt = time.perf_counter() - t
    return len(X) / dt, 100 * ol.cumulative_accuracy


def run_river(rows: list[dict], ys: list) -> tuple[float, float]:
    """Rows/s and prequential accuracy (%) of River's LogisticRegression, one row at a time."""
    from river import linear_model, metrics

    model, acc = linear_model.LogisticRegression(), metrics.Accuracy()
    t = time.perf_counter()
    for xi, yi in zip(rows, ys):
        acc.update(yi, model.predict_one(xi))
        model.learn_one(xi, yi)
    dt = time.perf_counter() - t
    return len(ys) / dt, 100 * acc.get()


class OnlineVsRiver:
    params = [1000, 100, 10_000]
    param_names = ["batch_size"]
    timeout = 900
    number = 1
    repeat = 1

    def setup(self, batch_size):
        import daskscale.online  # noqa: F401 - imports are not part of either side's timing
        import river.linear_model  # noqa: F401

        self.X, self.y = _stream(scaled(400_000, 4000))
        self.rows = [dict(enumerate(r)) for r in self.X.astype(float).tolist()]
        self.ys = self.y.tolist()

    def time_daskscale(self, batch_size):
        run_daskscale(self.X, self.y, batch_size)

    def time_river(self, batch_size):
        run_river(self.rows, self.ys)

    def track_daskscale_rows_per_s(self, batch_size):
        return run_daskscale(self.X, self.y, batch_size)[0]

    def track_daskscale_no_stats_rows_per_s(self, batch_size):
        return run_daskscale(self.X, self.y, batch_size, statistics=False)[0]

    def track_daskscale_accuracy(self, batch_size):
        return run_daskscale(self.X, self.y, batch_size)[1]

    def track_river_rows_per_s(self, batch_size):
        return run_river(self.rows, self.ys)[0]

    def track_river_accuracy(self, batch_size):
        return run_river(self.rows, self.ys)[1]

    def track_speedup(self, batch_size):
        """daskscale rows/s over River rows/s, both measured here, back to back."""
        river = run_river(self.rows, self.ys)[0]
        return run_daskscale(self.X, self.y, batch_size)[0] / river

    def track_speedup_no_stats(self, batch_size):
        """As ``track_speedup``, without the streaming feature statistics."""
        river = run_river(self.rows, self.ys)[0]
        return run_daskscale(self.X, self.y, batch_size, statistics=False)[0] / river

    def track_accuracy_gap_points(self, batch_size):
        """daskscale prequential accuracy minus River's (percentage points)."""
        return run_daskscale(self.X, self.y, batch_size)[1] - run_river(self.rows, self.ys)[1]


class OnlineLatency:
    """Arrival of a batch (replayed from a store at a fixed rate) to the updated model."""

    params = [1000, 10_000]
    param_names = ["batch_size"]
    timeout = 600
    number = 1
    repeat = 1

    def setup(self, batch_size):
        from daskscale.datasets.stream import stream_to_store
        from daskscale.storage import is_store

        n = scaled(200_000, 4000)
        self.path = CACHE / f"online-latency-{n}.zarr"
        if not is_store(self.path):
            stream_to_store(self.path, n, N_FEATURES, batch_rows=10_000, chunk_rows=10_000, drift="abrupt",
                            overwrite=True)
        self.rate = 20 * batch_size  # 20 batches a second

    def _latencies(self, batch_size):
        from daskscale.online import OnlineLearner, ReplaySource

        src = ReplaySource(self.path, batch_size=batch_size, rate=self.rate)
        ol = OnlineLearner(_sgd(), preprocess=None, publish=False).run(src)
        return np.array([h["latency_s"] for h in ol.history_]) * 1e3

    def track_latency_p50_ms(self, batch_size):
        return float(np.percentile(self._latencies(batch_size), 50))

    def track_latency_p95_ms(self, batch_size):
        return float(np.percentile(self._latencies(batch_size), 95))


def _river_pipeline():
    """What River users run: ``preprocessing.StandardScaler() | linear_model.LogisticRegression()``."""
    from river import linear_model, preprocessing

    return preprocessing.StandardScaler() | linear_model.LogisticRegression()


def run_river_scaled(rows: list[dict], ys: list) -> dict[str, float]:
    """River's scaled pipeline one row at a time: rows/s, prequential accuracy (%), p95 latency (ms)."""
    from river import metrics

    model, acc = _river_pipeline(), metrics.Accuracy()
    clock, lat = time.perf_counter, []
    t = clock()
    for xi, yi in zip(rows, ys):
        t0 = clock()  # the row "arrives": River predicts it, then learns it
        acc.update(yi, model.predict_one(xi))
        model.learn_one(xi, yi)
        lat.append(clock() - t0)
    dt = clock() - t
    return {"rows_per_s": len(ys) / dt, "accuracy": 100 * acc.get(), "latency_p95_ms": 1e3 * np.percentile(lat, 95)}


def run_daskscale_events(events: list, max_batch: int, max_latency: float = 0.05) -> dict[str, float]:
    """The product on the same events: ``OnlineLearner()`` with its defaults (online standard
    scaling, River's logistic regression in NumPy steps, test-then-train), the events read by an
    ``EventSource`` (micro-batches of up to ``max_batch`` rows or ``max_latency`` s)."""
    from daskscale.online import EventSource, OnlineLearner

    t = time.perf_counter()
    ol = OnlineLearner().run(EventSource(events, max_batch=max_batch, max_latency=max_latency))
    dt = time.perf_counter() - t
    s = ol.summary()
    return {"rows_per_s": s["rows"] / dt, "accuracy": 100 * s["cumulative_accuracy"],
            "latency_p95_ms": 1e3 * s["latency_p95_s"], "max_lag_rows": s["max_lag_rows"]}


class OnlineRealStreams:
    """River's ``StandardScaler() | LogisticRegression()`` one row at a time against daskscale's
    ``OnlineLearner()`` (defaults: online standard scaling, River's logistic regression), on every
    shipped real stream (``daskscale.datasets.real.STREAMS``), for events of 1, 10, 100 and
    10,000 rows.

    Events of one row are dicts (as River users have them); larger ones are ``(X, y)`` arrays.
    daskscale groups events into micro-batches of up to ``MAX_BATCH`` rows or 50 ms (the
    learner's default, ``daskscale.online.events.DEFAULT_MAX_BATCH``; an event larger than
    that is one micro-batch); River learns each row as it comes, whatever the event size. Latency: from an event's arrival (taken from the in-memory stream) to a model
    that has learned it, p95 over rows (River: the time of its predict + learn of the row).
    The streams are replayed as fast as they can be learned: rows/s is throughput. An event
    is at most a tenth of its stream (phishing and sp500_direction have ~1,250 rows: their
    "10,000-row" events are 125 rows), so at least 90% of the rows are scored.
    """

    params = [["weather_rain", "phishing", "shuttle", "sp500_direction"], [1, 10, 100, 10_000]]
    param_names = ["stream", "event_rows"]
    timeout = 900
    number = 1
    repeat = 1
    #: micro-batch size: the learner's default (``daskscale.online.events.DEFAULT_MAX_BATCH``)
    MAX_BATCH = 32

    def setup(self, stream, event_rows):
        import daskscale.online  # noqa: F401 - imports are not part of either side's timing
        import river.linear_model  # noqa: F401

        from daskscale.datasets.real import load_stream

        X, y, _ = load_stream(stream)
        n = min(len(y), scaled(len(y), 300))
        X, y = X[:n], y[:n]
        self.rows = [dict(enumerate(r)) for r in X.tolist()]
        self.ys = y.tolist()
        # an event as large as the stream would leave nothing to score: at most a tenth of it
        event_rows = max(1, min(event_rows, n // 10))
        if event_rows == 1:
            self.events = [dict(r, y=t) for r, t in zip(self.rows, self.ys)]
        else:
            self.events = [(X[a:a + event_rows], y[a:a + event_rows]) for a in range(0, n, event_rows)]
        self.max_batch = max(self.MAX_BATCH, event_rows)

    def _ours(self):
        return run_daskscale_events(self.events, self.max_batch)

    def _river(self):
        return run_river_scaled(self.rows, [bool(t) for t in self.ys])

    def track_daskscale_rows_per_s(self, stream, event_rows):
        """Median of 3 runs in this process (the first pays what a first run in a process pays)."""
        return float(np.median([self._ours()["rows_per_s"] for _ in range(3)]))

    def track_daskscale_accuracy(self, stream, event_rows):
        return self._ours()["accuracy"]

    def track_daskscale_latency_p95_ms(self, stream, event_rows):
        return self._ours()["latency_p95_ms"]

    def track_river_rows_per_s(self, stream, event_rows):
        """Median of 3 runs in this process."""
        return float(np.median([self._river()["rows_per_s"] for _ in range(3)]))

    def track_river_accuracy(self, stream, event_rows):
        return self._river()["accuracy"]

    def track_river_latency_p95_ms(self, stream, event_rows):
        return self._river()["latency_p95_ms"]

    def track_daskscale_max_lag_rows(self, stream, event_rows):
        return self._ours()["max_lag_rows"]

    def track_speedup(self, stream, event_rows):
        """daskscale rows/s over River's, measured back to back (River, daskscale, River: the mean
        of River's two runs, so a load that changes during the call weighs on both sides); the
        median of 3 such ratios, the first of them from this process's first run of each."""
        ratios = []
        for _ in range(3):
            river = self._river()["rows_per_s"]
            ours = self._ours()["rows_per_s"]
            ratios.append(ours / ((river + self._river()["rows_per_s"]) / 2))
        return float(np.median(ratios))

    def track_accuracy_gap_points(self, stream, event_rows):
        """daskscale prequential accuracy minus River's scaled pipeline's (percentage points)."""
        return self._ours()["accuracy"] - self._river()["accuracy"]
