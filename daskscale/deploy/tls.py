"""Self-signed TLS for a Dask cluster: one CA, and a certificate each for scheduler, workers, clients.

Dask checks that every peer presents a certificate signed by the cluster's CA
(``ssl.CERT_REQUIRED``) and, since clusters are usually addressed by IP, does not check host
names. So a private CA made here is enough to refuse any client that was not given a
certificate, while the traffic is encrypted. Keys are EC P-256 (fast to generate, small) and
written with mode 0600.
"""

from __future__ import annotations

import datetime as _dt
import ipaddress
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

from daskscale.errors import ClusterError

__all__ = ["TLSFiles", "generate_certificates", "load_certificates", "ROLES"]

ROLES = ("scheduler", "worker", "client")


@dataclass(frozen=True)
class TLSFiles:
    """Paths of a CA and of one certificate/key pair per role, in ``directory``."""

    directory: Path

    @property
    def ca_file(self) -> Path:
        return self.directory / "ca.pem"

    def cert(self, role: str) -> Path:
        return self.directory / f"{role}.pem"

    def key(self, role: str) -> Path:
        return self.directory / f"{role}-key.pem"

    def security(self, role: str = "all", *, require_encryption: bool = True):
        """A :class:`distributed.security.Security` for ``role`` ("scheduler", "worker",
        "client") or ``"all"`` (every role, as an embedded cluster needs)."""
        from distributed.security import Security

        roles = ROLES if role == "all" else (role,)
        if not set(roles) <= set(ROLES):
            raise ValueError(f"role must be one of {ROLES} or 'all', not {role!r}")
        kw: dict[str, str] = {}
        for r in roles:
            kw[f"tls_{r}_cert"] = str(self.cert(r))
            kw[f"tls_{r}_key"] = str(self.key(r))
        return Security(tls_ca_file=str(self.ca_file), require_encryption=require_encryption, **kw)

    def cli_args(self, role: str) -> list[str]:
        """Arguments for ``dask scheduler`` / ``dask worker`` using these files."""
        return ["--tls-ca-file", str(self.ca_file), "--tls-cert", str(self.cert(role)),
                "--tls-key", str(self.key(role))]


def _name(common_name: str):
    from cryptography import x509
    from cryptography.x509.oid import NameOID

    return x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "daskscale"),
                      x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _write_key(path: Path, key) -> None:
    from cryptography.hazmat.primitives import serialization

    data = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)


def _sans(hosts: Iterable[str]):
    from cryptography import x509

    out = []
    for h in hosts:
        try:
            out.append(x509.IPAddress(ipaddress.ip_address(h)))
        except ValueError:
            out.append(x509.DNSName(h))
    return out


def generate_certificates(directory: str | os.PathLike, *, hosts: Iterable[str] = ("127.0.0.1", "localhost"),
                          days: int = 30, overwrite: bool = False) -> TLSFiles:
    """Create a CA and scheduler/worker/client certificates in ``directory``.

    Parameters
    ----------
    directory
        Created if missing. Holds ``ca.pem`` and ``<role>.pem`` / ``<role>-key.pem``
        for each role; the CA's private key is not kept (no new certificate can be
        signed later, so a stolen directory cannot mint more identities).
    hosts
        Host names and IP addresses put in the certificates' subjectAltName.
    days
        Validity of the certificates.
    overwrite
        Replace existing files; otherwise an existing set is an error.

    Returns
    -------
    TLSFiles

    Examples
    --------
    >>> import tempfile
    >>> files = generate_certificates(tempfile.mkdtemp())
    >>> sec = files.security("client")
    >>> sec.require_encryption, files.ca_file.name
    (True, 'ca.pem')
    """
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID

    files = TLSFiles(Path(directory))
    if files.ca_file.exists() and not overwrite:
        raise ClusterError(f"{files.ca_file} exists; pass overwrite=True to make new certificates "
                           "(clients holding the old ones will be refused)")
    files.directory.mkdir(parents=True, exist_ok=True)
    now = _dt.datetime.now(_dt.timezone.utc) - _dt.timedelta(minutes=5)
    until = now + _dt.timedelta(days=days)

    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = _name("daskscale cluster CA")
    ca = (x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name)
          .public_key(ca_key.public_key()).serial_number(x509.random_serial_number())
          .not_valid_before(now).not_valid_after(until)
          .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
          .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                       content_commitment=False, key_encipherment=False,
                                       data_encipherment=False, key_agreement=False,
                                       encipher_only=False, decipher_only=False), critical=True)
          .sign(ca_key, hashes.SHA256()))
    files.ca_file.write_bytes(ca.public_bytes(serialization.Encoding.PEM))

    for role in ROLES:
        key = ec.generate_private_key(ec.SECP256R1())
        # Every role both accepts and opens connections (workers talk to each other).
        cert = (x509.CertificateBuilder().subject_name(_name(f"daskscale {role}")).issuer_name(ca_name)
                .public_key(key.public_key()).serial_number(x509.random_serial_number())
                .not_valid_before(now).not_valid_after(until)
                .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
                .add_extension(x509.SubjectAlternativeName(_sans(hosts)), critical=False)
                .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH,
                                                      ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
                .sign(ca_key, hashes.SHA256()))
        files.cert(role).write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        _write_key(files.key(role), key)
    return files


def load_certificates(directory: str | os.PathLike) -> TLSFiles:
    """The :class:`TLSFiles` in ``directory``, checking that every file is there.

    Raises
    ------
    ClusterError
        If the CA or a role's certificate or key is missing.
    """
    files = TLSFiles(Path(directory))
    need = [files.ca_file] + [p for r in ROLES for p in (files.cert(r), files.key(r))]
    missing = [p.name for p in need if not p.exists()]
    if missing:
        raise ClusterError(f"TLS directory {files.directory} lacks {missing}; create it with "
                           "`daskscale cluster start --tls DIR` or daskscale.deploy.tls.generate_certificates(DIR)")
    return files
