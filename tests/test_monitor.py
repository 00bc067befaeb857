from __future__ import annotations

import pytest

from daskscale.monitor import (METRICS_TOPIC, MetricsPublisher, advance_to, compute_with_progress, metrics_frame,
                               progress, recent_metrics, summarize)


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


_BAR_SCRIPT = ("from daskscale.monitor import progress\n"
               "for _ in progress(range(3), total=3, desc='bar-probe'):\n    pass\n")


def _stderr_of_bar(env_value: str | None, *, terminal: bool) -> str:
    """What a 3-step bar writes to stderr in a fresh process: a pipe, or a pseudo-terminal."""
    import os
    import pty
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if k != "DASKSCALE_PROGRESS"}
    if env_value is not None:
        env["DASKSCALE_PROGRESS"] = env_value
    if not terminal:
        return subprocess.run([sys.executable, "-c", _BAR_SCRIPT], env=env, capture_output=True, text=True,
                              timeout=60).stderr
    import fcntl
    import struct
    import termios

    main, sub = pty.openpty()
    fcntl.ioctl(sub, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 100, 0, 0))  # a new pty is 0 columns wide
    p = subprocess.Popen([sys.executable, "-c", _BAR_SCRIPT], env=env, stderr=sub, stdout=subprocess.DEVNULL)
    os.close(sub)
    chunks = []
    while True:
        try:
            data = os.read(main, 4096)
        except OSError:  # the child closed the terminal
            break
        if not data:
            break
        chunks.append(data)
    p.wait(timeout=60)
    os.close(main)
    return b"".join(chunks).decode(errors="replace")


@pytest.mark.parametrize("env_value, terminal, shown", [
    (None, False, False),   # stderr redirected: quiet by default
    (None, True, True),     # a terminal: a bar
    ("1", False, True),     # asked for: a bar even into a file
    ("0", True, False),     # turned off: nothing even on a terminal
])
def test_bars_show_where_someone_watches_unless_told(env_value, terminal, shown):
    err = _stderr_of_bar(env_value, terminal=terminal)
    assert ("bar-probe" in err and "3/3" in err) is shown, err


def test_advance_to_starts_from_a_resumed_position_and_never_overshoots():
    # a fit resumed after 5 of 162 blocks reports blocks done in total: 6, 7, ..., 162
    bar = progress(total=162, initial=5, desc="resumed", disable=True)
    for done in range(6, 163):
        advance_to(bar, done)
    advance_to(bar, 160)  # a late, older report does not move it back
    assert bar.n == 162
    advance_to(bar, 200)
    assert (bar.n, bar.total) == (162, 162)
    assert "162/162" in str(bar)


def test_compute_with_progress_counts_the_tasks_on_the_cluster(client, capsys):
    import dask.array as da

    x = da.arange(1_000, chunks=100)
    assert int(compute_with_progress((x * 2).sum(), desc="sum-probe", disable=False)) == 999_000
    import re

    err = capsys.readouterr().err
    done, total = map(int, re.findall(r"sum-probe: 100%\|[^|]*\| (\d+)/(\d+)", err)[-1])
    assert done == total >= 10, err[-500:]  # every task of the graph, at least one per chunk
    assert int(compute_with_progress((x * 2).sum(), desc="quiet-probe", disable=True)) == 999_000
    assert capsys.readouterr().err == ""
