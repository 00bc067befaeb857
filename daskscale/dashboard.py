"""A daskscale page on the Dask dashboard: live training and streaming metrics.

Served by the scheduler's own HTTP server (the one behind the Dask dashboard), in the
dashboard's navigation bar next to Status, Workers, Tasks, ...:

- ``/daskscale``: a Bokeh page (:mod:`daskscale.dashboard_page`) with one row per run (loss,
  score, rows/s, blocks and rows done, epoch, drift events), plots of loss, score and rows/s
  over time, and the events; it updates itself every second;
- ``/daskscale/metrics.json``: the same data for programs (:func:`daskscale.monitor.summarize`).

The data are the ``"daskscale-metrics"`` events that :class:`daskscale.monitor.MetricsPublisher`
sends from the client or from tasks on workers; the scheduler keeps them in its event log.

Two ways put the page on a scheduler:

- this module as a route module, in the ``distributed.scheduler.http.routes`` config list:
  the scheduler imports it before it builds its dashboard, and importing it registers the
  page (:mod:`daskscale.adapters.distributed`). This is how :func:`daskscale.connect` starts
  its local cluster, and how a scheduler started elsewhere can serve it
  (``DASK_DISTRIBUTED__SCHEDULER__HTTP__ROUTES``). A scheduler this process starts after
  importing this module serves the page too.
- :func:`install`, for a scheduler that already runs: it registers :class:`DashboardPlugin`
  (a ``SchedulerPlugin``) through ``Client.register_plugin``; the plugin adds the JSON route
  and the page to the running dashboard.
"""

from __future__ import annotations

import json
import time
from typing import Any

from distributed.diagnostics.plugin import SchedulerPlugin
from distributed.http.utils import RequestHandler

from daskscale.monitor import METRICS_TOPIC, summarize

__all__ = ["routes", "DashboardPlugin", "install", "page_url", "PAGE", "PAGE_NAME", "JSON_PATH"]

PAGE = "/daskscale"
#: the page's entry in the dashboard's navigation bar
PAGE_NAME = "daskscale"
JSON_PATH = "/daskscale/metrics.json"


def _summary(scheduler: Any) -> dict[str, Any]:
    msgs = [m for _, m in scheduler.get_events(METRICS_TOPIC)]
    out = summarize(msgs)
    out["topic"] = METRICS_TOPIC
    out["now"] = time.time()
    out["n_workers"] = len(scheduler.workers)
    return out


class MetricsJSON(RequestHandler):
    def get(self) -> None:
        self.set_header("Content-Type", "application/json")
        self.set_header("Cache-Control", "no-store")
        self.write(json.dumps(_summary(self.server), default=str))


#: for the ``distributed.scheduler.http.routes`` config (module name ``"daskscale.dashboard"``)
routes: list[tuple] = [(JSON_PATH, MetricsJSON, {})]


def _register() -> None:
    """Put the Bokeh page on every dashboard this process builds from now on."""
    try:
        from daskscale.adapters.distributed import register
        from daskscale.dashboard_page import metrics_doc
    except ImportError:  # no Bokeh: distributed serves no dashboard pages either, the JSON route stays
        return
    register(PAGE, PAGE_NAME, metrics_doc)


_register()


class DashboardPlugin(SchedulerPlugin):
    """Adds the daskscale JSON route and page to a running scheduler's dashboard (idempotent)."""

    name = "daskscale-dashboard"

    async def start(self, scheduler: Any) -> None:
        from daskscale.adapters.distributed import serve_on
        from daskscale.dashboard_page import metrics_doc

        app = getattr(scheduler, "http_application", None)
        if app is None or getattr(app, "_daskscale_routes", False):
            return
        if not any(getattr(r, "regex", None) is not None and r.regex.pattern.startswith(JSON_PATH)
                   for rule in app.default_router.rules for r in getattr(rule.target, "rules", [])):
            app.add_handlers(r".*", [(p, cls, {"dask_server": scheduler}) for p, cls, _ in routes])
        serve_on(scheduler, PAGE, PAGE_NAME, metrics_doc)
        app._daskscale_routes = True


def install(client: Any) -> str | None:
    """Serve the daskscale page on ``client``'s scheduler; return its URL (``None`` without dashboard).

    Examples
    --------
    >>> import daskscale
    >>> with daskscale.connect(n_workers=1, memory_limit="512MiB", quiet=True) as conn:
    ...     install(conn.client).endswith("/daskscale")
    True
    """
    client.register_plugin(DashboardPlugin())
    return page_url(client)


def page_url(client: Any) -> str | None:
    """URL of the daskscale page on ``client``'s dashboard, or ``None`` if it has none."""
    link = client.dashboard_link
    if not link:
        return None
    return link.rsplit("/status", 1)[0].rstrip("/") + PAGE
