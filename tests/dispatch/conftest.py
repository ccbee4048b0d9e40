"""Real swarm processes on loopback for the dispatch tests (always killed afterwards)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from swarm_lsp.config import Settings
from swarm_lsp.dispatch.client import DispatchClient
from swarm_lsp.dispatch.coordinator import Coordinator, create_server
from swarm_lsp.dispatch.store import TaskRecord
from tests.processes import coordinator_args, kill_now, read_log, worker_args

# Short heartbeats so lost workers are noticed quickly in tests.
HEARTBEAT_MS = 200
LEASE_TIMEOUT_MS = 1000

# Echo and sleep tasks, each with a 20 s timeout.
ECHO_SLEEP_ROUTES = """
[types]
echo = "echo"
sleep = "sleep"

[[route]]
taskType = "echo"
timeout = 20000

[[route]]
taskType = "sleep"
timeout = 20000
"""


def task_record(task_id: str, state: str = "QUEUED", **fields: Any) -> TaskRecord:
    """A background echo task record; ``fields`` override the rest."""
    values: dict[str, Any] = {
        "id": task_id,
        "idempotency_key": None,
        "type": "echo",
        "role": "echo",
        "priority": "background",
        "complexity": "simple",
        "context": b"",
        "context_dict_id": 0,
        "metadata": {},
        "manifest": {},
        "route": {},
        "state": state,
    }
    return TaskRecord(**{**values, **fields})


@contextlib.asynccontextmanager
async def serving(coordinator: Coordinator, listen: str = "127.0.0.1:0") -> AsyncIterator[str]:
    """The coordinator started and served on ``listen``; yields its address, stops both after."""
    server, port = await create_server(coordinator, listen)
    await coordinator.start()
    await server.start()
    try:
        yield f"127.0.0.1:{port}"
    finally:
        await server.stop(None)
        await coordinator.stop()


class Swarm:
    """Starts coordinator and worker processes; kills every one of them at the end."""

    def __init__(self, root: Path, env: dict[str, str] | None = None) -> None:
        self.root = root
        self.env = {**os.environ, **(env or {})}
        self.procs: list[subprocess.Popen[bytes]] = []
        self.address = ""
        self.coordinator: subprocess.Popen[bytes] | None = None
        self.workers: dict[str, subprocess.Popen[bytes]] = {}

    def _spawn(self, name: str, args: list[str]) -> subprocess.Popen[bytes]:
        log = open(self.root / f"{name}.log", "ab")  # noqa: SIM115 - closed with the process
        proc = subprocess.Popen(
            [sys.executable, "-m", "swarm_lsp.cli", *args],
            cwd=self.root,
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        log.close()
        self.procs.append(proc)
        return proc

    def start_coordinator(self, *extra: str, listen: str = "127.0.0.1:0") -> str:
        ready = self.root / "coordinator.ready"
        ready.unlink(missing_ok=True)
        self.coordinator = self._spawn(
            "coordinator",
            [
                *coordinator_args(listen, self.root, ready, HEARTBEAT_MS, LEASE_TIMEOUT_MS),
                *extra,
            ],
        )
        deadline = time.monotonic() + 30
        while not ready.exists():
            if self.coordinator.poll() is not None:
                raise RuntimeError(
                    "coordinator exited: " + (self.root / "coordinator.log").read_text()
                )
            if time.monotonic() > deadline:
                raise TimeoutError("coordinator did not start")
            time.sleep(0.05)
        self.address = ready.read_text().strip()
        return self.address

    def start_worker(self, name: str, roles: list[str], capacity: int = 1) -> None:
        args = worker_args(self.address, name, roles, capacity, self.root / f"cache-{name}")
        self.workers[name] = self._spawn(f"worker-{name}", args)

    def kill(self, proc: subprocess.Popen[bytes] | None) -> None:
        kill_now(proc)

    def stop_all(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                proc.terminate()
        for proc in self.procs:
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=5)

    def log(self, name: str) -> str:
        return read_log(self.root, name)


@pytest.fixture
def swarm_factory(tmp_path: Path) -> Iterator[Callable[..., Swarm]]:
    made: list[Swarm] = []

    def make(env: dict[str, str] | None = None, name: str = "swarm") -> Swarm:
        root = tmp_path / name
        root.mkdir()
        swarm = Swarm(root, env)
        made.append(swarm)
        return swarm

    yield make
    for swarm in made:
        swarm.stop_all()


async def wait_for_workers(client: DispatchClient, count: int, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        status = await client.status()
        if len(status.machines) >= count:
            return
        if time.monotonic() > deadline:
            raise TimeoutError(f"only {len(status.machines)} of {count} workers registered")
        await asyncio.sleep(0.05)


async def wait_idle(client: DispatchClient, timeout: float = 20.0) -> None:
    """Until no worker runs anything and nothing is queued."""
    deadline = time.monotonic() + timeout
    while True:
        status = await client.status()
        if not status.queue_depth and not any(m.running for m in status.machines):
            return
        if time.monotonic() > deadline:
            raise TimeoutError("the swarm did not go idle")
        await asyncio.sleep(0.05)


async def wait_until(predicate: Callable[[], object], timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError("condition not met in time")
        await asyncio.sleep(0.02)


async def wait_state(
    client: DispatchClient, task_id: str, states: set[str], timeout: float = 20.0
) -> str:
    deadline = time.monotonic() + timeout
    while True:
        info = await client.task_status(task_id)
        if info.state in states:
            return info.state
        if time.monotonic() > deadline:
            raise TimeoutError(f"task {task_id} stayed {info.state}")
        await asyncio.sleep(0.02)


@contextlib.asynccontextmanager
async def connect(address: str, settings: Settings | None = None):  # type: ignore[no-untyped-def]
    client = await DispatchClient.connect(settings or Settings(), address)
    try:
        yield client
    finally:
        await client.close()
