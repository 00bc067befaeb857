"""The daskscale page on the Dask dashboard shows the metrics a running fit publishes."""

from __future__ import annotations

import json
import threading
import time
import urllib.request

import pytest

import daskscale
from daskscale.dashboard import DashboardPlugin, install, page_url, render_page
from daskscale.monitor import MetricsPublisher, summarize


def _fit_publishing(run: str, n_blocks: int, seed: int) -> dict:
    """A small incremental fit that publishes what daskscale trainers publish, from a task."""
    import numpy as np
    from sklearn.linear_model import SGDClassifier

    rng = np.random.default_rng(seed)
    w = rng.normal(size=5)
    model = SGDClassifier(loss="log_loss", random_state=0)
    pub = MetricsPublisher(run, min_interval=0.0)
    last = {}
    for b in range(n_blocks):
        t = time.perf_counter()
        X = rng.normal(size=(2_000, 5))
        y = (X @ w > 0).astype(int)
        if b:
            last = {"score": float(model.score(X, y))}
        model.partial_fit(X, y, classes=[0, 1])
        p = np.clip(model.predict_proba(X)[:, 1], 1e-9, 1 - 1e-9)
        last.update(loss=float(-np.mean(y * np.log(p) + (1 - y) * np.log(1 - p))), block=b,
                    rows_per_s=2_000 / (time.perf_counter() - t))
        pub.publish(**last)
        if b == n_blocks // 2:
            pub.event("drift", row=b * 2_000, detector="ADWIN")
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


def test_page_shows_the_metrics_of_a_running_fit(dash_conn):
    url = page_url(dash_conn.client)
    assert url.startswith("http://127.0.0.1:") and url.endswith("/daskscale")
    fut = dash_conn.submit(_fit_publishing, "fit-dash", 12, 0, pure=False)
    final = fut.result(timeout=60)
    data = json.loads(_get(url + "/metrics.json"))
    run = data["runs"]["fit-dash"]
    # the page shows exactly what the fit published last, computed on the worker
    assert run["latest"]["loss"] == pytest.approx(final["loss"])
    assert run["latest"]["score"] == pytest.approx(final["score"])
    assert run["latest"]["block"] == 11 and len(run["history"]["loss"]) == 12
    assert [e["event"] for e in data["events"]] == ["drift"] and data["events"][0]["row"] == 12_000
    page = _get(url).decode()
    assert "fit-dash" in page and "<svg" in page and "ADWIN" in page
    assert f"{final['loss']:.4g}" in page and f"{final['score']:.4g}" in page


def test_page_updates_while_the_fit_runs(dash_conn):
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
    assert seen and seen[-1] == 41  # 40 blocks + 1 drift event
    assert len(set(seen)) >= 2, "the page never showed a fit in progress"


def test_plugin_adds_the_page_to_a_plain_distributed_scheduler():
    from distributed import Client, LocalCluster

    with LocalCluster(n_workers=1, processes=False, protocol="tcp://", host="127.0.0.1",
                      dashboard_address="127.0.0.1:0") as cluster, \
            Client(cluster) as client:
        base = client.dashboard_link.rsplit("/status", 1)[0]
        assert base.startswith("http://127.0.0.1:")
        with pytest.raises(urllib.error.HTTPError):
            _get(base + "/daskscale")
        assert install(client) == base + "/daskscale"
        install(client)  # idempotent
        MetricsPublisher("plain", client=client).publish(score=0.75)
        assert json.loads(_get(base + "/daskscale/metrics.json"))["runs"]["plain"]["latest"]["score"] == 0.75
        assert DashboardPlugin.name in client.run_on_scheduler(lambda dask_scheduler: list(dask_scheduler.plugins))


def test_page_escapes_untrusted_text():
    page = render_page(summarize([{"run": "<script>x</script>", "time": 1.0, "note": "<b>"}]))
    assert "<script>x" not in page and "&lt;script&gt;" in page


def test_dashboard_binds_loopback_by_default(dash_conn):
    assert dash_conn.dashboard_link.startswith("http://127.0.0.1:")
    assert dash_conn.describe()["scheduler"].startswith("tcp://127.0.0.1:")
