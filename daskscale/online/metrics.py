"""Prequential metrics of a stream learner: accuracy, throughput, latency and lag.

One :class:`PrequentialMetrics` is fed each (micro-)batch after it is learned: the labels,
the predictions made BEFORE the model learned it (``None`` for a batch the model could not
predict yet, which is then learned but not scored), when its oldest row arrived, and the
rows the model lagged behind (``lag_rows`` of :class:`~daskscale.online.events.MicroBatch`).

Latency is per batch, from its OLDEST row's arrival to the moment its rows are learned:
the worst latency of any row in it. Percentiles are taken over rows (a batch of 100 rows
weighs 100), so ``latency_p95_s`` bounds the latency of 95% of the rows.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np

__all__ = ["PrequentialMetrics", "weighted_percentile"]


def weighted_percentile(values: Any, weights: Any, q: float) -> float:
    """The ``q``-th percentile (0-100) of ``values`` each counted ``weights`` times (NaN if empty).

    Examples
    --------
    >>> weighted_percentile([0.5, 0.1], [1, 99], 95), weighted_percentile([0.5, 0.1], [1, 99], 100)
    (0.1, 0.5)
    """
    v, w = np.asarray(values, dtype=np.float64), np.asarray(weights, dtype=np.float64)
    if v.size == 0:
        return float("nan")
    order = np.argsort(v, kind="stable")
    cum = np.cumsum(w[order])
    return float(v[order][min(np.searchsorted(cum, q / 100 * cum[-1]), v.size - 1)])


class PrequentialMetrics:
    """Test-then-train accuracy, rows/s, latency percentiles and lag of a stream.

    Examples
    --------
    >>> import numpy as np
    >>> m = PrequentialMetrics()
    >>> m.update(np.array([0, 1]), None, arrived=0.0, learned=0.5)
    >>> m.update(np.array([0, 1, 1]), np.array([0, 1, 0]), arrived=1.0, learned=1.25, lag_rows=3)
    >>> r = m.report()
    >>> r["rows"], r["scored_rows"], round(r["accuracy"], 3), r["max_lag_rows"], r["latency_p95_s"]
    (5, 3, 0.667, 3, 0.5)
    """

    def __init__(self) -> None:
        self.n_rows = self.n_scored = self.n_correct = self.n_batches = 0
        self.max_lag_rows = 0
        self._latency: list[float] = []
        self._weight: list[int] = []
        self._start: float | None = None
        self._end = 0.0

    def update(self, y: np.ndarray, y_pred: np.ndarray | None, *, arrived: float, learned: float | None = None,
               lag_rows: int | None = None) -> None:
        """Record one learned batch (times on the ``time.perf_counter`` clock)."""
        learned = time.perf_counter() if learned is None else learned
        n = int(len(y))
        if self._start is None:
            self._start = arrived
        self._end = learned
        if y_pred is not None:
            self.n_scored += n
            self.n_correct += int(np.count_nonzero(np.asarray(y_pred) == np.asarray(y)))
        self.n_rows += n
        self.n_batches += 1
        self.max_lag_rows = max(self.max_lag_rows, n if lag_rows is None else int(lag_rows))
        self._latency.append(learned - arrived)
        self._weight.append(n)

    @property
    def accuracy(self) -> float:
        """Prequential accuracy over every scored row."""
        return self.n_correct / self.n_scored if self.n_scored else float("nan")

    def latency_percentile(self, q: float) -> float:
        """The ``q``-th percentile (0-100) of row latency, in seconds (NaN before any batch)."""
        return weighted_percentile(self._latency, self._weight, q)

    def report(self) -> dict[str, Any]:
        """Rows, batches, accuracy, rows/s (first arrival to last learned), latency p50/p95, max lag."""
        span = self._end - self._start if self._start is not None else 0.0
        return {"rows": self.n_rows, "batches": self.n_batches, "scored_rows": self.n_scored,
                "accuracy": self.accuracy, "rows_per_s": self.n_rows / span if span > 0 else float("nan"),
                "latency_p50_s": self.latency_percentile(50), "latency_p95_s": self.latency_percentile(95),
                "max_lag_rows": self.max_lag_rows}
