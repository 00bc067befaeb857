"""The one place daskscale reaches into distributed's internals: the dashboard, the progress bar.

- :func:`watch_tasks`: task progress of a future, from distributed's ``TextProgressBar``,
  whose drawing methods ``_draw_bar(remaining=, all=)`` / ``_draw_stop`` are overridden (not a
  public API; the ``progress`` plugin is the documented route, but it draws its own bar).

distributed documents how to add HTTP routes to the scheduler (the
``distributed.scheduler.http.routes`` config), but not how to add a Bokeh page to its
dashboard or an entry to the dashboard's navigation bar. What this module relies on, as
distributed 2024-2026 has it (``distributed/dashboard/scheduler.py``):

- ``applications``: the dict ``path -> doc function(scheduler, extra, doc)`` from which
  ``connect()`` builds the scheduler's Bokeh server, once, when the scheduler starts
  (after it imported the route modules);
- ``template_variables(scheduler)``: memoised per scheduler; its ``"pages"`` list is the
  navigation bar, shared by reference with every page's template (``extra``);
- ``distributed.dashboard.core.BokehApplication`` and ``http_application.add_application``,
  which ``connect()`` uses, to serve a page on a scheduler whose dashboard already runs;
- ``distributed.dashboard.components.scheduler``'s ``env`` (the dashboard's Jinja templates,
  ``simple.html`` draws the navigation bar) and ``BOKEH_THEME``.

:func:`check` asserts all of that; ``tests/test_dashboard.py`` runs it, so a distributed
release that moves any of it fails there, loudly, by name.
"""

from __future__ import annotations

from typing import Any, Callable

__all__ = ["register", "serve_on", "in_navigation", "use_dashboard_template", "check", "watch_tasks"]

DocFunction = Callable[[Any, dict, Any], None]


def _dash() -> Any:
    from distributed.dashboard import scheduler as dash  # imports bokeh: only when a page is wanted

    return dash


def register(path: str, name: str, doc_function: DocFunction) -> None:
    """Serve ``doc_function`` at ``path`` on every scheduler dashboard this process starts from now
    on, with ``name`` in the navigation bar (idempotent)."""
    dash = _dash()
    dash.applications[path] = doc_function
    original = dash.template_variables
    if name in getattr(original, "daskscale_pages", ()):
        return

    def template_variables(scheduler: Any) -> dict:
        variables = original(scheduler)  # memoised: the same dict, the same "pages" list, every call
        for page in template_variables.daskscale_pages:
            if page not in variables["pages"]:
                variables["pages"].append(page)
        return variables

    template_variables.daskscale_pages = (*getattr(original, "daskscale_pages", ()), name)
    dash.template_variables = template_variables


def serve_on(scheduler: Any, path: str, name: str, doc_function: DocFunction) -> bool:
    """Add the page to ``scheduler``'s running dashboard; ``False`` if it has none.

    For a scheduler started without the route module (a plain ``dask scheduler``): its Bokeh
    server exists already, so the page gets a Bokeh server of its own on the same HTTP
    server, with the same template variables (so the same, now longer, navigation bar).
    """
    from tornado.ioloop import IOLoop

    from distributed.dashboard.core import BokehApplication

    app = getattr(scheduler, "http_application", None)
    bokeh_apps = [a for a in getattr(app, "applications", []) if hasattr(a, "app_paths")]
    if not bokeh_apps:
        return False
    register(path, name, doc_function)
    variables = _dash().template_variables(scheduler)
    if not any(path in a.app_paths for a in bokeh_apps):
        page = BokehApplication({path: doc_function}, scheduler, prefix=bokeh_apps[0].prefix,
                                template_variables=variables)
        app.add_application(page)
        page.initialize(IOLoop.current())
        page.start()
    return True


def in_navigation(scheduler: Any) -> list[str]:
    """The page names in ``scheduler``'s dashboard navigation bar."""
    return list(_dash().template_variables(scheduler)["pages"])


def use_dashboard_template(doc: Any, extra: dict, title: str) -> None:
    """Give ``doc`` the dashboard's page template (navigation bar included) and theme.

    Examples
    --------
    >>> from bokeh.document import Document
    >>> doc = Document()
    >>> use_dashboard_template(doc, {"pages": ["status", "daskscale"]}, "Dask: daskscale")
    >>> doc.title, doc.template_variables["pages"]
    ('Dask: daskscale', ['status', 'daskscale'])
    """
    from distributed.dashboard.components.scheduler import BOKEH_THEME, env

    doc.title = title
    doc.template = env.get_template("simple.html")
    doc.template_variables.update(extra)
    doc.theme = BOKEH_THEME


def check() -> None:
    """Raise ``AssertionError`` naming what changed if distributed no longer has what this module uses.

    Examples
    --------
    >>> check()  # distributed as installed has all of it
    """
    import inspect

    from distributed.dashboard import core
    from distributed.dashboard.components import scheduler as components

    dash = _dash()
    assert isinstance(dash.applications, dict) and "/status" in dash.applications, \
        "distributed.dashboard.scheduler.applications is no longer the dict of dashboard pages"
    assert "template_variables" in inspect.getsource(dash.connect), \
        "distributed.dashboard.scheduler.connect no longer takes the navigation from template_variables"
    probe = _Probe()
    assert dash.template_variables(probe) is dash.template_variables(probe), \
        "distributed.dashboard.scheduler.template_variables is no longer memoised per scheduler"
    assert isinstance(dash.template_variables(probe)["pages"], list), \
        "distributed.dashboard.scheduler.template_variables()['pages'] is no longer the navigation's list"
    assert list(inspect.signature(core.BokehApplication).parameters)[:4] == \
        ["applications", "server", "prefix", "template_variables"], \
        "distributed.dashboard.core.BokehApplication changed its signature"
    assert components.env.get_template("simple.html") is not None and components.BOKEH_THEME is not None, \
        "distributed.dashboard.components.scheduler no longer has env (simple.html) and BOKEH_THEME"


class _Probe:
    """Stands in for a scheduler in :func:`check` (``template_variables`` reads ``jupyter``)."""

    jupyter = False


def watch_tasks(future: Any, on_progress: Callable[[int, int], None]) -> None:
    """Call ``on_progress(done, total)`` as the tasks of ``future`` finish; return when it is done."""
    from distributed.diagnostics.progressbar import TextProgressBar

    class _Tasks(TextProgressBar):
        def _draw_bar(self, remaining: int, all: int, **kw: Any) -> None:  # noqa: A002 - distributed's name
            on_progress(all - remaining, all)

        def _draw_stop(self, **kw: Any) -> None:
            pass

    _Tasks([future], complete=True)  # returns when the graph is done (or failed)
