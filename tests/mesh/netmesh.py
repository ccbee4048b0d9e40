"""Mesh peers in network namespaces on a bridge (root only), shared by the tests/mesh modules
and bench/mesh.py.

The multi-host helper's ``Network`` (``tests/multihost/netns.py``) under another prefix and
subnet per module (``swmesh``, ``swlsp``…: every name also carries the test process's pid, so
runs never clash and leftovers of a crashed run are removed), and ``Mesh``: ``swarm-lsp node``
processes in those namespaces, their views (``mesh.json``) and logs, and the multi-host tests'
client agent.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

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


class MeshNetwork(Network):
    """The multi-host helper's bridge and namespaces, under a mesh module's prefix and subnet."""

    def __init__(self, prefix: str, subnet: str) -> None:
        super().__init__(prefix, subnet)


class Mesh:
    def __init__(
        self,
        net: Network,
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

    def start(self, host: str, certs: Path, env: dict[str, str] | None = None) -> None:
        """``swarm-lsp node`` in ``host``'s namespace (``env``: more environment)."""
        address = self.net.address(host)
        env = {**tls_env(certs, address), **(env or {})}
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
        path = self.root / f"{host}.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def ignored(self, host: str, other: str) -> list[str]:
        """``host``'s 'mesh: ignoring' lines about the peer in namespace ``other``."""
        address = f"{self.net.address(other)}:{PORT}"
        return [
            line
            for line in self.log(host).split("\n")
            if "mesh: ignoring" in line and address in line
        ]

    def ignored_rogue(self, host: str) -> int:
        """How many 'mesh: ignoring' lines ``host`` logged about the foreign peer."""
        return len(self.ignored(host, "rogue"))

    def wait(self, predicate: object, timeout: float, what: str) -> float:
        """Seconds until ``predicate()`` held; fails with the views after ``timeout``."""
        started = time.monotonic()
        while not predicate():  # type: ignore[operator]
            if time.monotonic() - started > timeout:
                views = {h: sorted(self.view(h)) for h in self.procs if "agent" not in h}
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


def machines(agent: Agent) -> set[str]:
    """The names of the machines working for the peer ``agent`` dials."""
    return {m["name"] for m in agent.call(op="status")["machines"]}
