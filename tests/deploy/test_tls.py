"""Certificates from daskscale.deploy.tls secure a real cluster; clients without them are refused."""

from __future__ import annotations

import os
import stat

import pytest
from click.testing import CliRunner
from cryptography import x509

import daskscale
from daskscale.deploy.tls import generate_certificates, load_certificates
from daskscale.errors import ClusterError


def test_certificates_are_signed_by_the_ca_and_keys_private(tmp_path):
    files = generate_certificates(tmp_path / "tls", hosts=["10.1.2.3", "node-1"])
    ca = x509.load_pem_x509_certificate(files.ca_file.read_bytes())
    for role in ("scheduler", "worker", "client"):
        cert = x509.load_pem_x509_certificate(files.cert(role).read_bytes())
        cert.verify_directly_issued_by(ca)
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        assert "node-1" in san.get_values_for_type(x509.DNSName)
        assert stat.S_IMODE(os.stat(files.key(role)).st_mode) == 0o600
    assert not list((tmp_path / "tls").glob("ca-key*")), "the CA key must not be kept"
    with pytest.raises(ClusterError, match="exists"):
        generate_certificates(tmp_path / "tls")
    with pytest.raises(ClusterError, match="lacks"):
        load_certificates(tmp_path)


def test_tls_cluster_accepts_certified_clients_only(tmp_path):
    from distributed import Client

    with daskscale.connect(n_workers=1, threads_per_worker=1, memory_limit="600MiB", security=True,
                           dashboard_address=None, quiet=True) as conn:
        d = conn.describe()
        assert d["tls"] and d["scheduler"].startswith("tls://127.0.0.1:")
        # one machine: distributed's temporary certificate, in memory only (no key file to leak)
        sec = conn.cluster.security
        assert conn.tls is None and sec.require_encryption
        assert all(getattr(sec, f"tls_{r}_key").startswith("-----BEGIN PRIVATE KEY-----")
                   for r in ("client", "scheduler", "worker"))
        with daskscale.connect(d["scheduler"], security=sec, quiet=True) as other:
            assert other.submit(sum, [2, 3]).result(timeout=30) == 5
        with pytest.raises((OSError, TimeoutError)):
            Client(d["scheduler"].replace("tls://", "tcp://"), timeout="2s")
        stranger = generate_certificates(tmp_path / "other").security("client")
        with pytest.raises((OSError, TimeoutError)):
            Client(d["scheduler"], security=stranger, timeout="2s")
        with pytest.raises(ClusterError, match="certificate directory|new certificates"):
            daskscale.connect(d["scheduler"], security=True, quiet=True)


def test_cli_describe_over_tls(tmp_path):
    """A certificate directory is what another process (or machine) joins an embedded cluster with."""
    from daskscale.cli import cli

    files = generate_certificates(tmp_path / "tls")
    with daskscale.connect(n_workers=1, threads_per_worker=1, memory_limit="600MiB", security=files.directory,
                           dashboard_address=None, quiet=True) as conn:
        addr = conn.describe()["scheduler"]
        assert addr.startswith("tls://") and conn.tls.directory == files.directory
        res = CliRunner().invoke(cli, ["cluster", "describe", addr, "--tls", str(files.directory), "--json"])
        assert res.exit_code == 0, res.output
        assert '"tls": true' in res.output and '"n_workers": 1' in res.output
