from __future__ import annotations

import pytest

from daskscale.monitor import METRICS_TOPIC, MetricsPublisher, metrics_frame, progress, recent_metrics, summarize


def test_peak_memory_is_the_high_water_mark_and_can_be_reset():
    import numpy as np

    from daskscale.monitor import peak_memory

    if peak_memory() is None:
        pytest.skip("no /proc/self/status VmHWM here")
    big = np.ones(200 * 2**20 // 8)  # 200 MiB, touched
    high = peak_memory()
    del big
    assert high >= 200 * 2**20
    assert peak_memory(reset=True) < high - 150 * 2**20  # restarted from what is resident now


def test_publisher_reaches_the_scheduler_and_is_throttled(client):
    pub = MetricsPublisher("mon-1", client=client, min_interval=60)
    assert pub.publish(loss=0.5)
    assert not pub.publish(loss=0.4)  # within min_interval: dropped
    assert pub.publish(force=True, loss=0.3)
    assert pub.event("drift", row=7)
    msgs = recent_metrics(client, run="mon-1")
    assert [m.get("loss") for m in msgs] == [0.5, 0.3, None] and msgs[-1]["event"] == "drift"
    df = metrics_frame(client, run="mon-1")
    assert list(df["loss"].iloc[:2]) == [0.5, 0.3]
    assert METRICS_TOPIC == "daskscale-metrics"


def test_summarize_keeps_latest_history_and_events():
    msgs = [{"run": "a", "time": float(i), "loss": 1.0 / (i + 1), "epoch": 0} for i in range(300)]
    msgs.append({"run": "b", "time": 5.0, "score": 0.9})
    msgs.append({"run": "a", "time": 400.0, "event": "drift", "row": 123})
    s = summarize(msgs, history=50)
    a = s["runs"]["a"]
    assert a["n_messages"] == 301 and a["latest"]["loss"] == pytest.approx(1 / 300)
    assert len(a["history"]["loss"]) == 50 and a["history"]["loss"][-1] == [299.0, pytest.approx(1 / 300)]
    assert a["updated"] == 400.0 and a["latest"]["last_event"] == "drift"
    assert s["runs"]["b"]["latest"] == {"score": 0.9}
    assert s["events"] == [msgs[-1]]


def test_progress_is_silent_when_disabled(monkeypatch, capsys):
    monkeypatch.setenv("DASKSCALE_PROGRESS", "0")
    assert list(progress(range(3), total=3, desc="x")) == [0, 1, 2]
    assert capsys.readouterr().err == ""
