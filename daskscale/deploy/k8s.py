"""Kubernetes: render a dask-kubernetes ``DaskCluster`` resource, or plain manifests, with limits.

Both are rendered by dask-kubernetes (the optional extra ``daskscale[k8s]``). Two ways to run
daskscale on Kubernetes:

- With the Dask Kubernetes operator installed in the cluster (``helm install dask-operator``),
  :func:`render_daskcluster` gives the ``DaskCluster`` custom resource (``kubectl apply -f``),
  and ``daskscale.connect(k8s=K8sSpec(...))`` creates it through dask-kubernetes'
  :class:`~dask_kubernetes.operator.KubeCluster`.
- Without the operator, :func:`render_manifest` gives a scheduler Deployment + Service and a
  worker Deployment that plain ``kubectl apply`` understands.

Each worker container gets equal memory request and limit (a Guaranteed-QoS pod, so the kubelet
does not evict it under pressure) and ``--memory-limit`` set to the same value, so Dask spills
to disk and pauses before the kernel's OOM killer acts. The scheduler listens on all of the
pod's interfaces (a pod's address is private to the cluster network); put it behind TLS
(``tls_secret``) when the network is shared.
"""

from __future__ import annotations

import copy
from dataclasses import asdict, dataclass, field
from typing import Any

from dask.utils import parse_bytes

from daskscale.errors import ClusterError

__all__ = ["K8sSpec", "render_daskcluster", "render_manifest", "to_yaml", "make_kube_cluster", "schema", "crd_schema",
           "DEFAULT_IMAGE"]

DEFAULT_IMAGE = "ghcr.io/dask/dask:latest"
_TLS_DIR = "/etc/daskscale/tls"
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


def _env(s: K8sSpec) -> dict[str, str]:
    env = {"DASKSCALE_PROGRESS": "0", **s.env}
    if s.image != DEFAULT_IMAGE:
        env = {_ROUTES_ENV: _ROUTES, **env}
    return {k: str(v) for k, v in env.items()}


def _tls_args(s: K8sSpec, role: str) -> list[str]:
    """Command-line flags for the certificates mounted from the Kubernetes Secret ``tls_secret``."""
    if not s.tls_secret:
        return []
    return ["--tls-ca-file", f"{_TLS_DIR}/ca.pem", "--tls-cert", f"{_TLS_DIR}/{role}.pem",
            "--tls-key", f"{_TLS_DIR}/{role}-key.pem"]


def _operator() -> Any:
    try:
        from dask_kubernetes import operator
    except ImportError as exc:
        raise ClusterError("Kubernetes clusters need dask-kubernetes: pip install 'daskscale[k8s]' "
                           f"({exc})") from None
    return operator


def render_daskcluster(spec: K8sSpec | dict[str, Any] | None = None) -> dict[str, Any]:
    """The ``DaskCluster`` custom resource (``kubernetes.dask.org/v1``) for ``spec``.

    dask-kubernetes' ``make_cluster_spec`` renders it; daskscale then sets what that template
    cannot: the scheduler's own resources, labels and namespace, the TLS Secret's volume, and
    the scheduler command. The template starts ``dask-scheduler``, a script distributed
    removed in 2026.6 (dask/distributed#9335), so its pod would not start on a current image;
    ``dask scheduler`` works on every distributed since 2022.10.

    Raises
    ------
    ClusterError
        If dask-kubernetes (extra ``daskscale[k8s]``) is not installed.

    Examples
    --------
    >>> r = render_daskcluster({"name": "demo", "n_workers": 3})
    >>> r["kind"], r["metadata"]["name"], r["spec"]["worker"]["replicas"]
    ('DaskCluster', 'demo', 3)
    >>> r["spec"]["scheduler"]["spec"]["containers"][0]["args"][:2]
    ['dask', 'scheduler']
    """
    s = _spec(spec)
    worker = ["dask", "worker", "--nthreads", str(s.cpu), "--memory-limit", str(parse_bytes(s.memory)),
              *_tls_args(s, "worker")]
    r = _operator().make_cluster_spec(s.name, image=s.image, n_workers=s.n_workers, env=_env(s),
                                      resources=_resources(s.memory, s.cpu), worker_command=worker,
                                      idle_timeout=s.idle_timeout)
    r["metadata"]["labels"] = {"app.kubernetes.io/part-of": "daskscale"}
    if s.namespace:
        r["metadata"]["namespace"] = s.namespace
    sched = r["spec"]["scheduler"]["spec"]["containers"][0]
    sched["args"] = ["dask", "scheduler", "--host", "0.0.0.0", *(["--protocol", "tls"] if s.tls_secret else []),
                     *_tls_args(s, "scheduler")]
    sched["resources"] = _resources(s.scheduler_memory, s.scheduler_cpu)
    if s.tls_secret:
        for role in ("worker", "scheduler"):
            pod = r["spec"][role]["spec"]
            pod["volumes"] = [{"name": "tls", "secret": {"secretName": s.tls_secret}}]
            pod["containers"][0]["volumeMounts"] = [{"name": "tls", "mountPath": _TLS_DIR, "readOnly": True}]
    return r


def render_manifest(spec: K8sSpec | dict[str, Any] | None = None) -> list[dict[str, Any]]:
    """Plain Kubernetes objects (no operator): scheduler Deployment and Service, worker Deployment.

    The pods are those of :func:`render_daskcluster`; without the operator, nothing gives the
    workers a name or the scheduler's address, so their command says both.

    Examples
    --------
    >>> [o["kind"] for o in render_manifest(K8sSpec(name="x"))]
    ['Deployment', 'Service', 'Deployment']
    """
    s = _spec(spec)
    cluster = copy.deepcopy(render_daskcluster(s)["spec"])
    ns = {"namespace": s.namespace} if s.namespace else {}
    sched_labels = {"app.kubernetes.io/name": s.name, "app.kubernetes.io/component": "scheduler"}
    worker_labels = {"app.kubernetes.io/name": s.name, "app.kubernetes.io/component": "worker"}
    args = cluster["worker"]["spec"]["containers"][0]["args"]
    args[args.index("$(DASK_WORKER_NAME)")] = "$(HOSTNAME)"
    args.insert(2, f"{'tls' if s.tls_secret else 'tcp'}://{s.name}-scheduler:8786")

    def deployment(name: str, labels: dict[str, str], replicas: int, pod: dict[str, Any]) -> dict[str, Any]:
        return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name, "labels": labels, **ns},
                "spec": {"replicas": replicas, "selector": {"matchLabels": labels},
                         "template": {"metadata": {"labels": labels}, "spec": pod}}}

    return [
        deployment(f"{s.name}-scheduler", sched_labels, 1, cluster["scheduler"]["spec"]),
        {"apiVersion": "v1", "kind": "Service", "metadata": {"name": f"{s.name}-scheduler", **ns},
         "spec": {"type": "ClusterIP", "selector": sched_labels, "ports": cluster["scheduler"]["service"]["ports"]}},
        deployment(f"{s.name}-worker", worker_labels, s.n_workers, cluster["worker"]["spec"]),
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
    resource = render_daskcluster(s)
    try:
        return _operator().KubeCluster(custom_cluster_spec=resource, namespace=s.namespace, **kwargs)
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
    from importlib.resources import files

    import yaml

    try:
        crds = files("dask_kubernetes.operator").joinpath("deployment/helm/dask-kubernetes-operator/crds")
        crd = crds.joinpath("daskcluster.yaml").read_text()  # the CRD the Helm chart installs, $refs resolved
    except (ImportError, FileNotFoundError):
        return None
    return yaml.safe_load(crd)["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
