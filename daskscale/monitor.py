"""Progress bars and live training metrics.

- :func:`progress` is a tqdm bar that renders as a widget in Jupyter and as text in a
  terminal (``tqdm.auto``), and is silent when ``DASKSCALE_PROGRESS=0``.
- :class:`MetricsPublisher` sends metrics (loss, score, rows/s, drift events) to the
  scheduler as Dask events under a topic (``Client.log_event``), so they can be watched
  while a fit runs from another client or from the dashboard (:func:`recent_metrics`).
"""

from __future__ import annotations

import os
import time
from typing import Any, Iterable

from tqdm.auto import tqdm

__all__ = ["progress", "MetricsPublisher", "recent_metrics", "METRICS_TOPIC", "current_client"]

METRICS_TOPIC = "daskscale-metrics"


def _enabled() -> bool:
    return os.environ.get("DASKSCALE_PROGRESS", "1") not in ("0", "false", "no")


def progress(iterable: Iterable[Any] | None = None, *, total: int | None = None, desc: str = "",
             unit: str = "block", disable: bool | None = None, **kwargs: Any) -> tqdm:
    """A progress bar (text in a terminal, a widget in Jupyter)."""
    return tqdm(iterable, total=total, desc=desc, unit=unit, dynamic_ncols=True,
                disable=(not _enabled()) if disable is None else disable, **kwargs)


def current_client() -> Any | None:
    """The active :class:`distributed.Client`, or ``None``."""
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


def _plain(v: Any) -> Any:
    try:
        import numpy as np

        if isinstance(v, np.generic):
            return v.item()
    except ImportError:
        pass
    return v


def recent_metrics(client: Any | None = None, *, topic: str = METRICS_TOPIC, run: str | None = None) -> list[dict]:
    """The metrics published so far (oldest first), optionally of one ``run``."""
    client = client or current_client()
    if client is None:
        return []
    events = client.get_events(topic)
    out = [msg for _, msg in events]
    return [m for m in out if run is None or m.get("run") == run]
