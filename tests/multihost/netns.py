"""Network namespaces on a bridge, made and removed by the multi-host and mesh tests (root only).

Every name carries a suite's prefix (``swmh`` for the multi-host tests, ``swmesh`` for the
mesh's) and the test process's pid (``<prefix>-<pid>-<host>`` namespaces, ``<prefix><pid>…``
links), so runs never clash and leftovers of a crashed run (whose pid is gone) can be found
and removed. Hosts get ``<subnet>.<n>/24`` on the bridge (10.213.0 for the multi-host tests),
or an address of the test's choosing (an on-link route then joins the two subnets).
"""

from __future__ import annotations

import contextlib
import functools
import os
import re
import shutil
import signal
import subprocess

PREFIX = "swmh"
SUBNET = "10.213.0"


def _ip(*args: str, check: bool = True) -> str:
    done = subprocess.run(["ip", *args], capture_output=True, text=True, timeout=20)
    if check and done.returncode != 0:
        raise RuntimeError(f"ip {' '.join(args)}: {done.stderr.strip()}")
    return done.stdout


@functools.cache
def available() -> str:
    """Why namespaces cannot be made here ('' when they can)."""
    if os.geteuid() != 0:
        return "needs root (network namespaces on a bridge)"
    if shutil.which("ip") is None:
        return "needs iproute2's ip"
    probe = f"{PREFIX}-{os.getpid()}-probe"
    done = subprocess.run(["ip", "netns", "add", probe], capture_output=True, text=True)
    if done.returncode != 0:
        return f"cannot make a network namespace here: {done.stderr.strip()}"
    _ip("netns", "del", probe, check=False)
    return ""


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _kill_namespace(ns: str) -> None:
    for pid in _ip("netns", "pids", ns, check=False).split():
        with contextlib.suppress(ProcessLookupError, ValueError):
            os.kill(int(pid), signal.SIGKILL)
    _ip("netns", "del", ns, check=False)


def remove_leftovers(prefix: str = PREFIX) -> None:
    """Namespaces and links of earlier runs whose test process is gone."""
    for line in _ip("netns", "list", check=False).splitlines():
        name = line.split()[0] if line.split() else ""
        match = re.fullmatch(rf"{prefix}-(\d+)-\w+", name)
        if match and not _alive(int(match.group(1))):
            _kill_namespace(name)
    for line in _ip("-o", "link", "show", check=False).splitlines():
        match = re.match(rf"\d+: ({prefix}(\d+)[a-z]\d*)[@:]", line)
        if match and not _alive(int(match.group(2))):
            _ip("link", "del", match.group(1), check=False)


class Network:
    """A bridge and one namespace per host, each with a veth on the bridge."""

    def __init__(self, prefix: str = PREFIX, subnet: str = SUBNET) -> None:
        self.pid = os.getpid()
        self.prefix, self.subnet = prefix, subnet
        self.bridge = f"{prefix}{self.pid}b"
        self.hosts: dict[str, tuple[str, str, str]] = {}  # host -> (namespace, veth, address)

    def __enter__(self) -> Network:
        remove_leftovers(self.prefix)
        try:
            _ip("link", "add", self.bridge, "type", "bridge")
            _ip("link", "set", self.bridge, "up")
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def add_host(self, host: str, address: str = "") -> str:
        """A namespace for ``host`` on the bridge (at ``address``, else the next of the
        subnet's); returns its address."""
        index = len(self.hosts) + 1
        ns = f"{self.prefix}-{self.pid}-{host}"
        veth, peer = f"{self.prefix}{self.pid}h{index}", f"{self.prefix}{self.pid}p{index}"
        address = address or f"{self.subnet}.{index}"
        self.hosts[host] = (ns, veth, address)
        _ip("netns", "add", ns)
        _ip("link", "add", veth, "type", "veth", "peer", "name", peer)
        _ip("link", "set", veth, "master", self.bridge)
        _ip("link", "set", veth, "up")
        _ip("link", "set", peer, "netns", ns)
        _ip("-n", ns, "link", "set", peer, "name", "eth0")
        _ip("-n", ns, "addr", "add", f"{address}/24", "dev", "eth0")
        _ip("-n", ns, "link", "set", "eth0", "up")
        _ip("-n", ns, "link", "set", "lo", "up")
        return address

    def route(self, host: str, network: str) -> None:
        """``network`` is on ``host``'s link too (another subnet on the same bridge)."""
        _ip("-n", self.namespace(host), "route", "add", network, "dev", "eth0")

    def namespace(self, host: str) -> str:
        return self.hosts[host][0]

    def address(self, host: str) -> str:
        return self.hosts[host][2]

    def link(self, host: str, up: bool) -> None:
        """Cut (or restore) ``host``'s cable: its veth on the bridge goes down (or up)."""
        _ip("link", "set", self.hosts[host][1], "up" if up else "down")

    def close(self) -> None:
        for ns, veth, _ in self.hosts.values():
            _kill_namespace(ns)
            _ip("link", "del", veth, check=False)
        self.hosts.clear()
        _ip("link", "del", self.bridge, check=False)
