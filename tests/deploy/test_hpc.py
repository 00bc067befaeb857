"""HPC: the SLURM / PBS job scripts dask-jobqueue generates for daskscale."""

from __future__ import annotations

import sys

import pytest
from click.testing import CliRunner

from daskscale.errors import ClusterError

pytest.importorskip("dask_jobqueue", reason="dask-jobqueue (extra daskscale[hpc]) is not installed")

from daskscale.deploy.hpc import job_script, make_hpc_cluster  # noqa: E402


def test_slurm_script_asks_for_what_was_given():
    s = job_script("slurm", cores=8, memory="32GiB", queue="short", walltime="02:30:00", account="ml",
                   scheduler="tls://10.0.0.5:8786")
    lines = s.splitlines()
    assert lines[0].startswith("#!") and "#SBATCH -p short" in lines and "#SBATCH -A ml" in lines
    assert "#SBATCH -t 02:30:00" in lines and "#SBATCH --cpus-per-task=8" in lines
    assert any(l.startswith("#SBATCH --mem=") for l in lines)
    cmd = lines[-1]
    # one single-threaded worker process per core (partial_fit holds the GIL)
    assert "tls://10.0.0.5:8786" in cmd and "--nworkers 8" in cmd and "--nthreads 1" in cmd
    assert "--memory-limit 4.00GiB" in cmd


def test_pbs_script():
    s = job_script("pbs", cores=4, memory="16GiB", queue="batch", processes=2)
    assert "#PBS -q batch" in s and "ncpus=4" in s and "--nworkers 2" in s and "--nthreads 2" in s


def test_unknown_system_is_a_clear_error():
    with pytest.raises(ClusterError, match="choose one of"):
        job_script("lsf-ish")


def test_cluster_scheduler_and_dashboard_stay_on_loopback_and_script_points_at_it():
    cluster = make_hpc_cluster("slurm", cores=2, memory="4GiB", queue="debug")
    try:
        assert cluster.scheduler_address.startswith("tcp://127.0.0.1:")
        assert cluster.dashboard_link.startswith("http://127.0.0.1:")
        assert cluster.scheduler_address in cluster.job_script() and "#SBATCH -p debug" in cluster.job_script()
    finally:
        cluster.close()


def test_missing_extra_is_a_clear_error(monkeypatch):
    monkeypatch.setitem(sys.modules, "dask_jobqueue", None)
    with pytest.raises(ClusterError, match=r"daskscale\[hpc\]"):
        job_script("slurm")


def test_cli_prints_the_job_script():
    from daskscale.cli import cli

    res = CliRunner().invoke(cli, ["cluster", "hpc", "--system", "pbs", "--queue", "long", "--cores", "2"])
    assert res.exit_code == 0, res.output
    assert "#PBS -q long" in res.output and "dask_worker" in res.output
