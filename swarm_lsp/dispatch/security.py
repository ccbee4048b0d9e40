"""Transport security for every swarm connection: TLS/mTLS, a shared token, the locality guard.

- Plaintext is allowed only on loopback; any other address needs TLS (``swarm-lsp certs``
  makes a local CA and per-host certificates; the coordinator then requires client
  certificates signed by that CA: mTLS).
- A shared token (``swarm.token``) travels in the ``x-swarm-token`` header and is checked by a
  server interceptor, in constant time.
- Clients check the target before they dial; servers check each caller's address
  (``context.peer()``): anything not loopback, private, link-local or allowed is refused.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import ipaddress
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from pathlib import Path
from typing import Any, Protocol

import grpc

from swarm_lsp.config import SwarmSettings
from swarm_lsp.dispatch.locality import (
    bind_problem,
    check_listen,
    check_peer,
    is_loopback_target,
    is_owned_address,
    is_wildcard,
    resolve,
    split_host_port,
)
from swarm_lsp.dispatch.quiet_log import QuietLog, held_note
from swarm_lsp.errors import ConfigError, LocalityError

log = logging.getLogger(__name__)

TOKEN_HEADER = "x-swarm-token"
DEFAULT_MAX_MESSAGE_BYTES = 32 * 1024 * 1024
_HEALTH_PREFIX = "/grpc.health.v1.Health/"


def grpc_options(max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES) -> list[tuple[str, Any]]:
    """Channel/server options: explicit message limits, keepalive, exclusive ports."""
    return [
        ("grpc.max_send_message_length", max_message_bytes),
        ("grpc.max_receive_message_length", max_message_bytes),
        ("grpc.keepalive_time_ms", 10_000),
        ("grpc.keepalive_timeout_ms", 5_000),
        ("grpc.keepalive_permit_without_calls", 1),
        ("grpc.http2.max_pings_without_data", 0),
        ("grpc.so_reuseport", 0),
    ]


def server_options(max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES) -> list[tuple[str, Any]]:
    return [
        *grpc_options(max_message_bytes),
        ("grpc.http2.min_ping_interval_without_data_ms", 5_000),
        ("grpc.http2.max_ping_strikes", 0),
    ]


def _read(path: str, what: str) -> bytes:
    try:
        return Path(path).expanduser().read_bytes()
    except OSError as err:
        raise ConfigError(f"cannot read the TLS {what} {path!r}: {err}") from err


def uses_tls(settings: SwarmSettings) -> bool:
    return bool(settings.tls_ca or settings.tls_cert or settings.tls_key)


def _tls_files(settings: SwarmSettings) -> tuple[bytes, bytes, bytes]:
    if not (settings.tls_ca and settings.tls_cert and settings.tls_key):
        raise ConfigError(
            "TLS needs all three of swarm.tlsCa, swarm.tlsCert and swarm.tlsKey "
            "(make them with `swarm-lsp certs`)"
        )
    return (
        _read(settings.tls_ca, "CA certificate"),
        _read(settings.tls_cert, "certificate"),
        _read(settings.tls_key, "key"),
    )


def open_channel(
    target: str,
    settings: SwarmSettings,
    *,
    max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES,
) -> grpc.aio.Channel:
    """A grpc.aio channel to an owned peer: TLS when configured, plaintext only on loopback."""
    check_peer(target, settings.allowed_hosts)
    options = grpc_options(max_message_bytes)
    if uses_tls(settings):
        ca, cert, key = _tls_files(settings)
        credentials = grpc.ssl_channel_credentials(
            root_certificates=ca, private_key=key, certificate_chain=cert
        )
        return grpc.aio.secure_channel(target, credentials, options=options)
    if not is_loopback_target(target):
        raise LocalityError(
            f"refusing plaintext to {target!r}: plaintext is allowed only on loopback; "
            "configure swarm.tlsCa/tlsCert/tlsKey (see `swarm-lsp certs`)"
        )
    return grpc.aio.insecure_channel(target, options=options)


def bind(server: grpc.aio.Server, listen: str, settings: SwarmSettings) -> int:
    """Add the listening port (TLS with client certificates, or loopback plaintext).

    Refuses an address that is not this machine's before gRPC sees it, and turns a failed
    bind into one line naming the address and the cause (not a traceback).
    """
    check_listen(listen)
    try:
        if uses_tls(settings):
            ca, cert, key = _tls_files(settings)
            credentials = grpc.ssl_server_credentials(
                [(key, cert)], root_certificates=ca, require_client_auth=True
            )
            port = server.add_secure_port(listen, credentials)
        else:
            if not is_loopback_target(listen):
                raise LocalityError(
                    f"refusing to listen on {listen!r} without TLS: plaintext is allowed only on "
                    "loopback; make certificates with `swarm-lsp certs` and set swarm.tlsCa/"
                    "tlsCert/tlsKey"
                )
            port = server.add_insecure_port(listen)
    except RuntimeError:  # grpcio raises a bare RuntimeError("Failed to bind to address …")
        port = 0
    if port == 0:
        raise ConfigError(f"cannot listen on {listen}: {_bind_failure(listen)}")
    return port


def _bind_failure(listen: str) -> str:
    """The cause of a failed bind, found by trying it ourselves."""
    host, port = split_host_port(listen)
    try:
        addresses = [ipaddress.ip_address("0.0.0.0")] if is_wildcard(host) else resolve(host)
    except LocalityError as err:
        return str(err)
    for address in addresses:
        cause = bind_problem(address, port or 0)
        if cause:
            return cause
    return "the address is in use or not available"


def call_metadata(settings: SwarmSettings) -> tuple[tuple[str, str], ...]:
    return ((TOKEN_HEADER, settings.token),) if settings.token else ()


def peer_ip(peer: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    """``ipv4:1.2.3.4:5`` / ``ipv6:[::1]:5`` / ``ipv6:%5B::1%5D:5`` → address; unix → None."""
    text = peer.replace("%5B", "[").replace("%5D", "]")
    kind, _, rest = text.partition(":")
    if kind == "ipv4":
        return ipaddress.ip_address(rest.rsplit(":", 1)[0])
    if kind == "ipv6":
        host = rest[1:].split("]", 1)[0] if rest.startswith("[") else rest.rsplit(":", 1)[0]
        return ipaddress.ip_address(host.split("%")[0])
    if kind in ("unix", "unix-abstract"):
        return None
    raise LocalityError(f"unrecognised peer address {peer!r}")


def check_peer_address(peer: str, allowed_hosts: Iterable[str] = ()) -> None:
    """Raise LocalityError unless the caller ``peer`` (from ``context.peer()``) is owned."""
    try:
        address = peer_ip(peer)
    except ValueError as err:
        raise LocalityError(f"unrecognised peer address {peer!r}") from err
    if address is not None and not is_owned_address(address, allowed_hosts):
        raise LocalityError(
            f"refusing caller {address}: not an address you own (loopback, private, "
            "link-local or swarm.allowedHosts)"
        )


Guard = Callable[[grpc.aio.ServicerContext[Any, Any], Any], Awaitable[None]]


def _wrap(handler: grpc.RpcMethodHandler, guard: Guard) -> grpc.RpcMethodHandler:
    """The same handler with ``guard(context)`` run before the method body."""
    if handler.unary_unary:
        uu = handler.unary_unary

        async def unary_unary(request: Any, context: Any) -> Any:
            await guard(context, None)
            return await uu(request, context)

        return grpc.unary_unary_rpc_method_handler(
            unary_unary, handler.request_deserializer, handler.response_serializer
        )
    if handler.unary_stream:
        us = handler.unary_stream

        async def unary_stream(request: Any, context: Any) -> AsyncIterator[Any]:
            await guard(context, None)
            async for item in us(request, context):
                yield item

        return grpc.unary_stream_rpc_method_handler(
            unary_stream, handler.request_deserializer, handler.response_serializer
        )
    if handler.stream_unary:
        su = handler.stream_unary

        async def stream_unary(requests: Any, context: Any) -> Any:
            await guard(context, requests)
            return await su(requests, context)

        return grpc.stream_unary_rpc_method_handler(
            stream_unary, handler.request_deserializer, handler.response_serializer
        )
    ss = handler.stream_stream

    async def stream_stream(requests: Any, context: Any) -> AsyncIterator[Any]:
        await guard(context, requests)
        async for item in ss(requests, context):
            yield item

    return grpc.stream_stream_rpc_method_handler(
        stream_stream, handler.request_deserializer, handler.response_serializer
    )


async def _settle(requests: Any) -> None:
    """Take the first message of a client stream before refusing it.

    Aborting a client-streaming call before reading anything can reach the client as
    INTERNAL ("Internal error from Core") instead of our status; one read (bounded: a caller
    that sends nothing waits at most a second) lets the refusal arrive as sent.
    """
    if requests is None:
        return
    with contextlib.suppress(Exception):
        await asyncio.wait_for(anext(aiter(requests)), timeout=1.0)


def peer_label(peer: str) -> str:
    """``ipv4:127.0.0.1:5000`` → ``127.0.0.1:5000`` (as people write addresses)."""
    text = peer.replace("%5B", "[").replace("%5D", "]")
    kind, _, rest = text.partition(":")
    return rest if kind in ("ipv4", "ipv6", "unix", "unix-abstract") else text


class RefusalLog:
    """One log line per refused call, naming the peer; a peer that keeps trying is summed up.

    The same peer host refused the same call for the same reason within ``quiet_s`` is
    counted, not logged again, so a misconfigured client cannot flood the log.
    """

    def __init__(self, quiet_s: float = 10.0) -> None:
        self._quiet = QuietLog(quiet_s)

    def note(self, peer: str, method: str, why: str) -> None:
        label = peer_label(peer)
        held = self._quiet.due((label.rsplit(":", 1)[0], method, why))
        if held is not None:
            log.warning("refused %s from %s: %s%s", method, label, why, held_note(held))


class TokenCheck(Protocol):
    """Tokens a guard accepts besides the shared one."""

    def active(self) -> bool:
        """True when every call must present a token (even without a shared one)."""
        ...

    def accepts(self, token: bytes) -> bool: ...


class GuardInterceptor(grpc.aio.ServerInterceptor):
    """Refuses callers that are not on owned addresses or do not present the token."""

    def __init__(
        self,
        token: str = "",
        allowed_hosts: Iterable[str] = (),
        *,
        peer_check: Callable[[str, tuple[str, ...]], None] | None = None,
        tokens: TokenCheck | None = None,
    ) -> None:
        self._token = token.encode()
        # Per-credential tokens (the coordinator's token table) pass too; once any is issued,
        # every call must present a token.
        self._tokens = tokens
        self._allowed = tuple(allowed_hosts)
        # Tests swap the check to make a loopback caller look foreign.
        self._peer_check = peer_check or check_peer_address
        self._peer_ok: dict[str, str | None] = {}  # peer host -> refusal message or None
        self.refused = 0
        self._refusals = RefusalLog()

    def _peer_refusal(self, peer: str) -> str | None:
        host = peer.rsplit(":", 1)[0]
        if host not in self._peer_ok:
            if len(self._peer_ok) > 4096:
                self._peer_ok.clear()
            try:
                self._peer_check(peer, self._allowed)
                self._peer_ok[host] = None
            except LocalityError as err:
                self._peer_ok[host] = str(err)
        return self._peer_ok[host]

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler:
        handler = await continuation(handler_call_details)
        if handler is None:
            return handler
        method = handler_call_details.method
        if method.startswith(_HEALTH_PREFIX) and not handler.unary_unary:
            return handler  # Watch streams; Check (unary) is still peer-checked below
        token_ok = True
        presented = b""
        tokens = self._tokens
        required = bool(self._token) or (tokens is not None and tokens.active())
        if required and not method.startswith(_HEALTH_PREFIX):
            for key, value in handler_call_details.invocation_metadata or ():
                if key == TOKEN_HEADER:
                    presented = value.encode() if isinstance(value, str) else value
            token_ok = bool(self._token) and hmac.compare_digest(presented, self._token)
            if not token_ok and tokens is not None and presented:
                token_ok = tokens.accepts(presented)

        async def guard(context: grpc.aio.ServicerContext[Any, Any], requests: Any) -> None:
            refusal = self._peer_refusal(context.peer())
            if refusal is not None:
                self.refused += 1
                self._refusals.note(context.peer(), method, refusal)
                await _settle(requests)
                await context.abort(grpc.StatusCode.PERMISSION_DENIED, refusal)
            if not token_ok:
                self.refused += 1
                self._refusals.note(
                    context.peer(),
                    method,
                    "wrong swarm token" if presented else "no swarm token",
                )
                await _settle(requests)
                await context.abort(
                    grpc.StatusCode.UNAUTHENTICATED,
                    f"missing or wrong swarm token (header {TOKEN_HEADER}); "
                    "set swarm.token to the coordinator's token",
                )

        return _wrap(handler, guard)
