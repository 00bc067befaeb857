"""``daskscale cluster``: start a local cluster (optionally TLS), describe one, render k8s/HPC specs."""

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
@click.option("--tls", "tls_dir", default=None, metavar="DIR",
              help="TLS on every connection with the certificates in DIR (created there, with a new CA, "
                   "when DIR has none). Clients need DIR's ca.pem, client.pem and client-key.pem.")
@click.option("--insecure", is_flag=True,
              help="Allow --host/--dashboard beyond loopback without TLS (plain tcp/http: trusted networks only).")
def start(workers: int | None, threads: int | None, memory_limit: str | None, host: str, port: int,
          dashboard: str, tls_dir: str | None, insecure: bool) -> None:
    """Run a scheduler and workers in the foreground until Ctrl-C.

    Everything binds 127.0.0.1 unless --host/--dashboard say otherwise. A scheduler reachable
    from other machines runs any code its clients send: --host beyond loopback needs --tls
    (only clients holding a certificate signed by the cluster's CA are accepted) or
    --insecure, and so does a dashboard beyond loopback (it is plain HTTP either way).
    """
    from pathlib import Path

    from daskscale.cluster import check_exposure, connect

    # refused before anything is made or started
    check_exposure(host, dashboard, tls=tls_dir is not None, insecure=insecure, hints=("--tls DIR", "--insecure"))
    security = None
    if tls_dir is not None:
        from daskscale.deploy import tls

        if not (Path(tls_dir) / "ca.pem").exists():
            tls.generate_certificates(tls_dir, hosts=sorted({host, "127.0.0.1", "localhost"}))
            click.echo(f"made a CA and certificates in {tls_dir}")
        security = tls_dir
    conn = connect(n_workers=workers, threads_per_worker=threads, memory_limit=memory_limit, host=host,
                   dashboard_address=dashboard, scheduler_port=port, security=security, quiet=True,
                   insecure=insecure)
    d = conn.describe()
    sec = f", security={str(tls_dir)!r}" if tls_dir else ""
    page = f"{d['dashboard'].rsplit('/status', 1)[0]}/daskscale" if d["dashboard"] else None
    click.echo(f"scheduler  {d['scheduler']}\ndashboard  {d['dashboard']}\nmetrics    {page}\n"
               f"workers    {d['n_workers']} ({d['threads']} threads)\n"
               f"connect with: daskscale.connect({d['scheduler']!r}{sec})"
               + ("" if tls_dir else f"  or  export DASK_SCHEDULER_ADDRESS={d['scheduler']}"), )
    click.echo("exposed    " + ("; ".join(conn.exposed) if conn.exposed else "nothing: loopback only (this machine)"))
    if any("UNENCRYPTED" in line for line in conn.exposed):
        click.echo("daskscale: warning: --insecure: " + "; ".join(conn.exposed), err=True)
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    stop.wait()
    click.echo("stopping cluster")
    conn.close()


@cluster.command()
@click.argument("address", required=False)
@click.option("--json", "as_json", is_flag=True)
@click.option("--tls", "tls_dir", default=None, metavar="DIR", help="Client certificates for a TLS cluster.")
def describe(address: str | None, as_json: bool, tls_dir: str | None) -> None:
    """Describe the cluster at ADDRESS (or DASK_SCHEDULER_ADDRESS)."""
    import os

    from daskscale.cluster import connect
    from daskscale.errors import ClusterError

    address = address or os.environ.get("DASK_SCHEDULER_ADDRESS")
    if not address:
        raise ClusterError("give a scheduler ADDRESS or set DASK_SCHEDULER_ADDRESS")
    with connect(address, security=tls_dir, quiet=True) as conn:
        d = conn.describe()
    click.echo(json.dumps(d, indent=2) if as_json else "\n".join(f"{k:24} {v}" for k, v in d.items()))


@cluster.command()
@click.option("--workers", type=int, default=2, show_default=True, help="Worker pods.")
@click.option("--image", default=None, help="Container image with daskscale installed.")
@click.option("--memory", default="4GiB", show_default=True, help="Memory request = limit per worker pod.")
@click.option("--cpu", type=int, default=1, show_default=True, help="CPUs per worker pod (= threads).")
@click.option("--name", default="daskscale", show_default=True)
@click.option("--namespace", default=None)
@click.option("--tls-secret", default=None, help="Kubernetes Secret holding ca.pem and <role>.pem/-key.pem.")
@click.option("--plain", is_flag=True, help="Plain Deployments + Service instead of the DaskCluster resource.")
def k8s(workers: int, image: str | None, memory: str, cpu: int, name: str, namespace: str | None,
        tls_secret: str | None, plain: bool) -> None:
    """Print a Kubernetes DaskCluster resource (or plain manifests) for `kubectl apply -f -`."""
    from daskscale.deploy.k8s import DEFAULT_IMAGE, K8sSpec, render_daskcluster, render_manifest, to_yaml

    spec = K8sSpec(name=name, image=image or DEFAULT_IMAGE, n_workers=workers, memory=memory, cpu=cpu,
                   namespace=namespace, tls_secret=tls_secret)
    click.echo(to_yaml(render_manifest(spec) if plain else render_daskcluster(spec)), nl=False)


@cluster.command()
@click.option("--system", type=click.Choice(["slurm", "pbs"]), default="slurm", show_default=True)
@click.option("--queue", default=None, help="Queue / partition.")
@click.option("--cores", type=int, default=4, show_default=True, help="Cores per job.")
@click.option("--memory", default="16GiB", show_default=True, help="Memory per job.")
@click.option("--walltime", default="01:00:00", show_default=True)
@click.option("--account", default=None)
@click.option("--scheduler", default="tcp://<scheduler-address>:8786", show_default=True,
              help="Address the workers join.")
def hpc(system: str, queue: str | None, cores: int, memory: str, walltime: str, account: str | None,
        scheduler: str) -> None:
    """Print the batch job script dask-jobqueue submits for one job of workers."""
    from daskscale.deploy.hpc import job_script

    click.echo(job_script(system, cores=cores, memory=memory, queue=queue, walltime=walltime,
                          account=account, scheduler=scheduler), nl=False)
