"""A daskscale page on the Dask dashboard: live training and streaming metrics.

Served by the scheduler's own HTTP server (the one behind the Dask dashboard), next to the
standard task stream (``/status``) and worker memory (``/workers``) pages:

- ``/daskscale``: an HTML page, refreshed every 2 s, with one row per run (latest loss,
  score, rows/s, ...), a small chart of each run's loss and score, and the drift events;
- ``/daskscale/metrics.json``: the same as JSON (:func:`daskscale.monitor.summarize`).

The data are the ``"daskscale-metrics"`` events that :class:`daskscale.monitor.MetricsPublisher`
sends from the client or from tasks on workers; the scheduler keeps them in its event log.

Two documented extension points put the page there:

- ``routes`` below, for the ``distributed.scheduler.http.routes`` config list; this is how
  :func:`daskscale.connect` starts its local cluster, and how a scheduler started elsewhere
  can serve it (``DASK_DISTRIBUTED__SCHEDULER__HTTP__ROUTES``);
- :func:`install`, which registers :class:`DashboardPlugin` (a ``SchedulerPlugin``) on a running
  scheduler through ``Client.register_plugin``; the plugin adds the routes to the scheduler's
  ``http_application``.
"""

from __future__ import annotations

import html
import json
import time
from typing import Any

from distributed.diagnostics.plugin import SchedulerPlugin
from distributed.http.utils import RequestHandler

from daskscale.monitor import METRICS_TOPIC, summarize

__all__ = ["routes", "DashboardPlugin", "install", "page_url", "render_page", "PAGE", "JSON_PATH"]

PAGE = "/daskscale"
JSON_PATH = "/daskscale/metrics.json"
_SHOWN = ("loss", "score", "rows_per_s", "rows", "epoch", "block")


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


class MetricsPage(RequestHandler):
    def get(self) -> None:
        self.set_header("Content-Type", "text/html; charset=utf-8")
        self.set_header("Cache-Control", "no-store")
        self.write(render_page(_summary(self.server)))


#: for the ``distributed.scheduler.http.routes`` config (module name ``"daskscale.dashboard"``)
routes: list[tuple] = [(PAGE, MetricsPage, {}), (JSON_PATH, MetricsJSON, {})]


def _fmt(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.4g}" if abs(v) < 1e3 else f"{v:,.0f}"
    if isinstance(v, int) and not isinstance(v, bool):
        return f"{v:,}"
    return html.escape(str(v))


def _sparkline(points: list[list[float]], color: str, w: int = 260, h: int = 48) -> str:
    if len(points) < 2:
        return ""
    ts = [p[0] for p in points]
    vs = [p[1] for p in points]
    t0, t1 = min(ts), max(ts) or 1
    v0, v1 = min(vs), max(vs)
    sx = (w - 4) / ((t1 - t0) or 1)
    sy = (h - 4) / ((v1 - v0) or 1)
    pts = " ".join(f"{2 + (t - t0) * sx:.1f},{h - 2 - (v - v0) * sy:.1f}" for t, v in zip(ts, vs))
    return (f'<svg width="{w}" height="{h}" role="img"><polyline fill="none" stroke="{color}" '
            f'stroke-width="2" points="{pts}"/></svg>')


def render_page(summary: dict[str, Any]) -> str:
    """The HTML of the ``/daskscale`` page for a :func:`daskscale.monitor.summarize` result.

    Examples
    --------
    >>> from daskscale.monitor import summarize
    >>> page = render_page(summarize([{"run": "fit-1", "time": 1.0, "loss": 0.25}]))
    >>> "fit-1" in page and "0.25" in page
    True
    """
    runs = summary.get("runs", {})
    now = summary.get("now", time.time())
    extra = sorted({k for r in runs.values() for k in r["latest"]} - set(_SHOWN) - {"last_event"})
    cols = [c for c in _SHOWN if any(c in r["latest"] for r in runs.values())] + extra
    head = "".join(f"<th>{html.escape(c)}</th>" for c in ["run", "messages", "updated", *cols, "loss / score"])
    rows = []
    for name, r in sorted(runs.items(), key=lambda kv: -kv[1]["updated"]):
        cells = [f"<td class=run>{html.escape(name)}</td>", f"<td>{r['n_messages']}</td>",
                 f"<td>{max(0.0, now - r['updated']):.0f} s ago</td>"]
        cells += [f"<td>{_fmt(r['latest'][c]) if c in r['latest'] else ''}</td>" for c in cols]
        hist = r.get("history", {})
        cells.append("<td>" + _sparkline(hist.get("loss", []), "#d62728")
                     + _sparkline(hist.get("score", []), "#1f77b4") + "</td>")
        rows.append("<tr>" + "".join(cells) + "</tr>")
    events = summary.get("events", [])
    ev_rows = "".join(
        "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>".format(
            html.escape(str(e.get("run", ""))), html.escape(str(e.get("event", ""))),
            time.strftime("%H:%M:%S", time.localtime(float(e.get("time", 0)))),
            html.escape(", ".join(f"{k}={_fmt(v)}" for k, v in e.items() if k not in ("run", "event", "time"))))
        for e in reversed(events[-50:]))
    return f"""<!doctype html><html><head><meta charset="utf-8"><meta http-equiv="refresh" content="2">
<title>daskscale metrics</title><style>
body{{font-family:sans-serif;margin:1.2em;color:#222}} table{{border-collapse:collapse;margin-bottom:1.5em}}
th,td{{border-bottom:1px solid #ddd;padding:4px 10px;text-align:right;vertical-align:middle}}
th{{background:#f3f3f3}} td.run{{text-align:left;font-family:monospace}} .muted{{color:#777}}
.key span{{display:inline-block;width:12px;height:4px;margin:0 4px 2px 10px}}</style></head><body>
<h2>daskscale: training and streaming metrics</h2>
<p class=muted>{len(runs)} run(s), {summary.get('n_workers', '?')} worker(s), topic
<code>{html.escape(str(summary.get('topic', METRICS_TOPIC)))}</code>; refreshes every 2 s.
Standard pages: <a href="status">task stream</a> &middot; <a href="workers">workers / memory</a> &middot;
<a href="daskscale/metrics.json">JSON</a><span class=key><span style="background:#d62728"></span>loss
<span style="background:#1f77b4"></span>score</span></p>
<table><thead><tr>{head}</tr></thead><tbody>{''.join(rows) or '<tr><td>no metrics published yet</td></tr>'}</tbody></table>
<h3>Events (drift, checkpoints)</h3>
<table><thead><tr><th>run</th><th>event</th><th>time</th><th>details</th></tr></thead>
<tbody>{ev_rows or '<tr><td colspan=4>none</td></tr>'}</tbody></table></body></html>"""


class DashboardPlugin(SchedulerPlugin):
    """Adds the daskscale routes to a running scheduler's HTTP server (idempotent)."""

    name = "daskscale-dashboard"

    async def start(self, scheduler: Any) -> None:
        app = getattr(scheduler, "http_application", None)
        if app is None or getattr(app, "_daskscale_routes", False):
            return
        if not any(getattr(r, "regex", None) is not None and r.regex.pattern.startswith(PAGE)
                   for rule in app.default_router.rules for r in getattr(rule.target, "rules", [])):
            app.add_handlers(r".*", [(p, cls, {"dask_server": scheduler}) for p, cls, _ in routes])
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
