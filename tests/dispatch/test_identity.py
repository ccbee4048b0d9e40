"""Identity from credentials: certificates with a kind and a name, per-credential tokens.

A coordinator in this process over real gRPC on loopback: with mTLS and credentials made by
``swarm-lsp certs --role``, then plaintext with tokens issued by ``swarm-lsp token``.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import grpc
import pytest

from swarm_lsp.cli import main as cli
from swarm_lsp.config import Settings, SwarmSettings
from swarm_lsp.dispatch import routing
from swarm_lsp.dispatch.cli_certs import make_credential_cert, make_host_cert
from swarm_lsp.dispatch.client import DispatchClient, RpcFailure
from swarm_lsp.dispatch.coordinator import Coordinator, CoordinatorConfig
from swarm_lsp.dispatch.proto import swarm_pb2 as pb
from swarm_lsp.dispatch.proto import swarm_pb2_grpc as pb_grpc
from swarm_lsp.dispatch.security import call_metadata, open_channel
from swarm_lsp.workers.runtime import WorkerRuntime

from .conftest import ECHO_SLEEP_ROUTES, serving, wait_for_workers, wait_state, wait_until


def _settings(**swarm: Any) -> Settings:
    return Settings(swarm=dataclasses.replace(SwarmSettings(), **swarm))


@dataclasses.dataclass
class Deployment:
    coordinator: Coordinator
    address: str
    creds: dict[str, Settings]  # credential name -> settings that present it
    root: Path


@pytest.fixture
async def tls(tmp_path: Path) -> AsyncIterator[Deployment]:
    certs = tmp_path / "certs"
    ca = str(certs / "ca.pem")

    def settings_for(cert: Path, key: Path) -> Settings:
        return _settings(tls_ca=ca, tls_cert=str(cert), tls_key=str(key))

    creds = {
        "alice": settings_for(*make_credential_cert(certs, "alice", "client")),
        "bob": settings_for(*make_credential_cert(certs, "bob", "client")),
        "op": settings_for(*make_credential_cert(certs, "op", "operator")),
        "w1": settings_for(
            *make_credential_cert(certs, "w1", "worker", roles=["echo", "sleep"], capacity=2)
        ),
        "w3": settings_for(*make_credential_cert(certs, "w3", "worker", roles=["echo"])),
    }
    server_settings = settings_for(*make_host_cert(certs, "coordinator-host"))
    coordinator = Coordinator(
        CoordinatorConfig(
            state_dir=tmp_path / "state",
            routing=routing.parse(ECHO_SLEEP_ROUTES),
            settings=server_settings,
            # Identity, not failover: a lease that a loaded 2-core CI machine cannot miss (with
            # 500 ms the worker fenced itself after 300 ms of silence and re-ran the task).
            heartbeat_interval_ms=250,
            lease_timeout_ms=3000,
            local_fallback=False,
        )
    )
    async with serving(coordinator) as address:
        yield Deployment(coordinator, address, creds, tmp_path)


async def _register(
    address: str, settings: Settings, name: str, roles: list[str], capacity: int = 1
) -> grpc.aio.AioRpcError | pb.Registered:
    """One raw registration: the Registered answer, or the refusal."""
    channel = open_channel(address, settings.swarm)
    try:
        stub = pb_grpc.SwarmWorkerStub(channel)
        hello = pb.WorkerMessage(
            register=pb.RegisterRequest(name=name, roles=roles, capacity=capacity)
        )
        call = stub.Connect(iter([hello]), metadata=call_metadata(settings.swarm), timeout=10)
        try:
            first = await call.read()
        except grpc.aio.AioRpcError as err:
            return err
        assert first is not grpc.aio.EOF
        return first.registered
    finally:
        await channel.close()


class Workers:
    """Worker runtimes in this process; stopped at the end of the test."""

    def __init__(self, deployment: Deployment) -> None:
        self.d = deployment
        self.running: list[tuple[WorkerRuntime, asyncio.Task[None]]] = []

    def start(self, cred: str, name: str, roles: list[str], capacity: int = 1) -> WorkerRuntime:
        worker = WorkerRuntime(
            coordinator=self.d.address,
            roles=roles,
            settings=self.d.creds[cred],
            name=name,
            capacity=capacity,
            cache_dir=self.d.root / f"cache-{name}-{len(self.running)}",
        )
        self.running.append((worker, asyncio.create_task(worker.run())))
        return worker

    async def stop(self, worker: WorkerRuntime | None = None) -> None:
        for entry in list(self.running):
            if worker is None or entry[0] is worker:
                await entry[0].stop(grace=1)
                await asyncio.wait_for(entry[1], timeout=10)
                self.running.remove(entry)


@pytest.fixture
async def workers(tls: Deployment) -> AsyncIterator[Workers]:
    made = Workers(tls)
    yield made
    await made.stop()


async def test_a_worker_is_the_name_in_its_certificate(tls: Deployment) -> None:
    address, creds = tls.address, tls.creds
    other_name = await _register(address, creds["w1"], "w2", ["echo"])
    assert isinstance(other_name, grpc.aio.AioRpcError)
    assert other_name.code() == grpc.StatusCode.PERMISSION_DENIED
    assert "this credential is worker 'w1'; it cannot register as 'w2'" in str(other_name.details())
    as_client = await _register(address, creds["alice"], "alice", ["echo"])
    assert isinstance(as_client, grpc.aio.AioRpcError)
    assert "a client credential (cert:alice) cannot register as a worker" in str(
        as_client.details()
    )
    not_allowed = await _register(address, creds["w3"], "w3", ["echo", "sleep"])
    assert isinstance(not_allowed, grpc.aio.AioRpcError)
    assert "may not run sleep" in str(not_allowed.details())
    # A client credential cannot fetch the blobs workers fetch either.
    channel = open_channel(address, creds["alice"].swarm)
    with pytest.raises(grpc.aio.AioRpcError, match="cannot fetch"):
        await pb_grpc.SwarmWorkerStub(channel).GetBlobs(pb.BlobRefs(hashes=["0" * 64]), timeout=5)
    await channel.close()
    # A worker credential cannot submit.
    async with await DispatchClient.connect(creds["w1"], address) as worker_as_client:
        with pytest.raises(RpcFailure, match="cannot submit") as refusal:
            await worker_as_client.submit("echo", {"text": "x"}, priority="immediate")
        assert refusal.value.code == "PERMISSION_DENIED"


async def test_a_second_live_session_is_refused_and_no_task_fails(
    tls: Deployment, workers: Workers
) -> None:
    first = workers.start("w1", "w1", ["echo", "sleep"], capacity=100)
    async with await DispatchClient.connect(tls.creds["alice"], tls.address) as alice:
        await wait_for_workers(alice, 1)
        status = await alice.status()
        assert [(m.name, m.capacity) for m in status.machines] == [("w1", 2)]  # capped
        running = await alice.submit("sleep", {"seconds": 1.5})
        await wait_state(alice, running.task_id, {"RUNNING"})
        # The same credential again, e.g. a copied key on another machine: refused, and the
        # first session and its task are untouched.
        second = await _register(tls.address, tls.creds["w1"], "w1", ["echo"])
        assert isinstance(second, grpc.aio.AioRpcError)
        assert second.code() == grpc.StatusCode.ALREADY_EXISTS
        assert "already has a live session" in str(second.details())
        final = await alice.wait(running.task_id)
        assert final.state == "SUCCEEDED" and final.attempt == 1 and final.worker == "w1"
        assert first.sessions == 1
        # Once the first session is gone, the identity may register again.
        await workers.stop(first)
        await wait_until(lambda: not tls.coordinator.workers)
        again = workers.start("w1", "w1", ["echo"])
        await wait_until(lambda: again.sessions == 1)


async def test_a_worker_fetches_only_the_blobs_of_its_leased_tasks(
    tls: Deployment, workers: Workers
) -> None:
    workers.start("w1", "w1", ["echo", "sleep"], capacity=2)
    async with await DispatchClient.connect(tls.creds["alice"], tls.address) as alice:
        await wait_for_workers(alice, 1)
        manifest, _ = await alice.upload_snapshot({"secret.txt": b"alice's file"})
        # Alice's own task with it runs: w1 fetches the blob it names.
        receipt = await alice.submit(
            "echo", {"text": "x"}, snapshot={"secret.txt": b"alice's file"}
        )
        final = await alice.wait(receipt.task_id)
        assert final.state == "SUCCEEDED" and final.data["files"] == {"secret.txt": 12}
        # Asked for by hash outside any lease: refused, to the worker and to clients.
        for cred, stub_class in (
            ("w1", pb_grpc.SwarmWorkerStub),
            ("bob", pb_grpc.SwarmCoordinatorStub),
        ):
            channel = open_channel(tls.address, tls.creds[cred].swarm)
            with pytest.raises(grpc.aio.AioRpcError) as refusal:
                await stub_class(channel).GetBlobs(
                    pb.BlobRefs(hashes=[manifest["secret.txt"]]), timeout=5
                )
            assert refusal.value.code() == grpc.StatusCode.PERMISSION_DENIED
            await channel.close()


async def test_clients_see_only_their_own_tasks(tls: Deployment, workers: Workers) -> None:
    workers.start("w1", "w1", ["echo", "sleep"], capacity=2)
    creds, address = tls.creds, tls.address
    async with (
        await DispatchClient.connect(creds["alice"], address) as alice,
        await DispatchClient.connect(creds["bob"], address) as bob,
        await DispatchClient.connect(creds["op"], address) as op,
    ):
        await wait_for_workers(alice, 1)
        mine = await alice.submit("echo", {"text": "alice's secret"})
        assert (await alice.wait(mine.task_id)).text == "alice's secret"
        theirs = await bob.submit("sleep", {"seconds": 30})
        for attempt in (
            bob.task_status(mine.task_id),
            bob.wait(mine.task_id),
            bob.cancel(mine.task_id),
            alice.cancel(theirs.task_id),
        ):
            with pytest.raises(RpcFailure, match="no task") as refusal:
                await attempt
            assert refusal.value.code == "NOT_FOUND"
        assert [t.task_id for t in (await bob.status()).recent] == [theirs.task_id]
        assert [t.task_id for t in (await alice.status()).recent] == [mine.task_id]
        # An operator sees and may cancel everything.
        assert {t.task_id for t in (await op.status()).recent} == {mine.task_id, theirs.task_id}
        assert (await op.task_status(mine.task_id)).state == "SUCCEEDED"
        await op.cancel(theirs.task_id)
        assert (await bob.wait(theirs.task_id)).state == "CANCELLED"


async def test_per_credential_tokens(tmp_path: Path) -> None:
    state = tmp_path / "state"
    for args in (
        ["--role", "client", "--name", "alice", "--out", str(tmp_path / "alice.token")],
        ["--role", "worker", "--name", "w1", "--allow-role", "echo", "--out", str(tmp_path / "w1")],
    ):
        assert cli(["token", *args, "--state-dir", str(state)]) == 0
    assert oct((state / "tokens.json").stat().st_mode & 0o777) == "0o600"
    assert "alice" in (state / "tokens.json").read_text()
    assert (tmp_path / "alice.token").read_text().strip() not in (state / "tokens.json").read_text()
    alice = _settings(token=(tmp_path / "alice.token").read_text().strip())
    w1 = _settings(token=(tmp_path / "w1").read_text().strip())
    coordinator = Coordinator(
        CoordinatorConfig(
            state_dir=state,
            routing=routing.parse(ECHO_SLEEP_ROUTES),
            heartbeat_interval_ms=100,
            lease_timeout_ms=500,
            local_fallback=False,
        )
    )
    async with serving(coordinator) as address:
        worker = WorkerRuntime(
            coordinator=address, roles=["echo"], settings=w1, name="w1", cache_dir=tmp_path / "c"
        )
        run = asyncio.create_task(worker.run())
        try:
            # Tokens are issued: a call without one is refused at the door.
            async with await DispatchClient.connect(Settings(), address) as nobody:
                with pytest.raises(RpcFailure, match="UNAUTHENTICATED"):
                    await nobody.status()
            async with await DispatchClient.connect(alice, address) as client:
                await wait_for_workers(client, 1)
                receipt = await client.submit("echo", {"text": "by token"})
                final = await client.wait(receipt.task_id)
                assert final.text == "by token" and final.worker == "w1"
            refused = await _register(address, alice, "alice", ["echo"])
            assert isinstance(refused, grpc.aio.AioRpcError)
            assert refused.code() == grpc.StatusCode.PERMISSION_DENIED
            renamed = await _register(address, w1, "w9", ["echo"])
            assert isinstance(renamed, grpc.aio.AioRpcError) and "cannot register as 'w9'" in str(
                renamed.details()
            )
        finally:
            await worker.stop(grace=1)
            await asyncio.wait_for(run, timeout=10)
