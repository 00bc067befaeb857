"""The daskscale page of the Dask dashboard, as a Bokeh document.

One table row per run (loss, score, rows/s, blocks and rows done, epoch, drift events, last
update), one figure each for loss, score and throughput over time with a line per run and
the drift events as dashed red lines, and the table of events. A periodic callback on the
scheduler folds what is new in its event log (topic :data:`daskscale.monitor.METRICS_TOPIC`)
into a :class:`~daskscale.dashboard_view.RunsView` and updates the sources: the page is live
without reloading.
"""

from __future__ import annotations

import time
from typing import Any

from bokeh.layouts import column, row
from bokeh.models import (ColumnDataSource, DataTable, DatetimeTickFormatter, Div, HoverTool, Legend,
                          NumeralTickFormatter, TableColumn)
from bokeh.palettes import Category10_10
from bokeh.plotting import figure

from daskscale.adapters.distributed import use_dashboard_template
from daskscale.dashboard_view import COLUMNS, SERIES, RunsView
from daskscale.monitor import HISTORY, METRICS_TOPIC

__all__ = ["MetricsPage", "metrics_doc", "UPDATE_MS"]

#: how often an open page folds new messages (milliseconds)
UPDATE_MS = 1000
# Bokeh draws datetimes in UTC: the events table says its times in UTC too
_EVENT_COLUMNS = (("run", "run"), ("time", "time (UTC)"), ("event", "event"), ("details", "details"))
_DRIFT_COLOR = "#d62728"


def _clock() -> DatetimeTickFormatter:
    """Ticks as a wall clock (a model belongs to one document: one per figure)."""
    return DatetimeTickFormatter(milliseconds="%H:%M:%S.%3N", seconds="%H:%M:%S", minsec="%H:%M:%S",
                                 minutes="%H:%M", hourmin="%H:%M", hours="%H:%M", context=None)


def _table(columns: tuple[tuple[str, str], ...], height: int) -> tuple[ColumnDataSource, DataTable]:
    source = ColumnDataSource({key: [] for key, _ in columns})
    table = DataTable(source=source, columns=[TableColumn(field=k, title=t) for k, t in columns],
                      index_position=None, height=height, sizing_mode="stretch_width", reorderable=False)
    return source, table


def _set(source: ColumnDataSource, data: dict[str, list]) -> None:
    if source.data != data:  # an unchanged source sends nothing to the browser
        source.data = data


class MetricsPage:
    """The models of one open page and the callback that keeps them current."""

    def __init__(self, scheduler: Any):
        self.scheduler = scheduler
        self.view = RunsView(history=HISTORY)
        self._last: Any = None
        self.header = Div(sizing_mode="stretch_width")
        self.runs, self.runs_table = _table(COLUMNS, height=150)
        self.drift = ColumnDataSource({"time": []})
        self.figures = {key: self._figure(title, label) for key, title, label in SERIES}
        self.lines: dict[tuple[str, str], ColumnDataSource] = {}
        self.events, self.events_table = _table(_EVENT_COLUMNS, height=180)
        self.root = column(self.header, self.runs_table, row(*self.figures.values(), sizing_mode="stretch_width"),
                           Div(text="<h3>Events: drift, checkpoints</h3>"), self.events_table,
                           sizing_mode="stretch_width")

    def _figure(self, title: str, y_label: str) -> Any:
        fig = figure(title=title, x_axis_type="datetime", x_axis_label="time (UTC)", y_axis_label=y_label,
                     height=320, sizing_mode="stretch_width", tools="pan,wheel_zoom,box_zoom,reset,save")
        fig.xaxis.formatter = _clock()
        fig.yaxis.formatter = NumeralTickFormatter(format="0,0" if y_label == "rows / s" else "0.[000]")
        # below the plot, where it hides no line; the line of each run joins it (legend_label)
        fig.add_layout(Legend(orientation="horizontal", click_policy="hide", label_text_font_size="9pt"), "below")
        fig.vspan(x="time", source=self.drift, line_color=_DRIFT_COLOR, line_dash="dashed", line_width=2,
                  legend_label="drift")
        fig.add_tools(HoverTool(tooltips=[("run", "@run"), (y_label, "@value{0.[0000]}"),
                                          ("time", "@time{%H:%M:%S}")], formatters={"@time": "datetime"}))
        return fig

    def _new_messages(self) -> list[Any]:
        """Messages logged since the last update (all of them when the log rotated past it)."""
        log = self.scheduler.get_events(METRICS_TOPIC)
        if self._last is not None:
            for i in range(len(log) - 1, -1, -1):
                if log[i] is self._last:
                    new = log[i + 1:]
                    break
            else:
                self.view = RunsView(history=HISTORY)
                new = log
        else:
            new = log
        if log:
            self._last = log[-1]
        return [msg for _, msg in new]

    def update(self) -> None:
        """Fold the new messages and update every source of the page."""
        self.view.extend(self._new_messages())
        now = time.time()
        rows = self.view.rows(now)
        _set(self.runs, {key: [r[key] for r in rows] for key, _ in COLUMNS})
        self.runs_table.height = 40 + 28 * max(1, len(rows))
        for i, run in enumerate(self.view.runs.values()):
            for key, _, _ in SERIES:
                points = run.series.get(key)
                if not points:
                    continue
                source = self.lines.get((run.name, key))
                if source is None:
                    source = self.lines[(run.name, key)] = ColumnDataSource({"time": [], "value": [], "run": []})
                    color = Category10_10[i % len(Category10_10)]
                    self.figures[key].line("time", "value", source=source, line_width=2, legend_label=run.name,
                                           color=color)
                    if key == "score":  # one point per epoch: the markers show where they are
                        self.figures[key].scatter("time", "value", source=source, size=6, color=color,
                                                  legend_label=run.name)
                _set(source, {"time": [t * 1000 for t, _ in points], "value": [v for _, v in points],
                              "run": [run.name] * len(points)})
        events = self.view.events()
        _set(self.drift, {"time": [e["time"] * 1000 for e in events if e["event"] == "drift"]})
        _set(self.events, {"run": [e["run"] for e in events],
                           "time": [time.strftime("%H:%M:%S", time.gmtime(e["time"])) for e in events],
                           "event": [e["event"] for e in events], "details": [e["details"] for e in events]})
        self.header.text = self._header(len(rows), len(events))

    def _header(self, n_runs: int, n_events: int) -> str:
        if not n_runs:
            summary = ("No run has published metrics yet: fits, searches and streams show up here while "
                       "they run.")
        else:
            summary = f"{n_runs} run{'s' * (n_runs != 1)}, {n_events} event{'s' * (n_events != 1)}."
        return (f"<h2>daskscale: training and streaming runs</h2><p>{summary} Updated every "
                f"{UPDATE_MS / 1000:g} s from the scheduler's event log; the same data as JSON at "
                f"<a href='daskscale/metrics.json'>daskscale/metrics.json</a>.</p>")


def metrics_doc(scheduler: Any, extra: dict, doc: Any) -> None:
    """Build the page in ``doc`` (the signature distributed's dashboard calls its pages with)."""
    page = MetricsPage(scheduler)
    page.update()
    doc.add_root(page.root)
    use_dashboard_template(doc, extra, "Dask: daskscale")
    doc.add_periodic_callback(page.update, UPDATE_MS)
