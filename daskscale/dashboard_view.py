"""What the daskscale dashboard page shows: the user-facing view of the published metrics.

Trainers publish more than a person needs (:class:`daskscale.monitor.MetricsPublisher`
messages carry block lists, step counters, end-of-epoch flags). :class:`RunsView` folds the
messages, in order, into what the page shows per run: loss, score, rows/s, blocks and rows
done (of the total, when the trainer says it), the epoch, drift events, and the history of
loss, score and rows/s for the plots. Numbers come out as short text, the way the page
prints them; the fold is incremental (:meth:`RunsView.add`), so the page only folds what is
new in the scheduler's event log.

Which published names mean what (the first one present wins):

- loss: ``loss``, else an online regressor's ``rolling_mse`` / ``rolling_mae``;
- score: ``score``, else an online classifier's ``rolling_accuracy``;
- progress: ``blocks_done`` of ``blocks_total``; ``rows_seen`` of ``rows_total``;
  ``iteration`` (exact solvers); ``batch`` (online learning, 0-based);
- epoch: ``epoch`` (0-based, shown from 1) of ``epochs_total``;
- drift: a message with ``event="drift"`` (:meth:`MetricsPublisher.event`) or ``drift=True``
  (the online learner's per-batch record).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Iterable

__all__ = ["RunsView", "RunState", "COLUMNS", "SERIES", "fmt"]

#: the runs table: (key in :meth:`RunsView.rows`, column title)
COLUMNS = (("run", "run"), ("loss", "loss"), ("score", "score"), ("rows_per_s", "rows/s"),
           ("progress", "done"), ("epoch", "epoch"), ("drifts", "drift events"), ("updated", "last update"))
#: the plotted metrics: (key, figure title, y-axis label)
SERIES = (("loss", "Loss", "loss"), ("score", "Score", "score"), ("rows_per_s", "Throughput", "rows / s"))

_LOSS = ("loss", "rolling_mse", "rolling_mae")
_SCORE = ("score", "rolling_accuracy")
#: details of an event a person reads, in this order; anything else a trainer adds stays off the page
_EVENT_DETAILS = (("row", "row {}"), ("batch", "batch {}"), ("where", "{}"), ("detector", "detector {}"),
                  ("reaction", "reaction {}"))


def fmt(v: Any) -> str:
    """A number as the page prints it: 4 significant digits, thousands separated.

    Examples
    --------
    >>> fmt(0.123456), fmt(12345.6), fmt(7), fmt(None)
    ('0.1235', '12,346', '7', '')
    """
    if v is None or isinstance(v, bool):
        return ""
    if isinstance(v, int):
        return f"{v:,}"
    if isinstance(v, float):
        return f"{v:.4g}" if abs(v) < 1e3 else f"{v:,.0f}"
    return str(v)


def _number(v: Any) -> float | None:
    if isinstance(v, (int, float)) and not isinstance(v, bool) and v == v:
        return float(v)
    return None


def _first(msg: dict, names: tuple[str, ...]) -> float | None:
    for name in names:
        v = _number(msg.get(name))
        if v is not None:
            return v
    return None


@dataclass
class RunState:
    """The latest user-facing values of one run, and the history of its plotted metrics."""

    name: str
    updated: float = 0.0
    values: dict[str, float] = field(default_factory=dict)
    drifts: int = 0
    series: dict[str, list[tuple[float, float]]] = field(default_factory=dict)


class RunsView:
    """Incremental fold of metric messages into per-run rows, plot series and drift events.

    Examples
    --------
    >>> view = RunsView()
    >>> view.add({"run": "fit-1", "time": 1.0, "epoch": 0, "blocks_done": 3, "blocks_total": 12,
    ...           "loss": 0.25, "rows_per_s": 52000.0, "blocks": [2]})
    >>> view.add({"run": "fit-1", "time": 2.0, "event": "drift", "row": 6000, "detector": "ADWIN"})
    >>> row = view.rows(now=4.0)[0]
    >>> row["loss"], row["rows_per_s"], row["progress"], row["epoch"], row["drifts"], row["updated"]
    ('0.25', '52,000', '3 of 12 blocks', '1', '1', '2 s ago')
    >>> view.events()[0]["details"]
    'row 6,000, detector ADWIN'
    """

    def __init__(self, history: int = 200, max_events: int = 200):
        self.history = history
        self.max_events = max_events
        self.runs: dict[str, RunState] = {}
        self._events: list[dict[str, Any]] = []

    def add(self, msg: Any) -> None:
        """Fold one message (a dict as :class:`~daskscale.monitor.MetricsPublisher` sends it)."""
        if not isinstance(msg, dict):
            return
        name = str(msg.get("run", "?"))
        t = _number(msg.get("time")) or 0.0
        run = self.runs.setdefault(name, RunState(name, t))
        run.updated = max(run.updated, t)
        if msg.get("event") is not None or msg.get("drift") is True:
            kind = str(msg.get("event") or "drift")
            run.drifts += kind == "drift"
            self._event(name, t, kind, msg)
            if msg.get("event") is not None:
                return
        latest = {"loss": _first(msg, _LOSS), "score": _first(msg, _SCORE), "rows_per_s": _number(msg.get("rows_per_s"))}
        for key in ("blocks_done", "blocks_total", "rows_seen", "rows_total", "iteration", "batch", "epoch",
                    "epochs_total"):
            latest[key] = _number(msg.get(key))
        # an end-of-epoch summary's rows/s is the epoch's mean: plotted, it would be a spike
        # among the per-block values
        if msg.get("epoch_done"):
            latest["rows_per_s"] = None
        for key, value in latest.items():
            if value is None:
                continue
            run.values[key] = value
            if any(key == s[0] for s in SERIES):
                points = run.series.setdefault(key, [])
                points.append((t, value))
                del points[: max(0, len(points) - self.history)]

    def extend(self, messages: Iterable[Any]) -> None:
        """Fold many messages, oldest first."""
        for msg in messages:
            self.add(msg)

    def _event(self, run: str, t: float, kind: str, msg: dict) -> None:
        details = [text.format(fmt(msg[key])) for key, text in _EVENT_DETAILS if msg.get(key) is not None]
        self._events.append({"run": run, "time": t, "event": kind, "details": ", ".join(details)})
        del self._events[: max(0, len(self._events) - self.max_events)]

    def events(self) -> list[dict[str, Any]]:
        """The events (drift, checkpoints), newest first: run, time, event, details (text)."""
        return list(reversed(self._events))

    def rows(self, now: float | None = None) -> list[dict[str, str]]:
        """One row of text per run (keys of :data:`COLUMNS`), the most recently updated first."""
        now = time.time() if now is None else now
        return [self._row(r, now) for r in sorted(self.runs.values(), key=lambda r: -r.updated)]

    @staticmethod
    def _row(run: RunState, now: float) -> dict[str, str]:
        v = run.values
        return {"run": run.name, "loss": fmt(v.get("loss")), "score": fmt(v.get("score")),
                "rows_per_s": fmt(v.get("rows_per_s")), "progress": _progress(v),
                "epoch": _of(v.get("epoch"), v.get("epochs_total"), start=1), "drifts": str(run.drifts),
                "updated": _ago(now - run.updated)}


def _of(done: float | None, total: float | None, unit: str = "", start: int = 0) -> str:
    if done is None:
        return ""
    text = f"{int(done) + start:,}" + (f" of {int(total):,}" if total is not None else "")
    return f"{text} {unit}".rstrip()


def _progress(v: dict[str, float]) -> str:
    parts = [_of(v.get("blocks_done"), v.get("blocks_total"), "blocks"),
             _of(v.get("rows_seen"), v.get("rows_total"), "rows"),
             _of(v.get("iteration"), None, "iterations"),
             _of(v.get("batch"), None, "batches", start=1)]
    return ", ".join(p for p in parts if p)


def _ago(seconds: float) -> str:
    seconds = max(0.0, seconds)
    if seconds < 120:
        return f"{seconds:.0f} s ago"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min ago"
    return f"{seconds / 3600:.0f} h ago"
