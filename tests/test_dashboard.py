"""The daskscale page on the Dask dashboard shows the metrics a running fit publishes.

The page is a Bokeh document: what it shows is checked in a real browser (headless Debian
chromium driven by selenium through chromium-driver), after following the dashboard's own
navigation bar to it.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request

import pytest

import daskscale
from daskscale.dashboard import PAGE_NAME, DashboardPlugin, install, page_url
from daskscale.adapters.distributed import check, in_navigation
from daskscale.dashboard_view import RunsView
from daskscale.monitor import MetricsPublisher

#: names trainers publish that are bookkeeping, not something a person reads on the page
INTERNAL = ("epoch_done", "blocks_done", "blocks_total", "rows_per_s", "rows_seen", "blocks (", "step", "'blocks'",
            "True", "[")


def _fit_publishing(run: str, n_blocks: int, seed: int, epochs: int = 1) -> dict:
    """A small incremental fit, run as a task, publishing what daskscale's training loop publishes.

    Per block: ``blocks_done`` (and ``blocks_total``), ``epoch``, ``step``, ``blocks`` (the block
    indices), ``rows``, ``loss``, ``rows_per_s``, ``rows_seen``; per epoch: ``score`` with
    ``epoch_done=True``; a drift event half way.
    """
    import numpy as np
    from sklearn.linear_model import SGDClassifier

    rng = np.random.default_rng(seed)
    w = rng.normal(size=5)
    model = SGDClassifier(loss="log_loss", random_state=0)
    pub = MetricsPublisher(run, min_interval=0.0)
    last: dict = {}
    total = epochs * n_blocks
    done = 0
    for epoch in range(epochs):
        for b in range(n_blocks):
            t = time.perf_counter()
            X = rng.normal(size=(2_000, 5))
            y = (X @ w > 0).astype(int)
            model.partial_fit(X, y, classes=[0, 1])
            p = np.clip(model.predict_proba(X)[:, 1], 1e-9, 1 - 1e-9)
            done += 1
            block = {"loss": float(-np.mean(y * np.log(p) + (1 - y) * np.log(1 - p))), "blocks_done": done,
                     "rows_per_s": 2_000 / (time.perf_counter() - t)}
            pub.publish(blocks_total=total, epoch=epoch, step=b, blocks=[b], rows=2_000, rows_seen=done * 2_000,
                        **block)
            last.update(block)
            if done == total // 2:
                pub.event("drift", row=done * 2_000, detector="ADWIN")
        X = rng.normal(size=(4_000, 5))
        last["score"] = float(model.score(X, (X @ w > 0).astype(int)))
        pub.publish(force=True, epoch=epoch, score=last["score"], blocks_done=done, epoch_done=True, rows_per_s=1e5)
    return last


def _get(url: str) -> bytes:
    with urllib.request.urlopen(url, timeout=10) as r:
        assert r.status == 200
        return r.read()


@pytest.fixture(scope="module")
def dash_conn():
    conn = daskscale.connect(n_workers=1, threads_per_worker=1, memory_limit="600MiB",
                             dashboard_address="127.0.0.1:0", quiet=True)
    yield conn
    conn.close()


@pytest.fixture(scope="module")
def fit_dash(dash_conn):
    """The final metrics of a 2-epoch fit (12 blocks) that ran as a task and published."""
    return dash_conn.submit(_fit_publishing, "fit-dash", 6, 0, 2, pure=False).result(timeout=60)


# ---------------------------------------------------------------------------------------- browser
_TEXT_JS = """
const out = [];
function walk(n) {
  if (n.nodeType === Node.TEXT_NODE) { out.push(n.nodeValue); return; }
  if (n.nodeName === "STYLE" || n.nodeName === "SCRIPT") return;
  if (n.shadowRoot) walk(n.shadowRoot);
  for (const c of n.childNodes) walk(c);
}
walk(document.body);
return out.join(" ");
"""
# elements by tag name, shadow roots included (Bokeh 3 draws each view in a shadow root)
_COUNT_JS = """
const tag = arguments[0].toUpperCase(), text = arguments[1];
let n = 0;
function walk(e) {
  if (e.nodeName === tag && (!text || e.textContent.includes(text))) n++;
  if (e.shadowRoot) walk(e.shadowRoot);
  for (const c of e.children || []) walk(c);
}
walk(document.documentElement);
return n;
"""
# the figures of the page's Bokeh document: title and axis labels
_FIGURES_JS = """
const docs = (window.Bokeh && Bokeh.documents) || [];
const out = [];
for (const doc of docs) for (const m of doc.all_models) {
  if (m.title !== undefined && m.below !== undefined && m.left !== undefined && m.renderers !== undefined)
    out.push({title: m.title && m.title.text, x: m.below.filter(a => "axis_label" in a).map(a => a.axis_label),
              y: m.left.filter(a => "axis_label" in a).map(a => a.axis_label),
              lines: m.renderers.length});
}
return out;
"""


@pytest.fixture(scope="module")
def browser():
    chromium, driver = shutil.which("chromium"), shutil.which("chromedriver")
    if not chromium or not driver:
        pytest.skip("the browser test needs Debian's chromium and chromium-driver "
                    "(apt-get install chromium chromium-driver; .ci/run installs them)")
    from selenium import webdriver

    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                "--window-size=1600,1300"):
        options.add_argument(arg)
    # the system's chromedriver, so selenium never looks for (or downloads) another
    b = webdriver.Chrome(options=options, service=webdriver.ChromeService(executable_path=driver))
    yield b
    b.quit()


def _text(browser) -> str:
    return browser.execute_script(_TEXT_JS)


def _wait_for_text(browser, *needles: str, timeout: float = 30) -> str:
    from selenium.webdriver.support.ui import WebDriverWait

    WebDriverWait(browser, timeout).until(lambda b: all(n in _text(b) for n in needles),
                                          f"the page never showed {needles}")
    return _text(browser)


def _open_from_navigation(browser, base: str) -> None:
    """Open the dashboard's main page, then the daskscale page through its navigation bar."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    browser.get(base + "/")
    WebDriverWait(browser, 30).until(ec.url_contains("/status"))
    link = WebDriverWait(browser, 30).until(ec.element_to_be_clickable((By.LINK_TEXT, PAGE_NAME.title())))
    link.click()
    WebDriverWait(browser, 30).until(ec.url_to_be(base + "/daskscale"))


def test_page_in_navigation_shows_a_fits_metrics(dash_conn, fit_dash, browser):
    base = page_url(dash_conn.client).rsplit("/daskscale", 1)[0]
    _open_from_navigation(browser, base)
    loss, score = f"{fit_dash['loss']:.4g}", f"{fit_dash['score']:.4g}"
    text = _wait_for_text(browser, "fit-dash", score)
    # the run's row: what the fit published last, computed on the worker, as a person reads it
    assert loss in text and score in text
    assert "12 of 12 blocks" in text and "24,000 rows" in text and "ADWIN" in text and "row 12,000" in text
    for title in ("loss", "score", "rows/s", "done", "epoch", "drift events"):
        assert title in text
    for name in INTERNAL:
        assert name not in text, f"the page shows the internal {name!r}"
    figures = {f["title"]: f for f in browser.execute_script(_FIGURES_JS)}
    assert set(figures) >= {"Loss", "Score", "Throughput"}
    assert figures["Loss"]["x"] == ["time (UTC)"] and figures["Loss"]["y"] == ["loss"]
    assert figures["Throughput"]["y"] == ["rows / s"]
    assert all(figures[t]["lines"] >= 2 for t in ("Loss", "Score", "Throughput"))  # drift spans + a run's line
    assert browser.execute_script(_COUNT_JS, "canvas", "") >= 3


def test_page_updates_itself_while_open(dash_conn, fit_dash, browser):
    base = page_url(dash_conn.client).rsplit("/daskscale", 1)[0]
    if not browser.current_url.endswith("/daskscale"):
        _open_from_navigation(browser, base)
    _wait_for_text(browser, "fit-dash")
    assert "fit-late" not in _text(browser)
    dash_conn.submit(_fit_publishing, "fit-late", 4, 2, pure=False).result(timeout=60)
    text = _wait_for_text(browser, "fit-late", "4 of 4 blocks", timeout=30)  # no reload: the page's callback
    assert "fit-dash" in text


def test_page_escapes_untrusted_text(dash_conn, browser):
    MetricsPublisher("<b>bold-run</b>", client=dash_conn.client).event("drift", detector="<i>italic</i>")
    base = page_url(dash_conn.client).rsplit("/daskscale", 1)[0]
    browser.get(base + "/daskscale")
    _wait_for_text(browser, "<b>bold-run</b>", "<i>italic</i>")  # shown as typed
    assert browser.execute_script(_COUNT_JS, "b", "bold-run") == 0
    assert browser.execute_script(_COUNT_JS, "i", "italic") == 0


def test_plugin_adds_the_page_to_a_running_plain_scheduler(tmp_path, browser):
    """``install`` on a ``dask scheduler`` started elsewhere, without daskscale's route module."""
    from distributed import Client

    env = {k: v for k, v in os.environ.items() if not k.startswith("DASK_")}
    sched_file = tmp_path / "scheduler.json"
    proc = subprocess.Popen([sys.executable, "-m", "distributed.cli.dask_scheduler", "--host", "127.0.0.1",
                             "--port", "0", "--dashboard-address", "127.0.0.1:0", "--scheduler-file",
                             str(sched_file)], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.time() + 60
        while not sched_file.exists() and time.time() < deadline:
            time.sleep(0.2)
        with Client(scheduler_file=str(sched_file), timeout=30) as client:
            base = client.dashboard_link.rsplit("/status", 1)[0]
            assert base.startswith("http://127.0.0.1:")
            with pytest.raises(urllib.error.HTTPError):
                _get(base + "/daskscale")
            assert 'href="daskscale"' not in _get(base + "/status").decode()
            assert install(client) == base + "/daskscale"
            install(client)  # idempotent
            MetricsPublisher("plain", client=client).publish(score=0.75)
            assert json.loads(_get(base + "/daskscale/metrics.json"))["runs"]["plain"]["latest"]["score"] == 0.75
            assert DashboardPlugin.name in client.run_on_scheduler(lambda dask_scheduler: list(dask_scheduler.plugins))
            _open_from_navigation(browser, base)
            assert "0.75" in _wait_for_text(browser, "plain")
    finally:
        proc.terminate()
        proc.wait(timeout=30)


# ------------------------------------------------------------------------------------ no browser
def test_metrics_json_has_what_the_fit_published(dash_conn, fit_dash):
    url = page_url(dash_conn.client)
    assert url.startswith("http://127.0.0.1:") and url.endswith("/daskscale")
    data = json.loads(_get(url + "/metrics.json"))
    run = data["runs"]["fit-dash"]
    assert run["latest"]["loss"] == pytest.approx(fit_dash["loss"])
    assert run["latest"]["score"] == pytest.approx(fit_dash["score"])
    assert run["latest"]["blocks_done"] == 12 and len(run["history"]["loss"]) == 12
    assert [e["event"] for e in data["events"] if e["run"] == "fit-dash"] == ["drift"]
    assert data["events"][0]["row"] == 12_000


def test_metrics_json_updates_while_the_fit_runs(dash_conn):
    url = page_url(dash_conn.client) + "/metrics.json"
    seen = []
    stop = threading.Event()

    def poll():
        while not stop.is_set():
            r = json.loads(_get(url))["runs"].get("fit-live")
            if r:
                seen.append(r["n_messages"])
            time.sleep(0.05)

    t = threading.Thread(target=poll)
    t.start()
    try:
        dash_conn.submit(_fit_publishing, "fit-live", 40, 1, pure=False).result(timeout=60)
    finally:
        time.sleep(0.2)
        stop.set()
        t.join()
    assert seen and seen[-1] == 42  # 40 blocks + 1 drift event + 1 end of epoch
    assert len(set(seen)) >= 2, "the JSON never showed a fit in progress"


def test_distributed_dashboard_internals_are_where_daskscale_expects_them(dash_conn):
    check()  # names what changed in distributed.dashboard if it fails
    pages = dash_conn.client.run_on_scheduler(lambda dask_scheduler: in_navigation(dask_scheduler))
    assert pages[:2] == ["status", "workers"] and PAGE_NAME in pages
    base = page_url(dash_conn.client).rsplit("/daskscale", 1)[0]
    assert "bokeh" in _get(base + "/daskscale").decode().lower()  # a Bokeh document, not hand-built HTML
    assert 'href="daskscale"' in _get(base + "/status").decode()


def test_view_shows_a_training_loop_in_user_terms():
    view = RunsView()
    msgs = [{"run": "fit", "time": 10.0 + b, "blocks_done": b + 1, "blocks_total": 8, "epoch": b // 4, "step": b % 4,
             "blocks": [b], "rows": 1000, "loss": 1.0 / (b + 1), "rows_per_s": 5e4 + b, "rows_seen": 1000 * (b + 1)}
            for b in range(6)]
    msgs.insert(3, {"run": "fit", "time": 13.5, "epoch": 0, "score": 0.8125, "blocks_done": 4, "epoch_done": True,
                    "rows_per_s": 9e9})
    view.extend(msgs)
    row = view.rows(now=20.0)[0]
    assert row == {"run": "fit", "loss": "0.1667", "score": "0.8125", "rows_per_s": "50,005",
                   "progress": "6 of 8 blocks, 6,000 rows", "epoch": "2", "drifts": "0", "updated": "5 s ago"}
    run = view.runs["fit"]
    assert [v for _, v in run.series["loss"]] == pytest.approx([1.0 / (b + 1) for b in range(6)])
    assert 9e9 not in [v for _, v in run.series["rows_per_s"]]  # an epoch's summary is no per-block point


def test_view_counts_the_online_learners_drift():
    view = RunsView()
    for i in range(5):
        view.add({"run": "stream", "time": float(i), "batch": i, "rows": 500, "accuracy": 0.9,
                  "rolling_accuracy": 0.5 + i / 10, "latency_s": 0.01, "lag_rows": 500, "drift": i == 3})
    row = view.rows(now=5.0)[0]
    assert (row["score"], row["drifts"], row["progress"]) == ("0.9", "1", "5 batches")
    assert [e["event"] for e in view.events()] == ["drift"]


def test_dashboard_binds_loopback_by_default(dash_conn):
    assert dash_conn.dashboard_link.startswith("http://127.0.0.1:")
    assert dash_conn.describe()["scheduler"].startswith("tcp://127.0.0.1:")
