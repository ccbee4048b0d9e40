"""Why a TLS connection to a swarm peer fails, in words a person can act on.

gRPC Python reports a failed handshake as ``UNAVAILABLE … Socket closed`` and keeps the cause
to its C-core. When a channel does not come up we repeat the handshake ourselves with
Python's ssl module and the same files (CA, certificate, key, target name) and classify what
we see: the peer's certificate from an unknown CA, for another name, expired or not yet
valid; or the peer refusing ours (unknown CA, expired, none sent); or one side speaking TLS
and the other plaintext. The answer names the peer and says which side objects.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import socket
import ssl
from pathlib import Path

import grpc
from cryptography.exceptions import InvalidSignature

from swarm_lsp.config import SwarmSettings
from swarm_lsp.dispatch.locality import split_host_port
from swarm_lsp.errors import DispatchError, LocalityError

# The HTTP/2 client preface and an empty SETTINGS frame: a gRPC server answers it with its own
# SETTINGS once it has accepted our certificate, or with a TLS alert when it has not.
_H2_PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + b"\x00\x00\x00\x04\x00\x00\x00\x00\x00"

# OpenSSL verify codes (X509_V_ERR_*).
_UNKNOWN_CA = {2, 7, 18, 19, 20, 21}
_EXPIRED = 10
_NOT_YET_VALID = 9
_NAME_MISMATCH = {62, 63, 64}

# What a peer's alert about our certificate means (OpenSSL reason names, lower-cased).
_PEER_ALERTS = (
    ("unknown_ca", "it does not trust the CA that signed our certificate (another CA)"),
    ("decrypt_error", "our certificate's signature does not match its CA (another CA)"),
    ("certificate_required", "we sent no client certificate and it requires one"),
    ("handshake_failure", "the handshake failed on its side (no client certificate?)"),
    ("certificate_expired", "our certificate has expired"),
    ("bad_certificate", "it rejects our certificate"),
    ("unsupported_certificate", "it rejects our certificate (wrong key usage?)"),
    ("certificate_unknown", "it rejects our certificate"),
)


def _cert_summary(der: bytes) -> tuple[str, str, datetime.datetime, datetime.datetime]:
    """(subject CN, issuer CN, not before, not after) of a DER certificate."""
    from cryptography import x509
    from cryptography.x509.oid import NameOID

    cert = x509.load_der_x509_certificate(der)

    def cn(name: x509.Name) -> str:
        values = name.get_attributes_for_oid(NameOID.COMMON_NAME)
        return str(values[0].value) if values else name.rfc4514_string()

    return (
        cn(cert.subject),
        cn(cert.issuer),
        cert.not_valid_before_utc,
        cert.not_valid_after_utc,
    )


def _ca_name(path: str) -> str:
    """`` ('<CA common name>')`` of the CA file at ``path``, or ""."""
    from cryptography import x509
    from cryptography.x509.oid import NameOID

    try:
        cert = x509.load_pem_x509_certificate(Path(path).read_bytes())
    except (OSError, ValueError):
        return ""
    values = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    return f" ({str(values[0].value)!r})" if values else ""


def _sans(der: bytes) -> list[str]:
    from cryptography import x509

    cert = x509.load_der_x509_certificate(der)
    try:
        ext = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName)
    except x509.ExtensionNotFound:
        return []
    return [str(name.value) for name in ext.value]


def _peer_der(
    host: str, port: int, timeout: float, own: tuple[str, str] | None = None
) -> bytes | None:
    """The peer's certificate, fetched without verifying it (to describe it).

    With ``own`` (certificate, key) we present ours, so the peer does not log this look as
    one more client without a certificate.
    """
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    context.set_alpn_protocols(["h2"])
    if own is not None:
        with contextlib.suppress(OSError, ssl.SSLError):
            context.load_cert_chain(*own)
    try:
        with (
            socket.create_connection((host, port), timeout=timeout) as raw,
            context.wrap_socket(raw, server_hostname=host) as tls,
        ):
            return tls.getpeercert(binary_form=True)
    except (OSError, ssl.SSLError):
        return None


def _speaks_tls(host: str, port: int, timeout: float) -> bool:
    return _peer_der(host, port, timeout) is not None


def _server_cert_problem(
    err: ssl.SSLCertVerificationError, host: str, port: int, ca: str, own: tuple[str, str]
) -> str:
    der = _peer_der(host, port, 2.0, own)
    described = ""
    subject = issuer = ""
    not_after = not_before = None
    if der is not None:
        subject, issuer, not_before, not_after = _cert_summary(der)
        described = f" (certificate for {subject!r}, issued by {issuer!r})"
    code = err.verify_code
    if code in _UNKNOWN_CA:
        return (
            f"its certificate is signed by a CA we do not trust{described}; "
            f"swarm.tlsCa is {ca}{_ca_name(ca)}: use the CA that signed the peer's certificate"
        )
    if code == _EXPIRED:
        when = f" on {not_after:%Y-%m-%d %H:%M} UTC" if not_after else ""
        return f"its certificate expired{when}{described}; renew it with `swarm-lsp certs`"
    if code == _NOT_YET_VALID:
        when = f" until {not_before:%Y-%m-%d %H:%M} UTC" if not_before else ""
        return f"its certificate is not valid yet{when}{described}; check both clocks"
    if code in _NAME_MISMATCH:
        names = ", ".join(_sans(der)) if der else "other names"
        return (
            f"its certificate is for {names}, not {host!r}{described}; dial one of those "
            f"names or make a certificate with `swarm-lsp certs --host {host}`"
        )
    return f"its certificate was refused: {err.verify_message}{described}"


def _alert_meaning(err: ssl.SSLError) -> str:
    text = f"{err.reason or ''} {err}".lower()
    for key, meaning in _PEER_ALERTS:
        if key in text:
            return meaning
    return f"it ended the handshake ({err.reason or err})"


def diagnose(target: str, swarm: SwarmSettings, timeout: float = 3.0) -> str | None:
    """Why TLS with ``target`` fails, as seen from here; None when it is not a TLS problem.

    Blocking (run it in a thread); bounded by ``timeout`` per connection.
    """
    try:
        host, port = split_host_port(target)
    except LocalityError:
        return None
    if port is None:
        return None
    peer = f"the coordinator {target}"
    if not (swarm.tls_ca and swarm.tls_cert and swarm.tls_key):
        if _speaks_tls(host, port, timeout):
            return (
                f"TLS failure: {peer} speaks TLS but this side has no TLS configured; "
                "set swarm.tlsCa, swarm.tlsCert and swarm.tlsKey (see `swarm-lsp certs`)"
            )
        return None
    ca, cert, key = (
        str(Path(path).expanduser()) for path in (swarm.tls_ca, swarm.tls_cert, swarm.tls_key)
    )
    try:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        context.load_verify_locations(cafile=ca)
        context.load_cert_chain(cert, key)
    except (OSError, ssl.SSLError) as err:
        return f"TLS failure on this side: cannot load swarm.tlsCa/tlsCert/tlsKey: {err}"
    context.set_alpn_protocols(["h2"])
    try:
        raw = socket.create_connection((host, port), timeout=timeout)
    except OSError:
        return None  # nothing listens: gRPC's own message says so
    with contextlib.closing(raw):
        try:
            tls = context.wrap_socket(raw, server_hostname=host)
        except ssl.SSLCertVerificationError as err:
            why = _server_cert_problem(err, host, port, ca, (cert, key))
            return f"TLS failure: this side refuses {peer}: {why}"
        except ssl.SSLError as err:
            if "wrong_version" in str(err).lower() or "record" in str(err).lower():
                return (
                    f"TLS failure: {peer} does not speak TLS (plaintext?) but this side has "
                    "swarm.tlsCa/tlsCert/tlsKey set; configure TLS on both sides or neither"
                )
            return f"TLS failure: {peer} refuses this side: {_alert_meaning(err)}"
        except OSError as err:
            return f"TLS failure: {peer} closed the connection during the handshake ({err})"
        with contextlib.closing(tls):
            # TLS 1.3: the server checks our certificate after our side has finished; its
            # verdict arrives as an alert (or its HTTP/2 SETTINGS) on the first read.
            try:
                tls.sendall(_H2_PREFACE)
                data = tls.recv(64)
            except ssl.SSLError as err:
                return f"TLS failure: {peer} refuses this side: {_alert_meaning(err)}"
            except OSError:
                return None
            if not data:
                return f"TLS failure: {peer} refuses this side: {_own_cert_problem(cert, ca)}"
    return None


def _own_cert_problem(cert_path: str, ca_path: str) -> str:
    """Why a peer that accepted our CA may refuse our certificate (it says nothing itself)."""
    from cryptography import x509

    try:
        ours = x509.load_pem_x509_certificate(Path(cert_path).read_bytes())
        ca = x509.load_pem_x509_certificate(Path(ca_path).read_bytes())
    except (OSError, ValueError) as err:
        return f"it closed the connection after the handshake (cannot read our files: {err})"
    now = datetime.datetime.now(datetime.UTC)
    if ours.not_valid_after_utc < now:
        return (
            f"our certificate {cert_path} expired on {ours.not_valid_after_utc:%Y-%m-%d %H:%M} "
            "UTC; renew it with `swarm-lsp certs`"
        )
    if ours.not_valid_before_utc > now:
        return f"our certificate {cert_path} is not valid yet; check both clocks"
    try:
        ours.verify_directly_issued_by(ca)
    except (ValueError, TypeError, InvalidSignature):
        return (
            f"our certificate {cert_path} is signed by another CA "
            f"({ours.issuer.rfc4514_string()}) than swarm.tlsCa {ca_path}{_ca_name(ca_path)}, "
            "the CA the coordinator trusts; make it with that CA "
            "(`swarm-lsp certs --out <that CA's folder> --host <this machine>`)"
        )
    return (
        "it closed the connection after the handshake: it does not accept our certificate "
        "(does it trust another CA?)"
    )


async def wait_ready(
    channel: grpc.aio.Channel, address: str, swarm: SwarmSettings, timeout: float
) -> None:
    """Until the channel is READY; TimeoutError after ``timeout``.

    The first time a connection attempt fails, the TLS handshake is repeated with Python's
    ssl module: a certificate problem is reported at once, with its cause, instead of a
    timeout that names none.
    """
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    probed = False
    state = channel.get_state(try_to_connect=True)
    while state != grpc.ChannelConnectivity.READY:
        remaining = deadline - loop.time()
        if remaining <= 0:
            raise TimeoutError
        if state == grpc.ChannelConnectivity.TRANSIENT_FAILURE and not probed:
            probed = True
            why = await asyncio.to_thread(diagnose, address, swarm, min(3.0, remaining))
            if why:
                raise DispatchError(f"cannot connect to coordinator {address}: {why}")
            continue
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(channel.wait_for_state_change(state), remaining)
        state = channel.get_state(try_to_connect=True)
