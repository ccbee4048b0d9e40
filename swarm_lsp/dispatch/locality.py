"""The locality guard: every network peer must be on an address the user owns.

Owned means loopback, private ranges (10/8, 172.16/12, 192.168/16, fc00::/7), link-local, or a
host the user listed in ``swarm.allowedHosts`` (a name, an address or a CIDR block). Names are
resolved and every address they resolve to must pass: a name that also resolves to a public
address is refused, so DNS cannot smuggle a cloud peer in.
"""

from __future__ import annotations

import errno
import ipaddress
import socket
from collections.abc import Iterable
from urllib.parse import urlsplit

from swarm_lsp.errors import LocalityError

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

_PRIVATE_NETWORKS = tuple(
    ipaddress.ip_network(block)
    for block in (
        "127.0.0.0/8",
        "10.0.0.0/8",
        "172.16.0.0/12",
        "192.168.0.0/16",
        "169.254.0.0/16",
        "::1/128",
        "fc00::/7",
        "fe80::/10",
    )
)


# Instance metadata services (AWS/GCP/Azure/OpenStack/Oracle, AWS over IPv6, ECS tasks,
# Alibaba): link-local or unique-local, but never a peer of ours.
METADATA_ADDRESSES = frozenset(
    ipaddress.ip_address(a)
    for a in ("169.254.169.254", "169.254.170.2", "fd00:ec2::254", "100.100.100.200")
)


def _unmapped(address: IPAddress) -> IPAddress:
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def is_metadata_address(address: IPAddress) -> bool:
    return _unmapped(address) in METADATA_ADDRESSES


def is_owned_address(address: IPAddress, allowed: Iterable[str] = ()) -> bool:
    """True when ``address`` is loopback, private, link-local or inside an allowed block.

    Never for a cloud metadata address.
    """
    address = _unmapped(address)
    if address in METADATA_ADDRESSES:
        return False
    if any(address in network for network in _PRIVATE_NETWORKS):
        return True
    for entry in allowed:
        try:
            if address in ipaddress.ip_network(entry, strict=False):
                return True
        except ValueError:
            continue
    return False


def split_host_port(target: str) -> tuple[str, int | None]:
    """``host:port``, ``[v6]:port``, ``http://host:port/path`` → (host, port)."""
    text = target.strip()
    if "://" in text:
        parts = urlsplit(text)
        if not parts.hostname:
            raise LocalityError(f"{target!r} has no host")
        return parts.hostname, parts.port
    if text.startswith("["):
        host, _, rest = text[1:].partition("]")
        port = rest.lstrip(":")
        return host, int(port) if port else None
    if text.count(":") == 1:
        host, _, port = text.partition(":")
        if not port.isdigit():
            raise LocalityError(f"{target!r}: port {port!r} is not a number")
        return host, int(port)
    return text, None


def resolve(host: str) -> list[IPAddress]:
    try:
        return [ipaddress.ip_address(host)]
    except ValueError:
        pass
    try:
        infos = socket.getaddrinfo(host, None, proto=socket.IPPROTO_TCP)
    except OSError as err:
        raise LocalityError(f"cannot resolve {host!r}: {err}") from err
    return [ipaddress.ip_address(str(info[4][0]).split("%")[0]) for info in infos]


def check_peer(target: str, allowed_hosts: Iterable[str] = ()) -> list[IPAddress]:
    """Raise LocalityError unless every address of ``target`` is owned; return the addresses."""
    host, _ = split_host_port(target)
    if not host:
        raise LocalityError(f"{target!r} has no host")
    allowed = tuple(allowed_hosts)
    addresses = resolve(host)
    metadata = [str(a) for a in addresses if is_metadata_address(a)]
    if metadata:
        raise LocalityError(
            f"refusing peer {target!r}: {', '.join(metadata)} is a cloud metadata service "
            "address; swarm-lsp never connects to it"
        )
    if host.lower() in {entry.lower() for entry in allowed}:
        return addresses
    foreign = [str(a) for a in addresses if not is_owned_address(a, allowed)]
    if foreign:
        raise LocalityError(
            f"refusing peer {target!r}: {', '.join(foreign)} is not an address you own "
            "(loopback, private, link-local). swarm-lsp never talks to outside services; "
            "add the host to swarm.allowedHosts only if it is your own machine."
        )
    return addresses


def is_loopback_target(target: str) -> bool:
    """True when every address of ``target`` is loopback (plaintext is allowed only there)."""
    host, _ = split_host_port(target)
    try:
        return all(a.is_loopback for a in resolve(host))
    except LocalityError:
        return False


_WILDCARDS = frozenset({"", "0.0.0.0", "::", "*"})


def is_wildcard(host: str) -> bool:
    return host in _WILDCARDS


def check_listen(listen: str) -> None:
    """Raise LocalityError unless ``listen`` is a wildcard or an address of this machine.

    Each address the host resolves to is probed with a throw-away bind on port 0: the kernel
    refuses (EADDRNOTAVAIL) an address no local interface has.
    """
    host, _ = split_host_port(listen)
    if is_wildcard(host):
        return
    for address in resolve(host):
        if is_metadata_address(address):
            raise LocalityError(
                f"refusing to listen on {listen}: {address} is a cloud metadata service address"
            )
        cause = bind_problem(address, 0)
        if cause:
            raise LocalityError(f"cannot listen on {listen}: {cause}")


def bind_problem(address: IPAddress, port: int) -> str:
    """Why binding ``address``:``port`` fails, in words ("" when it would work)."""
    family = socket.AF_INET6 if address.version == 6 else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        try:
            probe.bind((str(address), port))
        except OSError as err:
            if err.errno == errno.EADDRNOTAVAIL:
                return f"{address} is not an address of this machine (no local interface has it)"
            if err.errno == errno.EADDRINUSE:
                return f"port {port} on {address} is already in use"
            if err.errno == errno.EACCES:
                return f"port {port} on {address} needs privileges (permission denied)"
            return f"{address}:{port}: {err.strerror or err}"
    return ""
