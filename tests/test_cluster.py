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
