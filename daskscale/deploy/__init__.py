"""Deployment targets beyond the embedded local cluster, each an optional extra.

- :mod:`daskscale.deploy.k8s`: Kubernetes (``daskscale[k8s]``: dask-kubernetes' operator).
- :mod:`daskscale.deploy.hpc`: SLURM / PBS batch queues (``daskscale[hpc]``: dask-jobqueue).
- :mod:`daskscale.deploy.remote`: Hadoop/S3 data (``hdfs://``, ``s3://``) through fsspec;
  YARN itself is reached through dask-gateway (see the module's notes).
- :mod:`daskscale.deploy.tls`: a private CA and certificates for TLS between all parties.

:func:`make_cluster` is what ``daskscale.connect(k8s=..., hpc=...)`` calls.
"""

from __future__ import annotations

from typing import Any

from daskscale.errors import ClusterError

__all__ = ["make_cluster"]


def make_cluster(*, k8s: Any = None, hpc: str | None = None, **kwargs: Any) -> Any:
    """A Dask cluster object for a deployment spec: ``k8s=K8sSpec|dict`` or ``hpc="slurm"|"pbs"``.

    Extra keyword arguments go to :func:`daskscale.deploy.k8s.make_kube_cluster` or
    :func:`daskscale.deploy.hpc.make_hpc_cluster`.

    Raises
    ------
    ClusterError
        If both or neither spec is given, or the needed extra is not installed.

    Examples
    --------
    >>> make_cluster()
    Traceback (most recent call last):
    ...
    daskscale.errors.ClusterError: give exactly one deployment spec: k8s=... or hpc='slurm'|'pbs'
    """
    if (k8s is None) == (hpc is None):
        raise ClusterError("give exactly one deployment spec: k8s=... or hpc='slurm'|'pbs'")
    if k8s is not None:
        from daskscale.deploy.k8s import make_kube_cluster

        return make_kube_cluster(k8s, **kwargs)
    from daskscale.deploy.hpc import make_hpc_cluster

    return make_hpc_cluster(hpc, **kwargs)
