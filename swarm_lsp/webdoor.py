"""What every WebSocket door of swarm-lsp checks before the upgrade: its address and the Origin.

A browser sends ``Origin`` with every WebSocket handshake, and any page the user visits may try
to open ``ws://127.0.0.1:PORT``: only origins the door was told about (its own page, an editor
page the user configured) get through; other browser origins get HTTP 403 before the upgrade.
Clients that are not browsers send no ``Origin`` and are let through to the token check.

``Host`` is checked for plain HTTP requests (the dashboard's page and assets): a page on a
rebound DNS name reaches the loopback port with a foreign ``Host``.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from http import HTTPStatus

from swarm_lsp.dispatch.locality import split_host_port
from swarm_lsp.errors import ConfigError, LocalityError

log = logging.getLogger(__name__)

LOOPBACK_NAMES = ("127.0.0.1", "localhost", "[::1]")


def parse_listen(text: str, default_host: str = "127.0.0.1") -> tuple[str, int]:
    """``PORT``, ``HOST:PORT`` or ``[V6]:PORT`` → (host, port); loopback when no host."""
    value = text.strip()
    if value.isdigit():
        host, port = default_host, int(value)
    else:
        try:
            host, maybe_port = split_host_port(value)
        except (LocalityError, ValueError) as err:
            raise ConfigError(f"{text!r} is not [HOST:]PORT: {err}") from None
        if maybe_port is None:
            raise ConfigError(f"{text!r} has no port; use [HOST:]PORT")
        port = maybe_port
        host = host or default_host
    if not 0 <= port <= 65535:
        raise ConfigError(f"port {port} is out of range")
    return host, port


def authority(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


class OriginPolicy:
    """The origins (``scheme://host:port``) allowed to open the door; no Origin is allowed."""

    def __init__(self, allowed: Iterable[str] = ()) -> None:
        self.allowed = {o.strip().rstrip("/").lower() for o in allowed if o.strip()}

    @classmethod
    def own_page(cls, host: str, port: int, extra: Iterable[str] = ()) -> OriginPolicy:
        """The page served at ``host:port`` itself (by each loopback name) plus ``extra``."""
        names = {authority(host, port)}
        if host in ("127.0.0.1", "::1", "localhost"):
            names |= {f"{name}:{port}" for name in LOOPBACK_NAMES}
        return cls([*(f"http://{n}" for n in names), *extra])

    def refusal(self, origin: str | None) -> str:
        """Why a handshake with this Origin is refused (empty: it may go on)."""
        if origin is None:
            return ""
        if origin.strip().rstrip("/").lower() in self.allowed:
            return ""
        return f"origin {origin[:100]!r} is not allowed"

    def hosts(self) -> set[str]:
        """The Host header values a request for one of the allowed pages carries."""
        return {o.split("://", 1)[-1] for o in self.allowed}


FORBIDDEN = HTTPStatus.FORBIDDEN
