"""A five-host swarm in network namespaces: coordinator, two workers, clients, a rogue host.

Made once per module (it takes seconds): a bridge, one namespace per host, mTLS certificates
from ``swarm-lsp certs``, a coordinator on 10.213.0.1:50051, worker ``w1`` dialling it
directly and worker ``w2`` through a 50 ms delaying proxy in its own namespace, and a client
agent (``agent.py``) in the client namespace. Everything is killed and removed at the end,
even after a failure; leftovers of a crashed earlier run are removed first.
"""

from __future__ import annotations

import contextlib
import json
import os
import select
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.multihost.netns import Network
from tests.processes import coordinator_args, kill_now, read_log, worker_args

ROOT = Path(__file__).resolve().parents[2]
PORT = 50051
PROXY_PORT = 50052
HEARTBEAT_MS = 250
LEASE_TIMEOUT_MS = 2000
DELAY_S = 0.05


class Agent:
    """The client agent in a namespace: one JSON request, one JSON answer."""

    def __init__(self, proc: subprocess.Popen[bytes]) -> None:
        self.proc = proc
        self._buffer = b""

    def _line(self, timeout: float) -> dict[str, Any]:
        assert self.proc.stdout is not None
        fd = self.proc.stdout.fileno()
        deadline = time.monotonic() + timeout
        while b"\n" not in self._buffer:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError("the client agent did not answer in time")
            ready, _, _ = select.select([fd], [], [], left)
            if ready:
                chunk = os.read(fd, 65536)
                if not chunk:
                    raise RuntimeError("the client agent exited")
                self._buffer += chunk
        line, _, self._buffer = self._buffer.partition(b"\n")
        answer: dict[str, Any] = json.loads(line)
        return answer

    def send(self, **request: Any) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(json.dumps(request).encode() + b"\n")
        self.proc.stdin.flush()

    def answer(self, timeout: float = 60.0) -> dict[str, Any]:
        return self._line(timeout)

    def call(self, timeout: float = 60.0, **request: Any) -> dict[str, Any]:
        self.send(**request)
        return self._line(timeout)


class MultiHost:
    def __init__(self, net: Network, root: Path) -> None:
        self.net = net
        self.root = root
        self.certs = root / "certs"
        self.procs: list[subprocess.Popen[bytes]] = []
        self.coordinator: subprocess.Popen[bytes] | None = None
        self.workers: dict[str, subprocess.Popen[bytes]] = {}
        self.markers = root / "markers"
        self.markers.mkdir()

    @property
    def target(self) -> str:
        return f"{self.net.address('coord')}:{PORT}"

    def env(self, cert: str) -> dict[str, str]:
        return {
            **os.environ,
            "PYTHONPATH": str(ROOT),
            "SWARM_LSP_LOG": "INFO",
            "SWARM_LSP_SWARM__TLS_CA": str(self.certs / "ca.pem"),
            "SWARM_LSP_SWARM__TLS_CERT": str(self.certs / f"{cert}.pem"),
            "SWARM_LSP_SWARM__TLS_KEY": str(self.certs / f"{cert}.key"),
        }

    def spawn(
        self, host: str, log: str, args: list[str], cert: str, *, pipe: bool = False
    ) -> subprocess.Popen[bytes]:
        out = open(self.root / f"{log}.log", "ab")  # noqa: SIM115 - closed with the process
        proc = subprocess.Popen(
            ["ip", "netns", "exec", self.net.namespace(host), sys.executable, *args],
            cwd=self.root,
            env=self.env(cert),
            stdin=subprocess.PIPE if pipe else subprocess.DEVNULL,
            stdout=subprocess.PIPE if pipe else out,
            stderr=out,
        )
        out.close()
        self.procs.append(proc)
        return proc

    def log(self, name: str) -> str:
        return read_log(self.root, name)

    def start_coordinator(self) -> None:
        ready = self.root / "coordinator.ready"
        ready.unlink(missing_ok=True)
        self.coordinator = self.spawn(
            "coord",
            "coordinator",
            [
                "-m",
                "swarm_lsp.cli",
                *coordinator_args(self.target, self.root, ready, HEARTBEAT_MS, LEASE_TIMEOUT_MS),
                "--no-local-fallback",
            ],
            self.net.address("coord"),
        )
        wait_for(ready.exists, 60, lambda: "coordinator: " + self.log("coordinator"))

    def start_worker(
        self, name: str, host: str, cert: str, target: str = "", declared: str = ""
    ) -> None:
        """Worker process ``name`` (as the test knows it), declaring ``declared`` or ``name``."""
        self.workers[name] = self.spawn(
            host,
            f"worker-{name}",
            [
                "-m",
                "swarm_lsp.cli",
                *worker_args(
                    target or self.target,
                    declared or name,
                    ["echo", "sleep"],
                    1,
                    self.root / f"cache-{name}",
                ),
            ],
            cert,
        )

    def start_proxy(self, host: str) -> str:
        """The 50 ms delaying proxy in ``host``'s namespace; returns the address to dial."""
        listen = f"127.0.0.1:{PROXY_PORT}"
        proc = self.spawn(
            host,
            f"proxy-{host}",
            ["-m", "tests.multihost.delay_proxy", listen, self.target, str(DELAY_S)],
            self.net.address(host),
            pipe=True,
        )
        assert proc.stdout is not None
        ready, _, _ = select.select([proc.stdout.fileno()], [], [], 30)
        assert ready and os.read(proc.stdout.fileno(), 64).startswith(b"ready")
        return listen

    def agent(self, host: str, cert: str) -> Agent:
        proc = self.spawn(
            host, f"agent-{host}", ["-m", "tests.multihost.agent", self.target], cert, pipe=True
        )
        agent = Agent(proc)
        assert agent._line(60).get("ready")
        return agent

    def kill(self, proc: subprocess.Popen[bytes] | None) -> None:
        kill_now(proc)

    def stop_all(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                proc.kill()
        for proc in self.procs:
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=10)

    def marker(self, kind: str, task_id: str) -> Path:
        return self.markers / f"{kind}-{task_id}"


def wait_for(predicate: Any, timeout: float, what: Any = "") -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError(what() if callable(what) else what or "condition not met")
        time.sleep(0.05)


def machines(agent: Agent) -> dict[str, dict[str, Any]]:
    return {m["name"]: m for m in agent.call(op="status")["machines"]}


def wait_workers(agent: Agent, names: set[str], timeout: float = 60.0) -> None:
    wait_for(lambda: names <= set(machines(agent)), timeout, f"workers {names} not registered")


@pytest.fixture(scope="module")
def swarm(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[MultiHost, Agent]]:
    root = tmp_path_factory.mktemp("multihost")
    with Network() as net:
        hosts = {h: net.add_host(h) for h in ("coord", "w1", "w2", "cli", "cli2", "rogue")}
        certs = root / "certs"
        cli = [sys.executable, "-m", "swarm_lsp.cli", "certs", "--out", str(certs)]
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        # The CA first (one CA for all), then the credentials side by side.
        subprocess.run([*cli, "--host", hosts["coord"]], check=True, env=env, timeout=120)
        making = [
            subprocess.Popen([*cli, "--role", kind, "--name", name], env=env)
            for kind, name in (
                ("worker", "w1"),
                ("worker", "w2"),
                ("client", "cli"),
                ("client", "cli2"),
            )
        ]
        assert all(p.wait(timeout=120) == 0 for p in making)
        mh = MultiHost(net, root)
        try:
            mh.start_coordinator()
            mh.start_worker("w1", "w1", "worker-w1")
            mh.start_worker("w2", "w2", "worker-w2", target=mh.start_proxy("w2"))
            agent = mh.agent("cli", "client-cli")
            wait_workers(agent, {"w1", "w2"})
            yield mh, agent
        finally:
            mh.stop_all()
