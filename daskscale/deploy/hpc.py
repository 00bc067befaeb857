"""HPC batch queues (SLURM, PBS) through dask-jobqueue (the optional extra ``daskscale[hpc]``).

dask-jobqueue runs the scheduler where Python runs (a login node) and submits one batch job
per group of workers; each job runs ``dask worker`` pointed back at the scheduler. The compute
nodes must reach the scheduler, so it listens on the node's cluster interface (``interface=``,
e.g. ``"ib0"``), not on 127.0.0.1; the dashboard stays on 127.0.0.1 (reach it with
``ssh -L 8787:127.0.0.1:8787 login-node``). Pass ``security=`` (see :mod:`daskscale.deploy.tls`)
when the interconnect is shared with other users.
"""

from __future__ import annotations

from typing import Any

from daskscale.errors import ClusterError

__all__ = ["SYSTEMS", "job_script", "make_hpc_cluster"]

SYSTEMS = {"slurm": "SLURM", "pbs": "PBS"}


def _classes(system: str) -> tuple[type, type]:
    key = str(system).lower()
    if key not in SYSTEMS:
        raise ClusterError(f"hpc={system!r} is not supported; choose one of {sorted(SYSTEMS)}")
    try:
        import dask_jobqueue
    except ImportError as exc:
        raise ClusterError(f"HPC clusters need dask-jobqueue: pip install 'daskscale[hpc]' ({exc})") from None
    name = SYSTEMS[key]
    cluster_cls = getattr(dask_jobqueue, f"{name}Cluster")
    return cluster_cls, cluster_cls.job_cls


def _job_kwargs(cores: int, memory: str, queue: str | None, walltime: str, account: str | None,
                processes: int | None, extra: dict[str, Any]) -> dict[str, Any]:
    kw: dict[str, Any] = {"cores": cores, "memory": memory, "walltime": walltime,
                          "processes": processes or 1, **extra}
    if queue:
        kw["queue"] = queue
    if account:
        kw["account"] = account
    # daskscale's estimators are GIL-bound in partial_fit: one single-threaded process per core
    # scales, so by default a job runs `cores` processes unless told otherwise.
    if processes is None:
        kw["processes"] = cores
    return kw


def job_script(system: str, *, cores: int = 4, memory: str = "16GiB", queue: str | None = None,
               walltime: str = "01:00:00", account: str | None = None, processes: int | None = None,
               scheduler: str = "tcp://<scheduler-address>:8786", **job_kwargs: Any) -> str:
    """The batch script dask-jobqueue would submit for one job of workers (nothing is started).

    Examples
    --------
    >>> s = job_script("slurm", cores=2, memory="8GiB", queue="short", scheduler="tls://10.0.0.1:8786")
    >>> "#SBATCH -p short" in s and "tls://10.0.0.1:8786" in s
    True
    """
    _, job_cls = _classes(system)
    job = job_cls(scheduler=scheduler, name="daskscale",
                  **_job_kwargs(cores, memory, queue, walltime, account, processes, job_kwargs))
    return job.job_script()


def make_hpc_cluster(system: str, *, cores: int = 4, memory: str = "16GiB", queue: str | None = None,
                     walltime: str = "01:00:00", account: str | None = None, processes: int | None = None,
                     n_jobs: int = 0, interface: str | None = None, dashboard_address: str = "127.0.0.1:8787",
                     security: Any = None, **job_kwargs: Any) -> Any:
    """A dask-jobqueue ``SLURMCluster`` / ``PBSCluster``; ``n_jobs`` jobs are submitted at once.

    Call ``cluster.scale(jobs=N)`` or ``cluster.adapt(...)`` later for more. ``interface`` is
    the network interface the scheduler and workers use (the one the compute nodes share).

    Raises
    ------
    ClusterError
        If dask-jobqueue is missing, the system is unknown, or the cluster could not start.
    """
    cluster_cls, _ = _classes(system)
    kw = _job_kwargs(cores, memory, queue, walltime, account, processes, job_kwargs)
    sched = {"dashboard_address": dashboard_address}
    if interface is None:
        sched["host"] = "127.0.0.1"
    try:
        cluster = cluster_cls(interface=interface, scheduler_options=sched, security=security, **kw)
    except Exception as exc:  # noqa: BLE001 - dask-jobqueue raises many types
        raise ClusterError(f"could not start a {SYSTEMS[system.lower()]} cluster: {type(exc).__name__}: {exc}") from exc
    if n_jobs:
        cluster.scale(jobs=n_jobs)
    return cluster
