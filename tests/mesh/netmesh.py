"""Mesh peers in network namespaces on a bridge (root only), shared by the tests/mesh modules.

The multi-host helper's ``Network`` under another prefix and subnet per module (``swmesh``,
``swlsp``…: every name also carries the test process's pid, so runs never clash and leftovers of
a crashed run are removed), and ``Mesh``: ``swarm-lsp node`` processes in those namespaces,
their views (``mesh.json``), and the multi-host tests' client agent.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.multihost import netns
from tests.multihost.conftest import Agent
from tests.multihost.netns import Network

ROOT = Path(__file__).resolve().parents[2]
PORT = 50051


def tls_env(certs: Path, name: str) -> dict[str, str]:
    """The environment of a process using ``certs/<name>.pem`` with the swarm's CA."""
    return {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "SWARM_LSP_SWARM__TLS_CA": str(certs / "ca.pem"),
        "SWARM_LSP_SWARM__TLS_CERT": str(certs / f"{name}.pem"),
        "SWARM_LSP_SWARM__TLS_KEY": str(certs / f"{name}.key"),
    }


def _remove_leftovers(prefix: str) -> None:
    """Namespaces and links of earlier runs under ``prefix`` whose process is gone."""
    for line in netns._ip("netns", "list", check=False).splitlines():
        match = re.fullmatch(rf"{prefix}-(\d+)-\w+", line.split()[0] if line.split() else "")
        if match and not netns._alive(int(match.group(1))):
            netns._kill_namespace(match.group(0))
    for line in netns._ip("-o", "link", "show", check=False).splitlines():
        match = re.match(rf"\d+: ({prefix}(\d+)[a-z]\d*)[@:]", line)
        if match and not netns._alive(int(match.group(2))):
            netns._ip("link", "del", match.group(1), check=False)


class MeshNetwork(Network):
    """The multi-host helper's bridge and namespaces, under this module's names and subnet."""

    def __init__(self, prefix: str, subnet: str) -> None:
        super().__init__()
        self.prefix, self.subnet = prefix, subnet
        self.bridge = f"{prefix}{self.pid}b"

    def __enter__(self) -> MeshNetwork:
        _remove_leftovers(self.prefix)
        netns._ip("link", "add", self.bridge, "type", "bridge")
        netns._ip("link", "set", self.bridge, "up")
        return self

    def add_host(self, host: str) -> str:
        index = len(self.hosts) + 1
        ns = f"{self.prefix}-{self.pid}-{host}"
        veth, peer = f"{self.prefix}{self.pid}h{index}", f"{self.prefix}{self.pid}p{index}"
        address = f"{self.subnet}.{index}"
        self.hosts[host] = (ns, veth, address)
        ip = netns._ip
        ip("netns", "add", ns)
        ip("link", "add", veth, "type", "veth", "peer", "name", peer)
        ip("link", "set", veth, "master", self.bridge)
        ip("link", "set", veth, "up")
        ip("link", "set", peer, "netns", ns)
        ip("-n", ns, "link", "set", peer, "name", "eth0")
        ip("-n", ns, "addr", "add", f"{address}/24", "dev", "eth0")
        ip("-n", ns, "link", "set", "eth0", "up")
        ip("-n", ns, "link", "set", "lo", "up")
        return address


class Mesh:
    def __init__(
        self,
        net: MeshNetwork,
        root: Path,
        roles: dict[str, tuple[str, ...]],
        workers: set[str],
        extra: tuple[str, ...] = (),
    ) -> None:
        """``roles``: each host's advertised roles; only ``workers`` run them for the peers;
        ``extra``: more ``swarm-lsp node`` arguments for every peer."""
        self.net, self.root = net, root
        self.roles, self.workers, self.extra = roles, workers, extra
        self.procs: dict[str, subprocess.Popen[bytes]] = {}
        self.agents: dict[str, Agent] = {}

    def start(self, host: str, certs: Path) -> None:
        address = self.net.address(host)
        env = tls_env(certs, address)
        args = ["node", "--listen", f"{address}:{PORT}", "--name", host, "--no-local-fallback"]
        for role in self.roles.get(host, ("echo",)):
            args += ["--role", role]
        args += ["--state-dir", str(self.root / host)]
        if host not in self.workers:
            args.append("--no-work-for-peers")
        args += self.extra
        command = ["ip", "netns", "exec", self.net.namespace(host), sys.executable, "-m"]
        with open(self.root / f"{host}.log", "ab") as out:
            self.procs[host] = subprocess.Popen(
                [*command, "swarm_lsp.cli", *args],
                cwd=self.root,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=out,
            )

    def view(self, host: str) -> set[str]:
        """The ids in ``host``'s view (empty until it wrote one)."""
        with contextlib.suppress(OSError, ValueError):
            data = json.loads((self.root / host / "mesh.json").read_text())
            return {p["id"] for p in data["peers"]}
        return set()

    def log(self, host: str) -> str:
        return (self.root / f"{host}.log").read_text(errors="replace")

    def ignored_rogue(self, host: str) -> int:
        """How many 'mesh: ignoring' lines ``host`` logged about the foreign peer."""
        rogue = f"{self.net.address('rogue')}:{PORT}"
        return sum(
            "mesh: ignoring" in line and rogue in line for line in self.log(host).split("\n")
        )

    def wait(self, predicate: object, timeout: float, what: str) -> float:
        """Seconds until ``predicate()`` held; fails with the views after ``timeout``."""
        started = time.monotonic()
        while not predicate():  # type: ignore[operator]
            if time.monotonic() - started > timeout:
                views = {h: sorted(self.view(h)) for h in self.procs}
                pytest.fail(f"{what} within {timeout}s; views {views}")
            time.sleep(0.05)
        return time.monotonic() - started

    def agent(self, target_host: str) -> Agent:
        """The multi-host tests' client agent in the client namespace, dialling a peer."""
        if target_host in self.agents:
            return self.agents[target_host]
        env = tls_env(self.root / "certs", "client-cli")
        target = f"{self.net.address(target_host)}:{PORT}"
        command = ["ip", "netns", "exec", self.net.namespace("cli"), sys.executable, "-m"]
        with open(self.root / f"agent-{target_host}.log", "ab") as err:
            proc = subprocess.Popen(
                [*command, "tests.multihost.agent", target],
                cwd=self.root,
                env=env,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=err,
            )
        self.procs[f"agent-{target_host}"] = proc
        agent = Agent(proc)
        assert agent.answer(60).get("ready")
        self.agents[target_host] = agent
        return agent

    def stop_all(self) -> None:
        for proc in self.procs.values():
            if proc.poll() is None:
                proc.kill()
        for proc in self.procs.values():
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=10)
