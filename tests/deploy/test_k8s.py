"""Kubernetes: the rendered DaskCluster validates against dask-kubernetes' CRD schema and ours."""

from __future__ import annotations

import importlib.util
import sys
from importlib.metadata import entry_points

import jsonschema
import pytest
import yaml
from click.testing import CliRunner

from daskscale.deploy.k8s import (K8sSpec, crd_schema, make_kube_cluster, render_daskcluster, render_manifest,
                                  schema, to_yaml)
from daskscale.errors import ClusterError


# rendering is dask-kubernetes' make_cluster_spec: without the extra only the error is tested
needs_dask_kubernetes = pytest.mark.skipif(importlib.util.find_spec("dask_kubernetes") is None,
                                           reason="dask-kubernetes (extra daskscale[k8s]) is not installed")


def _container(resource, role="worker"):
    part = resource["spec"][role]["spec"]
    return part["containers"][0]


@needs_dask_kubernetes
def test_daskcluster_validates_against_the_schema_subset():
    r = render_daskcluster(K8sSpec(name="fit-1", image="me/daskscale:0.1", n_workers=5, memory="3GiB", cpu=2,
                                   tls_secret="dask-tls"))
    jsonschema.validate(r, schema())
    w = _container(r)
    assert r["spec"]["worker"]["replicas"] == 5
    assert w["resources"] == {"requests": {"memory": "3Gi", "cpu": "2"}, "limits": {"memory": "3Gi", "cpu": "2"}}
    args = w["args"]
    assert args[args.index("--memory-limit") + 1] == str(3 * 2**30)
    assert args[args.index("--nthreads") + 1] == "2"
    assert args[args.index("--tls-cert") + 1].endswith("/worker.pem")
    s = _container(r, "scheduler")
    assert "--protocol" in s["args"] and s["args"][s["args"].index("--protocol") + 1] == "tls"
    assert r["spec"]["worker"]["spec"]["volumes"] == [{"name": "tls", "secret": {"secretName": "dask-tls"}}]
    env = {e["name"]: e["value"] for e in w["env"]}
    assert "daskscale.dashboard" in env["DASK_DISTRIBUTED__SCHEDULER__HTTP__ROUTES"]


@needs_dask_kubernetes
def test_schema_subset_rejects_what_kubernetes_would():
    bad = render_daskcluster()
    bad["spec"]["worker"]["replicas"] = "two"
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(bad, schema())
    bad = render_daskcluster()
    del _container(bad)["resources"]["limits"]
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(bad, schema())


def test_daskcluster_validates_against_the_crd_shipped_with_dask_kubernetes():
    crd = crd_schema()
    if crd is None:
        pytest.skip("dask-kubernetes (extra daskscale[k8s]) is not installed: its CRD schema is not available")
    r = render_daskcluster(K8sSpec(n_workers=3, memory="1536MiB", tls_secret="s"))
    jsonschema.validate(r, crd)
    bad = render_daskcluster()
    bad["spec"]["worker"]["replicas"] = 1.5
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(bad, crd)


@needs_dask_kubernetes
def test_stock_image_does_not_get_the_daskscale_route():
    env = {e["name"] for e in _container(render_daskcluster())["env"]}
    assert "DASK_DISTRIBUTED__SCHEDULER__HTTP__ROUTES" not in env


@needs_dask_kubernetes
def test_plain_manifest_wires_workers_to_the_scheduler_service():
    objs = render_manifest(K8sSpec(name="dk", n_workers=4, memory="2GiB", namespace="ml"))
    sched, svc, workers = objs
    assert svc["metadata"]["name"] == "dk-scheduler" and all(o["metadata"]["namespace"] == "ml" for o in objs)
    assert svc["spec"]["selector"] == sched["spec"]["template"]["metadata"]["labels"]
    assert workers["spec"]["replicas"] == 4
    c = workers["spec"]["template"]["spec"]["containers"][0]
    assert c["args"][:3] == ["dask", "worker", "tcp://dk-scheduler:8786"]
    assert c["resources"]["limits"]["memory"] == "2Gi"
    assert list(yaml.safe_load_all(to_yaml(objs))) == objs


@needs_dask_kubernetes
def test_pods_start_with_commands_that_current_distributed_has():
    """dask-kubernetes' template says ``dask-scheduler``, a script distributed 2026.6 removed."""
    from distributed.cli import dask_scheduler, dask_worker

    clis = {"scheduler": dask_scheduler.main, "worker": dask_worker.main}
    assert set(clis) <= {e.name for e in entry_points(group="dask_cli")}
    spec = K8sSpec(name="c", cpu=3, memory="1GiB")
    sched, _, workers = render_manifest(spec)
    plain = {role: d["spec"]["template"]["spec"]["containers"][0]["args"]
             for role, d in (("scheduler", sched), ("worker", workers))}
    for role, cli in clis.items():
        for args in (_container(render_daskcluster(spec), role)["args"], plain[role]):
            assert args[:2] == ["dask", role], args
            params = cli.make_context(f"dask {role}", args[2:]).params  # parsed as distributed parses them
            if role == "worker":
                assert (params["nthreads"], params["memory_limit"]) == (3, str(2**30))
    assert plain["worker"][2] == "tcp://c-scheduler:8786" and "$(HOSTNAME)" in plain["worker"]


@pytest.mark.parametrize("bad", [{"memory": "lots"}, {"n_workers": -1}, {"nodes": 3}])
def test_bad_spec_is_a_clear_error(bad):
    with pytest.raises(ClusterError, match="k8s spec"):
        render_daskcluster(bad)


def test_missing_extra_is_a_clear_error(monkeypatch):
    monkeypatch.setitem(sys.modules, "dask_kubernetes", None)
    monkeypatch.setitem(sys.modules, "dask_kubernetes.operator", None)
    with pytest.raises(ClusterError, match=r"pip install 'daskscale\[k8s\]'"):
        make_kube_cluster(K8sSpec())
    import daskscale

    with pytest.raises(ClusterError, match="daskscale\\[k8s\\]"):
        daskscale.connect(k8s={"n_workers": 1}, quiet=True)


@needs_dask_kubernetes
def test_cli_k8s_prints_a_valid_resource():
    from daskscale.cli import cli

    res = CliRunner().invoke(cli, ["cluster", "k8s", "--workers", "3", "--image", "me/ds:1", "--memory", "2GiB"])
    assert res.exit_code == 0, res.output
    r = yaml.safe_load(res.output)
    jsonschema.validate(r, schema())
    assert r["spec"]["worker"]["replicas"] == 3 and _container(r)["image"] == "me/ds:1"
    res = CliRunner().invoke(cli, ["cluster", "k8s", "--plain", "--workers", "2"])
    assert [d["kind"] for d in yaml.safe_load_all(res.output)] == ["Deployment", "Service", "Deployment"]
