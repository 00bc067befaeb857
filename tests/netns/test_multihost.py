"""A real multi-host cluster: scheduler and 3 workers, each in its own Linux network namespace.

The namespaces are joined by veth pairs on a bridge that this test creates (addresses
10.213.N.0/24, used only inside them and on that bridge), and every connection is TLS with
certificates made by :mod:`daskscale.deploy.tls`. A describe and a data-parallel fit run
across the hosts; then one worker host's link is downed mid-fit and the fit still ends with a
valid model. A client without the certificates is refused. Everything (processes, links,
namespaces) is removed by the fixture's finalizer, even on failure. The test is skipped, with
the reason, where namespaces cannot be made (not root, no ``ip``, no CAP_NET_ADMIN).
"""

from __future__ import annotations

import os
import shutil
import socket
import ssl
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

pytestmark = [pytest.mark.netns, pytest.mark.timeout(400)]

N_WORKERS = 3
TAG = f"{os.getpid() % 100000}"
SUBNET = f"10.213.{os.getpid() % 250}"
SCHED_IP = f"{SUBNET}.10"
PORT = 8786
DASH_PORT = 8787
TTL = "15s"
PRELOAD = ("daskscale.datasets", "daskscale.reduce", "daskscale.learn.parallel", "sklearn.linear_model")


def _ip(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    return subprocess.run(["ip", *args], capture_output=True, text=True, check=check, timeout=20)


class Hosts:
    """The namespaces, their processes and what a client needs to reach them."""

    def __init__(self, root: Path):
        self.root = root
        self.ns = {"sched": f"ds{TAG}s", **{f"w{i}": f"ds{TAG}w{i}" for i in range(1, N_WORKERS + 1)}}
        self.ip = {"sched": SCHED_IP, **{f"w{i}": f"{SUBNET}.{10 + i}" for i in range(1, N_WORKERS + 1)}}
        self.bridge = f"dsb{TAG}"
        self.procs: dict[str, subprocess.Popen] = {}
        self.made_ns: list[str] = []
        self.made_links: list[str] = []
        self.tls = None

    @property
    def address(self) -> str:
        return f"tls://{SCHED_IP}:{PORT}"

    def log(self, name: str) -> str:
        p = self.root / f"{name}.log"
        return p.read_text()[-3000:] if p.exists() else ""

    def setup_network(self) -> None:
        first = self.ns["sched"]
        r = _ip("netns", "add", first, check=False)
        if r.returncode != 0:
            pytest.skip(f"cannot create a network namespace here (`ip netns add` said: {r.stderr.strip()})")
        self.made_ns.append(first)
        _ip("link", "add", self.bridge, "type", "bridge")
        self.made_links.append(self.bridge)
        _ip("addr", "add", f"{SUBNET}.1/24", "dev", self.bridge)
        _ip("link", "set", self.bridge, "up")
        for i, (role, ns) in enumerate(self.ns.items()):
            if ns not in self.made_ns:
                _ip("netns", "add", ns)
                self.made_ns.append(ns)
            host_end = f"dsv{TAG}{i}"
            _ip("link", "add", host_end, "type", "veth", "peer", "name", "eth0", "netns", ns)
            self.made_links.append(host_end)
            _ip("link", "set", host_end, "master", self.bridge)
            _ip("link", "set", host_end, "up")
            _ip("-n", ns, "addr", "add", f"{self.ip[role]}/24", "dev", "eth0")
            _ip("-n", ns, "link", "set", "eth0", "up")
            _ip("-n", ns, "link", "set", "lo", "up")

    def spawn(self, role: str, argv: list[str], env: dict[str, str] | None = None) -> None:
        fh = open(self.root / f"{role}.log", "w")
        self.procs[role] = subprocess.Popen(
            ["ip", "netns", "exec", self.ns[role], sys.executable, "-m", *argv],
            stdout=fh, stderr=subprocess.STDOUT, env={**os.environ, "DASKSCALE_PROGRESS": "0", **(env or {})})
        fh.close()

    def start_cluster(self) -> None:
        from daskscale.deploy.tls import generate_certificates

        self.tls = generate_certificates(self.root / "tls", hosts=list(self.ip.values()))
        routes = ("['distributed.http.scheduler.json','distributed.http.health','distributed.http.statics',"
                  "'daskscale.dashboard']")
        # A host whose link is cut never answers: after TTL s of silence the scheduler drops it.
        # Not shorter: on a loaded 2-core machine a healthy worker's event loop can stall ~10 s.
        self.spawn("sched", ["distributed.cli.dask_scheduler", "--host", SCHED_IP, "--port", str(PORT),
                             "--protocol", "tls", "--dashboard-address", f"{SCHED_IP}:{DASH_PORT}",
                             *self.tls.cli_args("scheduler")],
                   env={"DASK_DISTRIBUTED__SCHEDULER__WORKER_TTL": TTL,
                        "DASK_DISTRIBUTED__SCHEDULER__HTTP__ROUTES": routes})
        for i in range(1, N_WORKERS + 1):
            role = f"w{i}"
            self.spawn(role, ["distributed.cli.dask_worker", self.address, "--host", self.ip[role],
                              "--name", role, "--nthreads", "1", "--no-nanny", "--memory-limit", "600MiB",
                              "--no-dashboard", "--death-timeout", "60", *self.tls.cli_args("worker"),
                              # imported before joining: unpickling the first task would otherwise
                              # import them on the event loop and stall heartbeats for seconds
                              *[a for m in PRELOAD for a in ("--preload", m)]])

    def cut(self, role: str) -> None:
        """Down the host's only link: from now on it neither sends nor receives."""
        _ip("-n", self.ns[role], "link", "set", "eth0", "down")

    def link_state(self, role: str) -> str:
        return _ip("-n", self.ns[role], "link", "show", "eth0").stdout

    def teardown(self) -> None:
        for p in self.procs.values():
            if p.poll() is None:
                p.terminate()
        deadline = time.time() + 5
        for p in self.procs.values():
            try:
                p.wait(timeout=max(0.1, deadline - time.time()))
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait(timeout=5)
        for link in reversed(self.made_links):
            _ip("link", "del", link, check=False)
        for ns in reversed(self.made_ns):
            _ip("netns", "del", ns, check=False)


def _remove_stale() -> None:
    """Remove namespaces and links an earlier, killed run of this test left (its pid is gone)."""
    import re

    for line in _ip("netns", "list", check=False).stdout.splitlines():
        m = re.match(r"(ds(\d+)(?:s|w\d))\b", line)
        if m and not os.path.exists(f"/proc/{m.group(2)}"):
            for pid in _ip("netns", "pids", m.group(1), check=False).stdout.split():
                subprocess.run(["kill", "-9", pid], check=False)
            _ip("netns", "del", m.group(1), check=False)
    for line in _ip("-o", "link", check=False).stdout.splitlines():
        m = re.match(r"\d+: (ds[bv](\d+?)\d?)[@:]", line)
        if m and line.split(": ")[1].startswith("dsb") and not os.path.exists(f"/proc/{m.group(2)}"):
            _ip("link", "del", m.group(1), check=False)


@pytest.fixture(scope="module")
def hosts(tmp_path_factory):
    if sys.platform != "linux":
        pytest.skip("network namespaces are a Linux feature")
    if os.geteuid() != 0:
        pytest.skip("creating network namespaces needs root (CAP_NET_ADMIN); run the suite as root to include it")
    if shutil.which("ip") is None:
        pytest.skip("the `ip` command (iproute2) is not installed")
    import signal

    _remove_stale()
    h = Hosts(tmp_path_factory.mktemp("netns"))
    # pytest runs finalizers on KeyboardInterrupt but not on SIGTERM (CI timeouts): map one to the other.
    previous = signal.signal(signal.SIGTERM, signal.default_int_handler)
    try:
        h.setup_network()
        h.start_cluster()
        yield h
    finally:
        signal.signal(signal.SIGTERM, previous)
        h.teardown()
        assert not [ns for ns in h.made_ns if ns in _ip("netns", "list").stdout], "namespaces left behind"


@pytest.fixture(scope="module")
def remote(hosts):
    from distributed import Client

    import daskscale

    deadline = time.time() + 150  # generous: a loaded 2-core machine imports slowly
    conn = None
    while conn is None:
        try:
            conn = daskscale.connect(hosts.address, security=hosts.tls.directory, quiet=True)
        except Exception:
            if time.time() > deadline:
                pytest.fail("the namespaced scheduler did not come up:\n" + hosts.log("sched"))
            time.sleep(0.5)
    try:
        conn.client.wait_for_workers(N_WORKERS, timeout=150)
    except Exception:
        conn.close()
        pytest.fail("workers did not join:\n" + "\n".join(hosts.log(f"w{i}") for i in range(1, N_WORKERS + 1)))
    assert isinstance(conn.client, Client)
    yield conn
    conn.close()


@pytest.fixture(scope="module")
def store(remote, tmp_path_factory):
    from daskscale.datasets import make_classification

    # The file system is shared by the namespaces: workers write and read this store directly.
    return make_classification(24_000, 8, chunk_rows=1_000, seed=3,
                               store=tmp_path_factory.mktemp("data") / "d.zarr")


def test_workers_are_separate_hosts_over_tls(hosts, remote):
    d = remote.describe()
    assert d["tls"] and d["scheduler"] == hosts.address and d["n_workers"] == N_WORKERS
    workers = remote.client.scheduler_info(n_workers=-1)["workers"]
    assert sorted(w.split("//")[1].split(":")[0] for w in workers) == sorted(
        hosts.ip[f"w{i}"] for i in range(1, N_WORKERS + 1))
    assert all(w.startswith("tls://") for w in workers)


def test_describe_runs_across_hosts(remote, store):
    from daskscale.reduce import Moments, reduce
    from daskscale.storage import load_xy

    before = remote.client.run(lambda dask_worker: dask_worker.state.executed_count)
    out = reduce(store, [Moments()])["moments"]
    after = remote.client.run(lambda dask_worker: dask_worker.state.executed_count)
    X = load_xy(store)[0].compute(scheduler="sync")
    np.testing.assert_allclose(out["mean"], X.mean(axis=0, dtype=np.float64), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(out["std"], X.std(axis=0, dtype=np.float64), rtol=1e-4)
    assert out["count"].tolist() == [24_000] * 8
    assert all(after[w] > before[w] for w in before), f"not every host worked: {before} -> {after}"


def test_client_without_certificates_is_refused(hosts, remote, tmp_path):
    from distributed import Client

    from daskscale.deploy.tls import generate_certificates

    attempts = {
        "plain tcp": (hosts.address.replace("tls://", "tcp://"), None),
        "certificate from another CA": (hosts.address, generate_certificates(tmp_path / "other").security("client")),
    }
    for what, (address, sec) in attempts.items():
        with pytest.raises((OSError, TimeoutError)):
            c = Client(address, security=sec, timeout="3s")
            c.close()
            pytest.fail(f"{what}: the scheduler accepted a client without the cluster's certificate")
    # A TLS client that trusts the CA but has no certificate of its own (distributed refuses to
    # even try, so speak TLS directly): the scheduler ends the handshake.
    ctx = ssl.create_default_context(cafile=str(hosts.tls.ca_file))
    ctx.check_hostname = False
    with socket.create_connection((SCHED_IP, PORT), timeout=5) as raw:
        with pytest.raises((ssl.SSLError, ConnectionError)):
            with ctx.wrap_socket(raw) as tls_sock:
                # TLS 1.3 reports a refused client certificate on the first read
                if tls_sock.recv(1) == b"":
                    raise ConnectionResetError("closed by the scheduler")
    assert remote.submit(sum, [1, 2]).result(timeout=10) == 3  # the cluster itself is unharmed


def test_dashboard_page_served_by_the_namespaced_scheduler(hosts, remote):
    import json
    import urllib.request

    from daskscale.monitor import MetricsPublisher

    MetricsPublisher("netns-check", client=remote.client).publish(force=True, loss=0.125)
    time.sleep(0.3)
    body = urllib.request.urlopen(f"http://{SCHED_IP}:{DASH_PORT}/daskscale/metrics.json", timeout=10).read()
    assert json.loads(body)["runs"]["netns-check"]["latest"]["loss"] == 0.125


def test_fit_survives_a_host_cut_off_mid_fit(hosts, remote, store):
    from sklearn.linear_model import SGDClassifier

    from daskscale.storage import load_xy

    X, y = (a.compute(scheduler="sync") for a in load_xy(store))
    cut_at = {}

    def cut_second_round(round_index, _model):
        if round_index == 2 and not cut_at:
            hosts.cut("w3")
            cut_at["round"] = round_index

    try:
        from daskscale.learn.parallel import ParameterAveraging, ReplicaLostWarning
    except ImportError:  # pragma: no cover - the learn area lands separately
        pytest.skip("daskscale.learn.parallel.ParameterAveraging is not available")
    pa = ParameterAveraging(SGDClassifier(random_state=0), epochs=3, merge_every=1, timeout=20,
                            persist=False, random_state=0, callback=cut_second_round, client=remote.client)
    t = time.perf_counter()
    with pytest.warns(ReplicaLostWarning):
        pa.fit(store)
    elapsed = time.perf_counter() - t
    assert cut_at == {"round": 2}
    assert "state DOWN" in hosts.link_state("w3") or "<BROADCAST,MULTICAST>" in hosts.link_state("w3")
    assert pa.rounds_ > 2, "the cut did not happen mid-fit"
    assert hosts.ip["w3"] not in " ".join(remote.client.scheduler_info(n_workers=-1)["workers"])
    coef = pa.estimator_.coef_
    assert np.isfinite(coef).all() and np.abs(coef).sum() > 0
    acc = float((pa.estimator_.predict(X) == y).mean())
    assert acc > 0.65, f"merged model accuracy {acc:.3f} after losing a host"
    assert elapsed < 90
