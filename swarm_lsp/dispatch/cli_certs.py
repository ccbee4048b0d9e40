"""``swarm-lsp certs``: a local CA and per-host certificates for mTLS between swarm machines.

Each host certificate is valid for both serving and connecting (serverAuth + clientAuth), so
the same files configure a coordinator (``--listen`` with TLS) and its workers and clients:
``swarm.tlsCa = ca.pem``, ``swarm.tlsCert = <host>.pem``, ``swarm.tlsKey = <host>.key``.
The CA key never leaves the machine that ran this command; keep it private.

With ``--role client|worker|operator --name NAME`` it makes a credential instead: the
certificate's common name is the identity (a worker registers under that name only), and its
organizational units carry the kind, the task roles a worker may run (``--allow-role``) and the
most slots it may claim (``--capacity``). A client credential cannot register as a worker and
sees only its own tasks; an operator credential sees all.
"""

from __future__ import annotations

import argparse
from collections.abc import Iterable
from pathlib import Path
from typing import Any

DEFAULT_DAYS = 825


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--out",
        type=Path,
        default=Path.home() / ".config" / "swarm-lsp" / "certs",
        help="folder for ca.pem, ca.key and <host>.pem/.key [%(default)s]",
    )
    parser.add_argument(
        "--host",
        action="append",
        default=[],
        help="a host name or IP address to certify (repeatable; default: this machine)",
    )
    parser.add_argument("--days", type=int, default=DEFAULT_DAYS, help="validity [%(default)s]")
    parser.add_argument(
        "--role",
        choices=("client", "worker", "operator"),
        help="make a credential of this kind (with --name) instead of host certificates",
    )
    parser.add_argument("--name", help="the credential's identity (a worker's name)")
    parser.add_argument(
        "--allow-role",
        action="append",
        default=[],
        help="a task role a worker credential may run (repeatable; default: any)",
    )
    parser.add_argument(
        "--capacity", type=int, default=0, help="most slots a worker may claim (0: the cap)"
    )


def run(args: argparse.Namespace) -> int:
    import socket

    hosts = args.host or [socket.gethostname()]
    ca_cert, _ca_key = ensure_ca(args.out, days=args.days)
    print(f"CA: {ca_cert}")
    if args.role:
        name = args.name or socket.gethostname()
        cert, key = make_credential_cert(
            args.out,
            name,
            args.role,
            roles=args.allow_role,
            capacity=args.capacity,
            hosts=tuple(args.host),
            days=args.days,
        )
        print(f"{args.role} {name}: {cert} {key}")
        return 0
    for host in hosts:
        cert, key = make_host_cert(args.out, host, days=args.days)
        print(f"{host}: {cert} {key}")
    print(
        "configure each machine with swarm.tlsCa, swarm.tlsCert and swarm.tlsKey "
        "(copy ca.pem and that host's .pem/.key; never copy ca.key)"
    )
    return 0


def _write_private(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.touch(mode=0o600, exist_ok=True)
    path.chmod(0o600)
    path.write_bytes(data)


def _write_pair(cert_path: Path, cert: Any, key_path: Path, key: Any) -> tuple[Path, Path]:
    """The certificate (PEM) and its private key (PKCS8 PEM, owner-only); their paths."""
    from cryptography.hazmat.primitives import serialization

    _write_private(
        key_path,
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ),
    )
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return cert_path, key_path


def ensure_ca(out: Path, *, days: int = DEFAULT_DAYS, name: str = "") -> tuple[Path, Path]:
    """Make ``ca.pem``/``ca.key`` in ``out`` unless they exist; return their paths.

    The default name carries a random suffix ("swarm-lsp local CA 3f9a1c"), so two CAs never
    look alike in an error message and a certificate is never checked against a namesake.
    """
    import datetime
    import secrets

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    cert_path, key_path = out / "ca.pem", out / "ca.key"
    if cert_path.exists() and key_path.exists():
        return cert_path, key_path
    key = ec.generate_private_key(ec.SECP256R1())
    name = name or f"swarm-lsp local CA {secrets.token_hex(3)}"
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    return _write_pair(cert_path, cert, key_path, key)


def make_credential_cert(
    out: Path,
    name: str,
    kind: str,
    *,
    roles: Iterable[str] = (),
    capacity: int = 0,
    hosts: tuple[str, ...] = (),
    days: int = DEFAULT_DAYS,
) -> tuple[Path, Path]:
    """A ``kind`` credential for ``name`` (files ``<kind>-<name>.pem/.key``)."""
    from swarm_lsp.dispatch.credentials import subject_units

    return make_host_cert(
        out,
        name,
        days=days,
        extra_names=hosts,
        units=subject_units(kind, roles, capacity),
        file_stem=f"{kind}-{name}",
    )


def make_host_cert(
    out: Path,
    host: str,
    *,
    days: int = DEFAULT_DAYS,
    extra_names: tuple[str, ...] = (),
    units: Iterable[str] = (),
    file_stem: str = "",
) -> tuple[Path, Path]:
    """A certificate for ``host`` (plus localhost and loopback), signed by ``out``'s CA.

    ``units``: organizational units for the subject (a credential's kind and limits).
    """
    import datetime
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    ca_cert_path, ca_key_path = ensure_ca(out, days=days)
    ca_cert = x509.load_pem_x509_certificate(ca_cert_path.read_bytes())
    ca_key = serialization.load_pem_private_key(ca_key_path.read_bytes(), password=None)
    if not isinstance(ca_key, ec.EllipticCurvePrivateKey):
        raise ValueError(f"{ca_key_path} is not an EC key made by swarm-lsp certs")
    names: list[x509.GeneralName] = []
    for entry in dict.fromkeys((host, "localhost", "127.0.0.1", "::1", *extra_names)):
        try:
            names.append(x509.IPAddress(ipaddress.ip_address(entry)))
        except ValueError:
            names.append(x509.DNSName(entry))
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(
            x509.Name(
                [
                    x509.NameAttribute(NameOID.COMMON_NAME, host),
                    *(x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, u) for u in units),
                ]
            )
        )
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=days))
        .add_extension(x509.SubjectAlternativeName(names), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.ExtendedKeyUsage(
                [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]
            ),
            critical=False,
        )
        .sign(ca_key, hashes.SHA256())
    )
    safe = "".join(c if c.isalnum() or c in "-._" else "_" for c in file_stem or host)
    cert_path, key_path = out / f"{safe}.pem", out / f"{safe}.key"
    return _write_pair(cert_path, cert, key_path, key)
