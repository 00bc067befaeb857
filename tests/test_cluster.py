from __future__ import annotations

import socket

import dask
import pytest

import daskscale
from daskscale.errors import ClusterError


def test_local_cluster_is_sized_bound_to_loopback_and_closed():
    with daskscale.connect(n_workers=1, memory_limit="500MiB", quiet=True) as conn:
        d = conn.describe()
        assert d["n_workers"] == 1 and d["memory_limit_per_worker"] == [500 * 2**20]
        assert d["scheduler"].startswith("tcp://127.0.0.1:")
        assert conn.dashboard_link.startswith("http://127.0.0.1:")
        cluster = conn.cluster
        assert conn.submit(sum, [1, 2]).result() == 3
    assert cluster.status.name == "closed"


def _sampling(dask_worker):
    cb = dask_worker.periodic_callbacks
    return cb["profile"].callback_time, cb["tick"].callback_time


def test_embedded_cluster_monitors_leanly_unless_the_user_chose():
    # the workers' own periodic callbacks, not just their config: what actually runs
    before = dask.config.get("distributed.worker.profile.interval")
    with daskscale.connect(n_workers=1, memory_limit="500MiB", quiet=True) as conn:
        assert list(conn.client.run(_sampling).values()) == [(50.0, 200.0)]
        assert conn.cluster.scheduler.periodic_callbacks["tick"].callback_time == 200.0
        conn.cluster.scale(2)  # a worker added later gets the same settings
        conn.client.wait_for_workers(2, timeout=60)
        assert list(conn.client.run(_sampling).values()) == [(50.0, 200.0)] * 2
    with dask.config.set({"distributed.worker.profile.interval": "5ms"}):
        with daskscale.connect(n_workers=1, memory_limit="500MiB", quiet=True) as conn:
            assert list(conn.client.run(_sampling).values()) == [(5.0, 200.0)]
    # nothing leaks into this process's config once the cluster is up
    assert dask.config.get("distributed.worker.profile.interval") == before


def test_dashboard_moves_to_a_free_port_when_taken():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
        s.listen()
        with daskscale.connect(n_workers=1, memory_limit="500MiB", dashboard_address=f"127.0.0.1:{port}",
                               quiet=True) as conn:
            assert f":{port}/" not in conn.dashboard_link


def test_joining_an_address_does_not_close_that_cluster(client, monkeypatch):
    addr = client.scheduler.address
    monkeypatch.setenv("DASK_SCHEDULER_ADDRESS", addr)
    with daskscale.connect(quiet=True) as conn:
        assert not conn.owns_cluster
        assert conn.describe()["n_workers"] == 2
    assert client.submit(lambda: 42).result() == 42  # the session cluster still runs


def test_unreachable_scheduler_is_a_clear_error():
    with pytest.raises(ClusterError, match="could not reach"):
        daskscale.connect("tcp://127.0.0.1:1", quiet=True)


LOOPBACK = ["127.0.0.1", "127.0.0.2", "localhost", "::1", "[::1]"]
BEYOND = ["0.0.0.0", "", "::", "192.0.2.7", "10.1.2.3", "no-such-host.invalid"]


@pytest.mark.parametrize("host", LOOPBACK)
def test_loopback_binds_expose_nothing(host):
    from daskscale.cluster import check_exposure

    assert check_exposure(host, "127.0.0.1:8787", tls=False, insecure=False) == []
    assert check_exposure(host, None, tls=False, insecure=False) == []
    assert check_exposure(host, ":8787", tls=False, insecure=False) == []  # connect's default host: loopback


@pytest.mark.parametrize("host", BEYOND)
def test_a_bind_beyond_loopback_needs_tls_or_insecure(host):
    from daskscale.cluster import check_exposure

    with pytest.raises(ClusterError) as e:
        check_exposure(host, None, tls=False, insecure=False, hints=("--tls DIR", "--insecure"))
    msg = str(e.value)
    assert repr(host) in msg and "--tls DIR" in msg and "--insecure" in msg and "\n" not in msg
    (tls_line,) = check_exposure(host, None, tls=True, insecure=False)
    assert host in tls_line and "tls" in tls_line
    (plain_line,) = check_exposure(host, None, tls=False, insecure=True)
    assert host in plain_line and "UNENCRYPTED" in plain_line


@pytest.mark.parametrize("tls", [False, True])
def test_a_dashboard_beyond_loopback_needs_insecure_even_with_tls(tls):
    from daskscale.cluster import check_exposure

    with pytest.raises(ClusterError, match="'0.0.0.0'.*plain HTTP.*insecure=True"):
        check_exposure("127.0.0.1", "0.0.0.0:8787", tls=tls, insecure=False)
    (line,) = check_exposure("127.0.0.1", "0.0.0.0:8787", tls=tls, insecure=True)
    assert "dashboard on 0.0.0.0:8787" in line and "http" in line


def test_connect_refuses_an_unprotected_bind_before_starting_anything():
    import psutil

    before = len(psutil.Process().children(recursive=True))
    with pytest.raises(ClusterError, match="'0.0.0.0'.*security=.*insecure=True"):
        daskscale.connect(host="0.0.0.0", n_workers=1, dashboard_address=None, quiet=True)
    with pytest.raises(ClusterError, match="dashboard"):
        daskscale.connect(n_workers=1, dashboard_address="0.0.0.0:0", quiet=True)
    assert len(psutil.Process().children(recursive=True)) == before  # no worker process was started


def _one_line_refusal(capsys, argv):
    from daskscale.cli import main

    with pytest.raises(SystemExit) as e:
        main(argv)
    cap = capsys.readouterr()
    err = cap.err.rstrip("\n")
    assert e.value.code == 2 and err and "\n" not in err and "Traceback" not in cap.out + cap.err, cap
    return err


def test_cli_start_refuses_an_unprotected_bind(capsys, tmp_path):
    err = _one_line_refusal(capsys, ["cluster", "start", "--host", "0.0.0.0", "--port", "0"])
    assert "'0.0.0.0'" in err and "--tls DIR" in err and "--insecure" in err
    err = _one_line_refusal(capsys, ["cluster", "start", "--dashboard", "0.0.0.0:0", "--port", "0",
                                     "--tls", str(tmp_path / "tls")])
    assert "'0.0.0.0'" in err and "dashboard" in err and "--insecure" in err
    assert not (tmp_path / "tls").exists()  # refused before any certificate was made


def test_cli_describe_of_a_tls_address_without_certificates(capsys, tmp_path):
    err = _one_line_refusal(capsys, ["cluster", "describe", "tls://127.0.0.1:1"])
    assert "tls://127.0.0.1:1" in err and "--tls DIR" in err
    err = _one_line_refusal(capsys, ["cluster", "describe", "tls://127.0.0.1:1", "--tls", str(tmp_path)])
    assert str(tmp_path) in err and "ca.pem" in err
    with pytest.raises(ClusterError, match="TLS scheduler"):
        daskscale.connect("tls://127.0.0.1:1", quiet=True)


def test_cli_start_says_what_is_exposed(tmp_path):
    """A real `daskscale cluster start` on loopback prints its addresses and that nothing is exposed."""
    import os
    import signal
    import subprocess
    import sys
    import time

    proc = subprocess.Popen([sys.executable, "-m", "daskscale", "cluster", "start", "--workers", "1", "--port", "0",
                             "--dashboard", "127.0.0.1:0", "--memory-limit", "400MiB"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=tmp_path,
                            env={**os.environ, "DASKSCALE_PROGRESS": "0"})
    lines = []
    try:
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline:
            line = proc.stdout.readline()
            if not line:
                break
            lines.append(line)
            if line.startswith("exposed"):
                break
    finally:
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=120)
    text = "".join(lines)
    assert "scheduler  tcp://127.0.0.1:" in text and "dashboard  http://127.0.0.1:" in text, (text, err)
    assert "exposed    nothing: loopback only" in text


def _fail_on_worker(tag):
    raise ValueError(f"task failure {tag}")


def test_a_command_line_cluster_does_not_print_each_failed_tasks_traceback(capfd):
    """A worker process of a cluster started here logs "Compute Failed" with a traceback on this
    terminal (seen below, before); once hidden, the error still reaches the client, the block is gone."""
    import time

    from daskscale.cluster import hide_task_failure_logs

    with daskscale.connect(n_workers=1, memory_limit="400MiB", dashboard_address=None, quiet=True) as conn:
        with pytest.raises(ValueError, match="task failure before"):
            conn.submit(_fail_on_worker, "before", pure=False).result()
        time.sleep(1)  # the worker's log line is written after the error is sent
        assert "Compute Failed" in capfd.readouterr().err
        hide_task_failure_logs(conn.client)
        with pytest.raises(ValueError, match="task failure after"):
            conn.submit(_fail_on_worker, "after", pure=False).result()
        time.sleep(1)
        assert "Compute Failed" not in capfd.readouterr().err
