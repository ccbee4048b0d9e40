"""Coordinator and worker runtimes in this process, over real gRPC on loopback.

Routing by model size and by named machine, health checks on both sides.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from swarm_lsp.config import Settings
from swarm_lsp.dispatch import routing
from swarm_lsp.dispatch.coordinator import Coordinator, CoordinatorConfig
from swarm_lsp.workers.runtime import WorkerRuntime

from .conftest import connect, serving, wait_for_workers

TABLE = """
[types]
echo = "echo"

[[route]]
taskType = "echo"
complexity = "complex"
modelSize = "70B"
timeout = 5000

[[route]]
taskType = "echo"
complexity = "moderate"
machine = "big"
timeout = 5000

[[route]]
taskType = "echo"
modelSize = "7B"
timeout = 5000
"""


@pytest.fixture
async def coordinator(tmp_path: Path) -> AsyncIterator[tuple[Coordinator, str]]:
    coordinator = Coordinator(
        CoordinatorConfig(
            state_dir=tmp_path / "state",
            routing=routing.parse(TABLE),
            heartbeat_interval_ms=100,
            lease_timeout_ms=500,
        )
    )
    async with serving(coordinator) as address:
        assert await coordinator.local_worker_ready()  # the fallback: a worker process of its own
        yield coordinator, address


async def _health(address: str, service: str = "") -> int:
    async with grpc.aio.insecure_channel(address) as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        reply = await stub.Check(health_pb2.HealthCheckRequest(service=service), timeout=5)
        return int(reply.status)


async def test_model_sizes_named_machines_and_health(
    coordinator: tuple[Coordinator, str], tmp_path: Path
) -> None:
    _, address = coordinator
    assert (
        await _health(address, "swarm.v1.SwarmCoordinator")
        == health_pb2.HealthCheckResponse.SERVING
    )
    small = WorkerRuntime(
        coordinator=address,
        roles=["echo"],
        settings=Settings(),
        name="small",
        model_sizes=["7B"],
        capacity=4,
        cache_dir=tmp_path / "small",
    )
    big = WorkerRuntime(
        coordinator=address,
        roles=["echo"],
        settings=Settings(),
        name="big",
        model_sizes=["7B", "13B"],
        capacity=4,
        cache_dir=tmp_path / "big",
    )
    health_server, health_port = await small.serve_health("127.0.0.1:0")
    health_address = f"127.0.0.1:{health_port}"
    assert await _health(health_address) == health_pb2.HealthCheckResponse.NOT_SERVING
    runners = [asyncio.create_task(small.run()), asyncio.create_task(big.run())]
    try:
        async with connect(address) as client:
            await wait_for_workers(client, 2)
            assert await _health(health_address) == health_pb2.HealthCheckResponse.SERVING
            # 70B: no connected worker runs it -> fallback 1, the coordinator's own model.
            complex_task = await client.submit("echo", {"text": "big job"}, complexity="complex")
            assert complex_task.fallback == "local" and complex_task.model_size == "70B"
            on_fallback = await client.wait(complex_task.task_id)
            assert on_fallback.fallback == "local"
            assert on_fallback.data["pid"] != os.getpid()  # role code never runs in here
            # A route naming a machine goes there, idle or not.
            for _ in range(3):
                moderate = await client.submit("echo", {}, complexity="moderate")
                assert (await client.wait(moderate.task_id)).worker == "big"
            simple = await client.submit("echo", {"text": "small job"})
            assert (await client.wait(simple.task_id)).worker in {"small", "big"}
    finally:
        await small.stop(grace=1)
        await big.stop(grace=1)
        await asyncio.wait_for(asyncio.gather(*runners), timeout=10)
        await health_server.stop(None)


def test_dispatch_imports_no_worker_code() -> None:
    """The coordinator and the client run no role code, so they need none of it."""
    code = (
        "import sys, swarm_lsp.dispatch.coordinator, swarm_lsp.dispatch.client;"
        "print([m for m in sys.modules if m.startswith('swarm_lsp.workers')])"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
