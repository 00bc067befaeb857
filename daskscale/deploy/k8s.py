"""Kubernetes: render a dask-kubernetes ``DaskCluster`` resource, or plain manifests, with limits.

Two ways to run daskscale on Kubernetes:

- With the Dask Kubernetes operator installed in the cluster (``helm install dask-operator``),
  :func:`render_daskcluster` gives the ``DaskCluster`` custom resource (``kubectl apply -f``),
  and ``daskscale.connect(k8s=K8sSpec(...))`` creates it through dask-kubernetes'
  :class:`~dask_kubernetes.operator.KubeCluster` (the optional extra ``daskscale[k8s]``).
- Without the operator, :func:`render_manifest` gives a scheduler Deployment + Service and a
  worker Deployment that plain ``kubectl apply`` understands.

Each worker container gets equal memory request and limit (a Guaranteed-QoS pod, so the kubelet
does not evict it under pressure) and ``--memory-limit`` set to the same value, so Dask spills
to disk and pauses before the kernel's OOM killer acts. The scheduler listens on all of the
pod's interfaces (a pod's address is private to the cluster network); put it behind TLS
(``tls_secret``) when the network is shared.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from dask.utils import parse_bytes

from daskscale.errors import ClusterError

__all__ = ["K8sSpec", "render_daskcluster", "render_manifest", "to_yaml", "make_kube_cluster", "schema", "crd_schema",
           "DEFAULT_IMAGE"]

DEFAULT_IMAGE = "ghcr.io/dask/dask:latest"
_ROUTES_ENV = "DASK_DISTRIBUTED__SCHEDULER__HTTP__ROUTES"
_ROUTES = ("['distributed.http.scheduler.prometheus','distributed.http.scheduler.info',"
           "'distributed.http.scheduler.json','distributed.http.health','distributed.http.proxy',"
           "'distributed.http.statics','daskscale.dashboard']")


@dataclass
class K8sSpec:
    """What to run on Kubernetes.

    ``image`` should have daskscale installed (same version as the client); then the
    scheduler also serves the daskscale dashboard page. With the stock Dask image
    (:data:`DEFAULT_IMAGE`) the page is left out, since the scheduler could not import it.

    Examples
    --------
    >>> spec = K8sSpec(n_workers=4, memory="8GiB", cpu=2)
    >>> r = render_daskcluster(spec)
    >>> r["spec"]["worker"]["replicas"], r["spec"]["worker"]["spec"]["containers"][0]["resources"]["limits"]
    (4, {'memory': '8Gi', 'cpu': '2'})
    """

    name: str = "daskscale"
    image: str = DEFAULT_IMAGE
    n_workers: int = 2
    memory: str = "4GiB"
    cpu: int = 1
    scheduler_memory: str = "2GiB"
    scheduler_cpu: int = 1
    namespace: str | None = None
    env: dict[str, str] = field(default_factory=dict)
    tls_secret: str | None = None
    idle_timeout: int = 0

    def __post_init__(self) -> None:
        if self.n_workers < 0 or self.cpu < 1 or self.scheduler_cpu < 1:
            raise ClusterError(f"k8s spec: n_workers must be >= 0 and cpu >= 1 (got {self.n_workers}, {self.cpu})")
        for what in ("memory", "scheduler_memory"):
            try:
                parse_bytes(getattr(self, what))
            except (ValueError, TypeError) as exc:
                raise ClusterError(f"k8s spec: {what}={getattr(self, what)!r} is not a size like '4GiB'") from exc


def _spec(spec: K8sSpec | dict[str, Any] | None) -> K8sSpec:
    if spec is None:
        return K8sSpec()
    if isinstance(spec, K8sSpec):
        return spec
    try:
        return K8sSpec(**spec)
    except TypeError as exc:
        raise ClusterError(f"k8s spec: {exc}; valid keys: {sorted(asdict(K8sSpec()))}") from exc


def _quantity(size: str) -> str:
    """A Kubernetes memory quantity (binary units: Mi/Gi) for a Dask size string."""
    n = parse_bytes(size)
    for unit, mult in (("Gi", 2**30), ("Mi", 2**20), ("Ki", 2**10)):
        if n % mult == 0:
            return f"{n // mult}{unit}"
    return str(n)


def _resources(memory: str, cpu: int) -> dict[str, dict[str, str]]:
    q = {"memory": _quantity(memory), "cpu": str(cpu)}
    return {"requests": dict(q), "limits": dict(q)}


def _env(s: K8sSpec) -> list[dict[str, str]]:
    env = {"DASKSCALE_PROGRESS": "0", **s.env}
    if s.image != DEFAULT_IMAGE:
        env = {_ROUTES_ENV: _ROUTES, **env}
    return [{"name": k, "value": str(v)} for k, v in env.items()]


def _tls(s: K8sSpec, role: str) -> tuple[list[str], dict[str, Any]]:
    """Command-line flags and pod volume wiring for certificates in a Kubernetes Secret."""
    if not s.tls_secret:
        return [], {}
    d = "/etc/daskscale/tls"
    args = ["--tls-ca-file", f"{d}/ca.pem", "--tls-cert", f"{d}/{role}.pem", "--tls-key", f"{d}/{role}-key.pem"]
    return args, {"mount": {"name": "tls", "mountPath": d, "readOnly": True},
                  "volume": {"name": "tls", "secret": {"secretName": s.tls_secret}}}


def _worker_container(s: K8sSpec, scheduler: str | None = None) -> dict[str, Any]:
    tls_args, tls = _tls(s, "worker")
    args = ["dask", "worker"] + ([scheduler] if scheduler else []) + [
        "--name", "$(DASK_WORKER_NAME)" if scheduler is None else "$(HOSTNAME)",
        "--nthreads", str(s.cpu), "--memory-limit", str(parse_bytes(s.memory)),
        "--dashboard", "--dashboard-address", "8788"] + tls_args
    c = {"name": "worker", "image": s.image, "args": args, "env": _env(s),
         "resources": _resources(s.memory, s.cpu),
         "ports": [{"name": "http-dashboard", "containerPort": 8788, "protocol": "TCP"}]}
    if tls:
        c["volumeMounts"] = [tls["mount"]]
    return c


def _scheduler_container(s: K8sSpec) -> dict[str, Any]:
    tls_args, tls = _tls(s, "scheduler")
    probe = {"httpGet": {"port": "http-dashboard", "path": "/health"}}
    c = {"name": "scheduler", "image": s.image,
         "args": ["dask", "scheduler", "--host", "0.0.0.0"] + (["--protocol", "tls"] if tls else []) + tls_args,
         "env": _env(s), "resources": _resources(s.scheduler_memory, s.scheduler_cpu),
         "ports": [{"name": "tcp-comm", "containerPort": 8786, "protocol": "TCP"},
                   {"name": "http-dashboard", "containerPort": 8787, "protocol": "TCP"}],
         "readinessProbe": {**probe, "initialDelaySeconds": 0, "periodSeconds": 1, "timeoutSeconds": 300},
         "livenessProbe": {**probe, "initialDelaySeconds": 15, "periodSeconds": 20}}
    if tls:
        c["volumeMounts"] = [tls["mount"]]
    return c


def _pod(s: K8sSpec, container: dict[str, Any], role: str) -> dict[str, Any]:
    pod: dict[str, Any] = {"containers": [container]}
    _, tls = _tls(s, role)
    if tls:
        pod["volumes"] = [tls["volume"]]
    return pod


def _service_ports() -> list[dict[str, Any]]:
    return [{"name": "tcp-comm", "protocol": "TCP", "port": 8786, "targetPort": "tcp-comm"},
            {"name": "http-dashboard", "protocol": "TCP", "port": 8787, "targetPort": "http-dashboard"}]


def render_daskcluster(spec: K8sSpec | dict[str, Any] | None = None) -> dict[str, Any]:
    """The ``DaskCluster`` custom resource (``kubernetes.dask.org/v1``) for ``spec``.

    Examples
    --------
    >>> r = render_daskcluster({"name": "demo", "n_workers": 3})
    >>> r["kind"], r["metadata"]["name"], r["spec"]["worker"]["replicas"]
    ('DaskCluster', 'demo', 3)
    """
    s = _spec(spec)
    meta: dict[str, Any] = {"name": s.name, "labels": {"app.kubernetes.io/part-of": "daskscale"}}
    if s.namespace:
        meta["namespace"] = s.namespace
    return {
        "apiVersion": "kubernetes.dask.org/v1",
        "kind": "DaskCluster",
        "metadata": meta,
        "spec": {
            "idleTimeout": s.idle_timeout,
            "worker": {"replicas": s.n_workers, "spec": _pod(s, _worker_container(s), "worker")},
            "scheduler": {
                "spec": _pod(s, _scheduler_container(s), "scheduler"),
                "service": {"type": "ClusterIP", "ports": _service_ports(),
                            "selector": {"dask.org/cluster-name": s.name, "dask.org/component": "scheduler"}},
            },
        },
    }


def render_manifest(spec: K8sSpec | dict[str, Any] | None = None) -> list[dict[str, Any]]:
    """Plain Kubernetes objects (no operator): scheduler Deployment and Service, worker Deployment.

    Examples
    --------
    >>> [o["kind"] for o in render_manifest(K8sSpec(name="x"))]
    ['Deployment', 'Service', 'Deployment']
    """
    s = _spec(spec)
    ns = {"namespace": s.namespace} if s.namespace else {}
    sched_labels = {"app.kubernetes.io/name": s.name, "app.kubernetes.io/component": "scheduler"}
    worker_labels = {"app.kubernetes.io/name": s.name, "app.kubernetes.io/component": "worker"}
    proto = "tls" if s.tls_secret else "tcp"
    address = f"{proto}://{s.name}-scheduler:8786"

    def deployment(name: str, labels: dict[str, str], replicas: int, pod: dict[str, Any]) -> dict[str, Any]:
        return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name, "labels": labels, **ns},
                "spec": {"replicas": replicas, "selector": {"matchLabels": labels},
                         "template": {"metadata": {"labels": labels}, "spec": pod}}}

    return [
        deployment(f"{s.name}-scheduler", sched_labels, 1, _pod(s, _scheduler_container(s), "scheduler")),
        {"apiVersion": "v1", "kind": "Service", "metadata": {"name": f"{s.name}-scheduler", **ns},
         "spec": {"type": "ClusterIP", "selector": sched_labels, "ports": _service_ports()}},
        deployment(f"{s.name}-worker", worker_labels, s.n_workers,
                   _pod(s, _worker_container(s, scheduler=address), "worker")),
    ]


def to_yaml(resources: dict[str, Any] | list[dict[str, Any]]) -> str:
    """YAML text (several documents for a list) for ``kubectl apply -f -``."""
    import yaml

    docs = resources if isinstance(resources, list) else [resources]
    return "---\n".join(yaml.safe_dump(d, sort_keys=False) for d in docs)


def make_kube_cluster(spec: K8sSpec | dict[str, Any] | None = None, **kwargs: Any) -> Any:
    """Create the ``DaskCluster`` through dask-kubernetes' ``KubeCluster`` (extra ``daskscale[k8s]``).

    Raises
    ------
    ClusterError
        If dask-kubernetes is not installed, or the Kubernetes API refused or could not be reached.
    """
    s = _spec(spec)
    try:
        from dask_kubernetes.operator import KubeCluster
    except ImportError as exc:
        raise ClusterError("Kubernetes clusters need dask-kubernetes: pip install 'daskscale[k8s]' "
                           f"({exc})") from None
    try:
        return KubeCluster(custom_cluster_spec=render_daskcluster(s), namespace=s.namespace, **kwargs)
    except Exception as exc:  # noqa: BLE001 - kr8s/kopf raise many types; say where it failed
        raise ClusterError(f"could not create DaskCluster {s.name!r} through KubeCluster: "
                           f"{type(exc).__name__}: {exc}. Is kubectl configured and the Dask operator installed?") from exc


def schema() -> dict[str, Any]:
    """The JSON schema (a subset of dask-kubernetes' ``DaskCluster`` CRD) rendered resources follow."""
    import json
    from importlib.resources import files

    return json.loads(files("daskscale.deploy").joinpath("daskcluster.schema.json").read_text())


def crd_schema() -> dict[str, Any] | None:
    """The ``openAPIV3Schema`` of the ``DaskCluster`` CRD shipped with dask-kubernetes, if installed."""
    import importlib.util
    from pathlib import Path

    import yaml

    spec = importlib.util.find_spec("dask_kubernetes")
    if spec is None or not spec.submodule_search_locations:
        return None
    root = Path(list(spec.submodule_search_locations)[0])
    for p in (root / "operator/deployment/helm/dask-kubernetes-operator/crds/daskcluster.yaml",
              root / "operator/customresources/daskcluster.yaml"):
        if p.exists():
            crd = yaml.safe_load(p.read_text())
            if isinstance(crd, dict) and "versions" in crd.get("spec", {}):
                return crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    return None
