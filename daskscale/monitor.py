"""Progress bars and live training metrics.

- :func:`progress` is a tqdm bar that renders as a widget in Jupyter and as text in a
  terminal (``tqdm.auto``). It shows by default only where someone watches: a terminal on
  stderr, or a notebook. ``DASKSCALE_PROGRESS=1`` forces bars on (e.g. in a log file),
  ``DASKSCALE_PROGRESS=0`` forces them off. :func:`advance_to` moves a bar to an absolute
  position (a resumed fit reports blocks done *in total*), :func:`compute_with_progress`
  computes any Dask collection with a bar over its tasks.
- :class:`MetricsPublisher` sends metrics (loss, score, rows/s, drift events) to the
  scheduler as Dask events under a topic (``Client.log_event``), so they can be watched
  while a fit runs from another client or from the dashboard (:func:`recent_metrics`).
  :meth:`MetricsPublisher.event` marks discrete events (a drift detected, a checkpoint).
- :func:`summarize` folds those messages into per-run latest values, short histories and
  the event list: what the dashboard page (:mod:`daskscale.dashboard`) shows, and what
  :func:`metrics_frame` gives as a table.
- :func:`peak_memory` is a process's resident-memory high-water mark as the kernel keeps it
  (no sampling gaps); run it on the workers (``client.run(peak_memory, True)`` before a step
  resets it, ``client.run(peak_memory)`` after reads it) to learn what a step really peaked at.

Conventions for metric names, so every trainer shows up the same way on the dashboard:
``loss``, ``score``, ``rows_per_s``, ``rows``, ``rows_seen``, ``epoch``, ``epochs_total``,
``blocks_done``, ``blocks_total``; an event message has
``event`` (e.g. ``"drift"``) and whatever describes it (``row``, ``detector``).
"""

from __future__ import annotations

import os
import sys
import time
from typing import Any, Iterable

from tqdm.auto import tqdm

__all__ = ["progress", "advance_to", "compute_with_progress", "MetricsPublisher", "recent_metrics", "METRICS_TOPIC",
           "current_client", "summarize", "metrics_frame", "HISTORY", "peak_memory"]

#: points of history kept per run and metric by :func:`summarize`
HISTORY = 200

METRICS_TOPIC = "daskscale-metrics"


def _enabled() -> bool:
    """Whether bars show when the caller does not say: ``DASKSCALE_PROGRESS``, else interactivity."""
    forced = os.environ.get("DASKSCALE_PROGRESS", "").strip().lower()
    if forced in ("0", "false", "no", "off"):
        return False
    if forced in ("1", "true", "yes", "on"):
        return True
    return _watched()


def _watched() -> bool:
    """A person sees stderr: it is a terminal, or this is a notebook kernel (tqdm draws a widget)."""
    try:
        if sys.stderr is not None and sys.stderr.isatty():
            return True
    except (AttributeError, ValueError):  # a replaced or closed stderr
        pass
    return "ipykernel" in sys.modules


def progress(iterable: Iterable[Any] | None = None, *, total: int | None = None, desc: str = "",
             unit: str = "block", disable: bool | None = None, **kwargs: Any) -> tqdm:
    """A progress bar (text in a terminal, a widget in Jupyter).

    ``disable=None`` (the default) shows the bar when stderr is a terminal or in a notebook,
    unless ``DASKSCALE_PROGRESS`` says otherwise (``1`` on, ``0`` off); ``disable=False``
    shows it whatever the environment (the caller was asked to).

    Examples
    --------
    >>> with progress(total=3, desc="demo", disable=True) as bar:
    ...     advance_to(bar, 2)
    >>> bar.n, bar.total
    (2, 3)
    """
    return tqdm(iterable, total=total, desc=desc, unit=unit, dynamic_ncols=True,
                disable=(not _enabled()) if disable is None else disable, **kwargs)


def advance_to(bar: Any, position: int) -> None:
    """Move ``bar`` forward to the absolute ``position``, never back and never past its total.

    For counts that are totals so far (blocks done since the start of a fit, including those
    done before a resume): ``bar.update(position - last_seen)`` needs the caller to start
    ``last_seen`` at the bar's initial position, and overshoots when it does not.

    Examples
    --------
    >>> bar = progress(total=15, initial=10, disable=True)
    >>> advance_to(bar, 12); advance_to(bar, 11); advance_to(bar, 25)
    >>> bar.n
    15
    """
    target = int(position) if bar.total is None else min(int(position), int(bar.total))
    if target <= bar.n:
        return
    if bar.disable:  # a silent bar still keeps its count (tqdm's update skips it)
        bar.n = target
    else:
        bar.update(target - bar.n)


def compute_with_progress(collection: Any, *, desc: str, unit: str = "task", disable: bool | None = None) -> Any:
    """``collection.compute()`` with a bar over its tasks (on a distributed client).

    The bar counts every task of the graph as the scheduler finishes it (distributed's own
    progress plugin, drawn with tqdm), so it fits anything Dask computes: writing a store,
    generating a dataset. Without a distributed client, or with bars off, it just computes.

    Examples
    --------
    >>> import dask.array as da
    >>> int(compute_with_progress(da.ones(10, chunks=5).sum(), desc="sum", disable=True))
    10
    """
    import dask

    client = current_client()
    if client is None or not hasattr(client, "compute") or ((not _enabled()) if disable is None else disable):
        return dask.compute(collection)[0]
    from daskscale.adapters.distributed import watch_tasks

    future = client.compute(collection)
    with progress(total=None, desc=desc, unit=unit, disable=False) as bar:

        def draw(done: int, total: int) -> None:
            bar.total = total
            advance_to(bar, done)
            bar.refresh()

        watch_tasks(future, draw)
    return future.result()


def current_client() -> Any | None:
    """The active :class:`distributed.Client`, or ``None``.

    No client can exist before ``distributed`` is imported, and importing it costs about 0.5 s:
    a process that has not imported it (an online learner on its own) gets ``None`` at once.
    """
    if "distributed" not in sys.modules:
        return None
    try:
        from distributed import get_client

        return get_client()
    except (ValueError, ImportError):
        return None


class MetricsPublisher:
    """Publish metric dicts to the scheduler's event log (no-op without a client).

    Every message carries ``run`` (an id for the fit), ``time`` and the metrics given.
    Publishing is throttled to at most one message per ``min_interval`` seconds unless
    ``force=True``.
    """

    def __init__(self, run: str, *, topic: str = METRICS_TOPIC, client: Any | None = None,
                 min_interval: float = 0.2):
        self.run = run
        self.topic = topic
        self.client = client if client is not None else current_client()
        self.min_interval = min_interval
        self._last = 0.0

    def publish(self, force: bool = False, **metrics: Any) -> bool:
        """Send ``metrics`` (numbers or short strings); return whether a message was sent.

        Without a client (none given and none current) this is a no-op returning ``False``.
        """
        now = time.time()
        if self.client is None or (not force and now - self._last < self.min_interval):
            return False
        self._last = now
        msg = {"run": self.run, "time": now, **{k: _plain(v) for k, v in metrics.items()}}
        try:
            self.client.log_event(self.topic, msg)
        except Exception:  # noqa: BLE001 - monitoring must never break a fit
            return False
        return True

    def event(self, kind: str, **info: Any) -> bool:
        """Publish a discrete event (never throttled), e.g. ``event("drift", row=120_000)``."""
        return self.publish(force=True, event=kind, **info)


def _plain(v: Any) -> Any:
    import numpy as np

    if isinstance(v, np.generic):
        return v.item()
    return v


def recent_metrics(client: Any | None = None, *, topic: str = METRICS_TOPIC, run: str | None = None) -> list[dict]:
    """The metrics published so far (oldest first), optionally of one ``run``."""
    client = client or current_client()
    if client is None:
        return []
    events = client.get_events(topic)
    out = [msg for _, msg in events]
    return [m for m in out if run is None or m.get("run") == run]


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and v == v


def summarize(messages: Iterable[dict], *, history: int = HISTORY) -> dict[str, Any]:
    """Fold metric messages into ``{"runs": {run: {...}}, "events": [...]}``.

    Each run gets ``latest`` (last value of every metric), ``n_messages``, ``started``,
    ``updated`` (epoch seconds) and ``history`` (``metric -> [[time, value], ...]``, the last
    ``history`` points). Messages with an ``event`` key go to ``events`` (newest last).

    Examples
    --------
    >>> s = summarize([{"run": "a", "time": 1.0, "loss": 0.9}, {"run": "a", "time": 2.0, "loss": 0.5},
    ...                {"run": "a", "time": 2.5, "event": "drift", "row": 10}])
    >>> s["runs"]["a"]["latest"]["loss"], s["runs"]["a"]["history"]["loss"], s["events"][0]["row"]
    (0.5, [[1.0, 0.9], [2.0, 0.5]], 10)
    """
    runs: dict[str, dict[str, Any]] = {}
    events: list[dict] = []
    for m in messages:
        if not isinstance(m, dict):
            continue
        run = str(m.get("run", "?"))
        t = float(m.get("time", 0.0))
        r = runs.setdefault(run, {"latest": {}, "n_messages": 0, "started": t, "updated": t, "history": {}})
        r["n_messages"] += 1
        r["updated"] = max(r["updated"], t)
        if "event" in m:
            events.append(m)
            r["latest"]["last_event"] = m["event"]
            continue
        for k, v in m.items():
            if k in ("run", "time"):
                continue
            r["latest"][k] = v
            if _is_number(v):
                h = r["history"].setdefault(k, [])
                h.append([t, v])
                if len(h) > history:
                    del h[: len(h) - history]
    return {"runs": runs, "events": events[-history:]}


def metrics_frame(client: Any | None = None, *, run: str | None = None):
    """The published metrics as a :class:`pandas.DataFrame` (one row per message, oldest first)."""
    import pandas as pd

    return pd.DataFrame(recent_metrics(client, run=run))


def peak_memory(reset: bool = False) -> int | None:
    """This process's peak resident memory in bytes (Linux ``VmHWM``); ``None`` where unknown.

    ``reset=True`` first restarts the high-water mark from the current resident size (the
    kernel's ``clear_refs``), so the next call gives the peak since. Not ``getrusage``'s
    ``ru_maxrss``: Dask starts workers by fork + exec, and ``ru_maxrss`` keeps the forking
    process's peak across the exec.

    Examples
    --------
    >>> peak = peak_memory(reset=True)
    >>> peak is None or peak > 0
    True
    """
    try:
        if reset:
            with open("/proc/self/clear_refs", "w") as f:
                f.write("5")
        with open("/proc/self/status") as f:
            return next(int(line.split()[1]) * 1024 for line in f if line.startswith("VmHWM:"))
    except (OSError, StopIteration):
        return None
