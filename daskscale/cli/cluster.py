"""``daskscale cluster``: start a local scheduler and workers, or describe a running cluster."""

from __future__ import annotations

import json
import signal
import threading

import click


@click.group()
def cluster() -> None:
    """Start or describe a Dask cluster."""


@cluster.command()
@click.option("--workers", type=int, default=None, help="Worker processes (default: one per core).")
@click.option("--threads", type=int, default=None, help="Threads per worker.")
@click.option("--memory-limit", default=None, help="Memory limit per worker, e.g. 4GiB.")
@click.option("--host", default="127.0.0.1", show_default=True, help="Interface to bind.")
@click.option("--port", type=int, default=8786, show_default=True, help="Scheduler port (0 = any free).")
@click.option("--dashboard", default="127.0.0.1:8787", show_default=True, help="Dashboard address.")
def start(workers: int | None, threads: int | None, memory_limit: str | None, host: str, port: int,
          dashboard: str) -> None:
    """Run a scheduler and workers in the foreground until Ctrl-C."""
    from daskscale.cluster import connect

    conn = connect(n_workers=workers, threads_per_worker=threads, memory_limit=memory_limit, host=host,
                   dashboard_address=dashboard, scheduler_port=port, quiet=True)
    d = conn.describe()
    click.echo(f"scheduler  {d['scheduler']}\ndashboard  {d['dashboard']}\nworkers    {d['n_workers']} "
               f"({d['threads']} threads)\nconnect with: daskscale.connect({d['scheduler']!r})  or  "
               f"export DASK_SCHEDULER_ADDRESS={d['scheduler']}", )
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    stop.wait()
    click.echo("stopping cluster")
    conn.close()


@cluster.command()
@click.argument("address", required=False)
@click.option("--json", "as_json", is_flag=True)
def describe(address: str | None, as_json: bool) -> None:
    """Describe the cluster at ADDRESS (or DASK_SCHEDULER_ADDRESS)."""
    import os

    from daskscale.cluster import connect
    from daskscale.errors import ClusterError

    address = address or os.environ.get("DASK_SCHEDULER_ADDRESS")
    if not address:
        raise ClusterError("give a scheduler ADDRESS or set DASK_SCHEDULER_ADDRESS")
    with connect(address, quiet=True) as conn:
        d = conn.describe()
    click.echo(json.dumps(d, indent=2) if as_json else "\n".join(f"{k:24} {v}" for k, v in d.items()))
