"""Connect to a Dask cluster: an embedded local one, or an existing scheduler.

``connect()`` is the one way daskscale code gets a :class:`distributed.Client`. With no
address it starts a :class:`distributed.LocalCluster` of worker *processes* sized to this
machine, with its dashboard bound to 127.0.0.1; with an address (argument,
``DASK_SCHEDULER_ADDRESS`` or the ``scheduler-address`` Dask config key) it joins that
scheduler and starts nothing. The embedded cluster's dashboard also serves the daskscale
metrics page (``/daskscale``, see :mod:`daskscale.dashboard`).

Security: the embedded scheduler, workers and dashboard bind 127.0.0.1 unless ``host`` /
``dashboard_address`` say otherwise; ``security=True`` (or a directory of certificates made
by :mod:`daskscale.deploy.tls`) puts TLS with client certificates on every connection.
Anyone who reaches a scheduler on plain tcp can run code on the cluster, so binding
scheduler and workers to a non-loopback interface needs TLS or an explicit
``insecure=True``, and so does a non-loopback dashboard (plain HTTP even with TLS):
:func:`check_exposure`.
"""

from __future__ import annotations

import ipaddress
import logging
import os
import socket
import tempfile
from typing import Any

import dask
import distributed
from distributed import Client, LocalCluster

from daskscale.errors import ClusterError

__all__ = ["Connection", "connect", "machine_resources", "default_layout", "LEAN_MONITORING", "check_exposure",
           "hide_task_failure_logs"]


def machine_resources() -> tuple[int, int]:
    """Return ``(cores, memory_bytes)`` usable by this process (cgroup limits respected)."""
    from distributed.system import MEMORY_LIMIT

    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    return cores, int(MEMORY_LIMIT)


def default_layout(n_workers: int | None = None) -> tuple[int, int, int]:
    """Choose ``(n_workers, threads_per_worker, memory_limit_bytes)`` for this machine.

    One single-threaded process per core: scikit-learn's ``partial_fit`` holds the GIL for
    much of its work, so processes scale where threads do not. Workers share 75% of RAM.
    """
    cores, mem = machine_resources()
    n = n_workers or max(1, cores)
    threads = max(1, cores // n)
    return n, threads, int(mem * 0.75 / n)


#: Monitoring settings of the embedded cluster where distributed's defaults cost more than they
#: give on a small machine. Every worker samples its running task's stack for the dashboard's
#: profile every 10 ms and every server checks its event loop every 20 ms; on 2 cores with one
#: worker per core that CPU comes straight out of the other worker's task, and parameter
#: averaging waits for its slowest replica. Sampling every 50 ms still fills the profile of any
#: task that runs for more than a few tenths of a second, and a blocked event loop is still
#: warned about after ``distributed.admin.tick.limit`` (3 s). Measured with
#: ``benchmarks/bench_parallel.py`` (4M rows, four runs): 1-to-2-worker speed-up of parameter
#: averaging 1.64-1.68x with distributed's defaults (``DataParallelScalingDaskMonitoring``),
#: 1.69-1.75x with these (``DataParallelScalingLarge``).
LEAN_MONITORING = {
    "distributed.worker.profile.interval": "50ms",
    "distributed.admin.tick.interval": "200ms",
}


def _lean_settings() -> dict[str, str]:
    """The :data:`LEAN_MONITORING` settings the user has left at distributed's defaults.

    A setting the user changed (in a Dask config file, a ``DASK_*`` variable or
    ``dask.config.set``) is kept: only values still equal to distributed's own default are
    replaced.
    """
    from dask.utils import parse_timedelta

    defaults = dask.config.merge(*dask.config.defaults)
    out = {}
    for key, value in LEAN_MONITORING.items():
        current = dask.config.get(key, None)
        default = dask.config.get(key, None, config=defaults)
        if current is None or default is None or parse_timedelta(current, "ms") == parse_timedelta(default, "ms"):
            out[key] = value
    return out


def _is_loopback(host: str) -> bool:
    """True when ``host`` (an IP address or a name) only ever means this machine."""
    h = host.strip().strip("[]")
    if h == "localhost":
        return True
    try:
        return ipaddress.ip_address(h).is_loopback
    except ValueError:
        pass
    try:
        infos = socket.getaddrinfo(h, None)
    except OSError:  # unresolvable (or empty: every interface): not provably loopback
        return False
    return bool(infos) and all(ipaddress.ip_address(str(i[4][0]).split("%")[0]).is_loopback for i in infos)


def check_exposure(host: str, dashboard_address: str | None, *, tls: bool, insecure: bool,
                   hints: tuple[str, str] = ("security='path/to/tls'", "insecure=True")) -> list[str]:
    """Refuse an embedded cluster reachable from other machines without protection; say what is.

    Scheduler and workers on a non-loopback ``host`` need ``tls`` (anyone reaching a plain tcp
    scheduler can run code on it) unless ``insecure``; a non-loopback dashboard needs
    ``insecure`` (it is plain HTTP, TLS or not). ``hints`` name the two ways out in the
    caller's terms (the CLI's options or :func:`connect`'s arguments).

    Returns
    -------
    list of str
        One line per thing reachable from other machines (empty: loopback only).

    Raises
    ------
    ClusterError
        Naming the host and the two ways out.

    Examples
    --------
    >>> check_exposure("127.0.0.1", "127.0.0.1:8787", tls=False, insecure=False)
    []
    >>> check_exposure("0.0.0.0", None, tls=True, insecure=False)
    ['scheduler and workers on 0.0.0.0 over tls (encrypted; clients need a certificate)']
    """
    tls_way, insecure_way = hints
    exposed = []
    if not _is_loopback(host):
        if not tls and not insecure:
            raise ClusterError(
                f"refusing to bind the scheduler and workers to {host!r} (reachable from other machines) over plain "
                f"tcp: anyone who reaches it can run code on the cluster. Use TLS ({tls_way}) or, on a trusted "
                f"network only, {insecure_way}")
        exposed.append(f"scheduler and workers on {host} over "
                       + ("tls (encrypted; clients need a certificate)" if tls
                          else "plain tcp (UNENCRYPTED, NO AUTHENTICATION: anyone reaching it can run code)"))
    if dashboard_address is not None:
        dash_host = dashboard_address.rpartition(":")[0] or "127.0.0.1"
        if not _is_loopback(dash_host):
            if not insecure:
                raise ClusterError(
                    f"refusing to bind the dashboard to {dash_host!r} (reachable from other machines): it is plain "
                    f"HTTP even with TLS. Keep it on 127.0.0.1 (and tunnel, e.g. ssh -L 8787:127.0.0.1:8787) or, "
                    f"on a trusted network only, {insecure_way}")
            exposed.append(f"dashboard on {dashboard_address} over plain http (UNENCRYPTED, NO AUTHENTICATION)")
    return exposed


class _HideTaskFailures(logging.Filter):
    """Drops a worker's "Compute Failed" log record (a traceback block): the client gets the error."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith("Compute Failed")


class _HideTaskFailuresPlugin(distributed.WorkerPlugin):
    """Adds :class:`_HideTaskFailures` to each worker's log, also to workers that join later."""

    name = "daskscale-hide-task-failures"

    def setup(self, worker: Any) -> None:
        _hide_here()


def _hide_here() -> None:
    logger = logging.getLogger("distributed.worker")
    if not any(isinstance(f, _HideTaskFailures) for f in logger.filters):
        logger.addFilter(_HideTaskFailures())


def hide_task_failure_logs(client: Client) -> None:
    """Stop the workers of ``client``'s cluster logging each failed task's traceback.

    The exception still reaches the client, which reports it; only distributed's
    "Compute Failed" block, which a local cluster's worker processes print on this terminal,
    is dropped. For a command line that prints one line per error.
    """
    client.register_plugin(_HideTaskFailuresPlugin())
    _hide_here()  # in-process workers (processes=False) log here


def _silence_distributed() -> None:
    logging.getLogger("distributed").setLevel(logging.CRITICAL)


def _quiet_shutdown(client: Client) -> None:
    for nanny in (False, True):
        try:
            client.run(_silence_distributed, nanny=nanny)
        except Exception:  # noqa: BLE001 - a cluster already going down has nothing left to say
            pass


def _free_port(preferred: int) -> int:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", preferred))
            return preferred
        except OSError:
            s.bind(("127.0.0.1", 0))
            return s.getsockname()[1]


class Connection:
    """A client plus what was started for it; closing shuts down only what it started.

    Behaves like the :class:`distributed.Client` it wraps (attribute access is forwarded),
    and is a context manager.
    """

    def __init__(self, client: Client, cluster: Any | None = None, tls: Any | None = None):
        self.client = client
        self.cluster = cluster
        #: :class:`daskscale.deploy.tls.TLSFiles` when this connection loaded certificates from a directory
        self.tls = tls
        #: what of a cluster started here is reachable from other machines (see check_exposure)
        self.exposed: list[str] = []

    @property
    def owns_cluster(self) -> bool:
        return self.cluster is not None

    @property
    def dashboard_link(self) -> str:
        return self.client.dashboard_link

    def __getattr__(self, name: str) -> Any:
        return getattr(self.client, name)

    def __enter__(self) -> "Connection":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the client, and the cluster if this connection started it.

        The processes of a cluster this connection started are told to log only critical
        records first: distributed's shutdown races (a worker's heartbeat to a scheduler that
        already closed) would otherwise print tracebacks on the user's terminal at exit.
        """
        if self.cluster is not None:
            _quiet_shutdown(self.client)
        self.client.close()
        if self.cluster is not None:
            self.cluster.close()
            self.cluster = None

    def describe(self) -> dict[str, Any]:
        """Workers, threads, memory and addresses of the cluster, as a dict."""
        info = self.client.scheduler_info(n_workers=-1)
        workers = info.get("workers", {})
        return {
            "scheduler": info.get("address"),
            "dashboard": self.dashboard_link,
            "n_workers": len(workers),
            "threads": sum(w.get("nthreads", 0) for w in workers.values()),
            "memory_limit_per_worker": sorted({int(w.get("memory_limit", 0)) for w in workers.values()}),
            "owns_cluster": self.owns_cluster,
            "tls": str(info.get("address", "")).startswith("tls://"),
        }

    def __repr__(self) -> str:
        d = self.describe()
        return (f"<daskscale.Connection {d['scheduler']} workers={d['n_workers']} "
                f"threads={d['threads']} dashboard={d['dashboard']}>")


def connect(
    address: str | None = None,
    *,
    n_workers: int | None = None,
    threads_per_worker: int | None = None,
    memory_limit: int | str | None = None,
    processes: bool = True,
    dashboard_address: str | None = "127.0.0.1:8787",
    host: str = "127.0.0.1",
    spill_dir: str | None = None,
    security: "distributed.security.Security | bool | None" = None,
    k8s: Any | None = None,
    hpc: str | None = None,
    quiet: bool = False,
    lean_monitoring: bool = True,
    insecure: bool = False,
    **cluster_kwargs: Any,
) -> Connection:
    """Return a :class:`Connection` to a Dask cluster.

    Parameters
    ----------
    address
        Scheduler address (``tcp://host:8786`` or ``tls://...``). When ``None``,
        ``DASK_SCHEDULER_ADDRESS`` and the ``scheduler-address`` Dask config key are tried,
        and if both are empty an embedded :class:`~distributed.LocalCluster` is started.
    n_workers, threads_per_worker, memory_limit
        Size of the embedded cluster; defaults from :func:`default_layout`.
    processes
        Worker processes (default) or threads in this process.
    dashboard_address
        Where the embedded cluster's dashboard listens: 127.0.0.1, on port 8787 or a free
        one when 8787 is taken. ``None`` turns the dashboard off.
    host
        Interface of the embedded scheduler and workers (loopback unless told otherwise). A
        non-loopback ``host`` needs ``security`` or ``insecure=True``, and a non-loopback
        dashboard needs ``insecure=True`` (:func:`check_exposure`); what is reachable from
        other machines is then listed in ``Connection.exposed``.
    spill_dir
        Directory for workers' spilled data; a fresh temporary directory by default.
    security
        A :class:`distributed.security.Security`; ``True`` for a fresh private certificate,
        in memory only (``Security.temporary()``, on ``Connection.cluster.security``), on the
        embedded cluster; or the path of a directory made by
        :func:`daskscale.deploy.tls.generate_certificates` (used as the client's credentials
        when joining an address, and for every role of an embedded cluster that other
        processes or machines should be able to join).
    k8s, hpc
        Deployment specs for Kubernetes (dask-kubernetes) and HPC queues (dask-jobqueue);
        see :mod:`daskscale.deploy`.
    quiet
        Do not print the dashboard link.
    lean_monitoring
        Start the embedded cluster with :data:`LEAN_MONITORING` (profile sampled every 50 ms,
        event loops checked every 200 ms) where the Dask config still has distributed's
        defaults; ``False`` keeps distributed's defaults.
    insecure
        Allow the embedded cluster to listen beyond loopback without TLS (trusted networks only).

    Raises
    ------
    ClusterError
        If the cluster cannot be started or reached, a ``tls://`` address is given without
        certificates, or a bind beyond loopback is not protected (see ``insecure``).

    Examples
    --------
    >>> import daskscale
    >>> with daskscale.connect(n_workers=1, memory_limit="512MiB", quiet=True) as conn:
    ...     conn.submit(sum, [1, 2, 3]).result()
    6
    """
    if k8s is not None or hpc is not None:
        from daskscale import deploy

        cluster = deploy.make_cluster(k8s=k8s, hpc=hpc, **cluster_kwargs)
        client = Client(cluster, security=cluster.security if hasattr(cluster, "security") else None)
        return _announce(Connection(client, cluster), quiet)

    address = address or os.environ.get("DASK_SCHEDULER_ADDRESS") or dask.config.get(
        "scheduler-address", None
    )
    tls_files, security = _security(security, for_address=bool(address))
    if address:
        if str(address).startswith("tls://") and (security is None
                                                  or not security.get_tls_config_for_role("client").get("ca_file")):
            raise ClusterError(f"{address} is a TLS scheduler: give the directory of the client certificates "
                               "(daskscale cluster describe --tls DIR, daskscale.connect(..., security='DIR'))")
        try:
            client = Client(address, security=security, timeout="20s")
        except (OSError, TimeoutError) as exc:
            raise ClusterError(
                f"could not reach the Dask scheduler at {address!r}: {exc}. Is it running, "
                "and does the address (and TLS setting) match?"
            ) from exc
        return _announce(Connection(client, tls=tls_files), quiet)

    exposed = check_exposure(host, dashboard_address, tls=security is not None, insecure=insecure)
    n, threads, mem = default_layout(n_workers)
    spill = spill_dir or tempfile.mkdtemp(prefix="daskscale-spill-")
    dash = None
    if dashboard_address is not None:
        h, _, p = dashboard_address.rpartition(":")
        dash = f"{h or '127.0.0.1'}:{_free_port(int(p or 8787))}"
    if dash is None:  # no dashboard at all (distributed would otherwise default to :8787)
        sk = dict(cluster_kwargs.pop("scheduler_kwargs", None) or {})
        sk.setdefault("dashboard", False)
        cluster_kwargs["scheduler_kwargs"] = sk
    routes = list(dask.config.get("distributed.scheduler.http.routes", []))
    if "daskscale.dashboard" not in routes:
        routes.append("daskscale.dashboard")
    try:
        # the workers' processes take the config of this moment (the nannies pass it on)
        lean = _lean_settings() if lean_monitoring else {}
        if lean and processes:  # also for workers added later (scale, adapt): each nanny passes it on
            cluster_kwargs["config"] = {**lean, **(cluster_kwargs.get("config") or {})}
        with dask.config.set({"distributed.scheduler.http.routes": routes, **lean}):
            cluster = LocalCluster(
                n_workers=n,
                threads_per_worker=threads_per_worker or threads,
                memory_limit=memory_limit if memory_limit is not None else mem,
                processes=processes,
                dashboard_address=dash,
                local_directory=spill,
                security=security,
                host=host,
                **cluster_kwargs,
            )
    except Exception as exc:  # noqa: BLE001 - re-raised with context
        raise ClusterError(f"could not start a local Dask cluster: {exc}") from exc
    client = Client(cluster, security=cluster.security)
    try:  # the workers have started; wait until the scheduler has them all, so a fit right away sees them
        client.wait_for_workers(n, timeout=60)
    except Exception as exc:  # noqa: BLE001 - re-raised with context
        client.close()
        cluster.close()
        raise ClusterError(f"the local Dask cluster started but not all of its {n} workers registered within "
                           f"60 s: {exc}") from exc
    conn = Connection(client, cluster, tls=tls_files)
    conn.exposed = exposed
    return _announce(conn, quiet)


def _security(security: Any, *, for_address: bool) -> tuple[Any, Any]:
    """``(TLSFiles | None, Security | None)`` for the ``security`` argument of :func:`connect`.

    ``True`` is ``Security.temporary()`` (as in ``LocalCluster(security=True)``): a private
    self-signed certificate, the cluster's only CA, kept in memory (no key file on disk) and
    handed to the workers by their nannies. Other processes and machines join with a
    directory made by :mod:`daskscale.deploy.tls` instead.
    """
    if security is None or security is False:
        return None, None
    if isinstance(security, distributed.security.Security):
        return None, security
    if security is True:
        if for_address:
            raise ClusterError("security=True makes new certificates, which a running scheduler would refuse; "
                               "pass the directory of the cluster's certificates (security='path/to/tls')")
        return None, distributed.security.Security.temporary()
    if not isinstance(security, (str, os.PathLike)):
        raise ClusterError(f"security must be a distributed Security, True or a certificate directory, "
                           f"not {type(security).__name__}")
    from daskscale.deploy import tls

    files = tls.load_certificates(security)
    return files, files.security("client" if for_address else "all")


def _announce(conn: Connection, quiet: bool) -> Connection:
    if not quiet:
        print(f"daskscale: Dask dashboard at {conn.dashboard_link}", flush=True)
    return conn
