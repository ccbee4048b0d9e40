"""A resubmitted task supersedes its old copy on another peer, and only a mesh peer may ask.

Two coordinators in this process (peers ``a`` and ``b``, each with its host certificate, mTLS on
loopback, real gRPC) and an in-process echo worker on ``a``. The editor's client credential
submits to ``a``, then to ``b`` with ``SUPERSEDES`` naming the copy on ``a``, as the LSP server
does when ``a`` left its view (dispatch/failover.py): ``b`` asks ``a`` over mTLS to supersede.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import grpc
import pytest

from swarm_lsp.config import Settings, SwarmSettings
from swarm_lsp.dispatch import routing
from swarm_lsp.dispatch.cli_certs import make_credential_cert, make_host_cert
from swarm_lsp.dispatch.client import DispatchClient, Receipt, RpcFailure
from swarm_lsp.dispatch.coordinator import Coordinator, CoordinatorConfig, create_server
from swarm_lsp.dispatch.coordinator.supersede import ADOPTED
from swarm_lsp.dispatch.failover import FAILOVER, SUPERSEDES
from swarm_lsp.dispatch.proto import swarm_pb2 as pb
from swarm_lsp.dispatch.proto import swarm_pb2_grpc as pb_grpc
from swarm_lsp.dispatch.result_journal import JOURNAL_FILE, ResultJournal
from swarm_lsp.dispatch.security import open_channel
from swarm_lsp.workers.runtime import WorkerRuntime

from .conftest import wait_for_workers, wait_state, wait_until

TABLE = """
[types]
echo = "echo"
sleep = "sleep"
"""


@dataclasses.dataclass
class Peers:
    coordinators: dict[str, Coordinator]
    servers: dict[str, grpc.aio.Server]
    addresses: dict[str, str]
    creds: dict[str, Settings]
    root: Path

    async def start(self, name: str, listen: str = "127.0.0.1:0") -> None:
        coordinator = Coordinator(
            CoordinatorConfig(
                state_dir=self.root / name,
                routing=routing.parse(TABLE),
                settings=self.creds["host"],
                local_fallback=False,
            )
        )
        # Its mesh view, as a node's membership keeps it: the peers running now.
        coordinator.mesh_peers = lambda: [self.addresses[n] for n in self.servers]
        server, port = await create_server(coordinator, listen)
        await coordinator.start()
        await server.start()
        self.coordinators[name], self.servers[name] = coordinator, server
        self.addresses[name] = f"127.0.0.1:{port}"

    async def stop(self, name: str) -> None:
        await self.servers.pop(name).stop(None)
        await self.coordinators.pop(name).stop()


def _settings(certs: Path, cert: tuple[Path, Path]) -> Settings:
    swarm = SwarmSettings()
    return Settings(
        swarm=dataclasses.replace(
            swarm, tls_ca=str(certs / "ca.pem"), tls_cert=str(cert[0]), tls_key=str(cert[1])
        )
    )


@pytest.fixture
async def peers(tmp_path: Path) -> AsyncIterator[Peers]:
    certs = tmp_path / "certs"
    creds = {
        "host": _settings(certs, make_host_cert(certs, "peer-host")),
        "editor": _settings(certs, make_credential_cert(certs, "editor", "client")),
        "mallory": _settings(certs, make_credential_cert(certs, "mallory", "client")),
        "worker": _settings(certs, make_credential_cert(certs, "w", "worker", roles=["echo"])),
    }
    made = Peers({}, {}, {}, creds, tmp_path)
    for name in ("a", "b"):
        await made.start(name)
    yield made
    for name in list(made.servers):
        await made.stop(name)


async def _superseded(peers: Peers) -> None:
    """Until ``b`` has had every answer it asked ``a`` for."""
    await wait_until(lambda: not peers.coordinators["b"].supersedes.tasks)


async def _sleep(
    client: DispatchClient, key: str, supersedes: str = "", *, failover: bool = False
) -> Receipt:
    """Submit a 30 s sleep under ``key`` (it stays queued unless a test starts a sleep
    worker); with ``supersedes`` (``id@owner``), as the resubmission that replaces that copy."""
    metadata = {FAILOVER: "1"} if failover else {}
    if supersedes:
        metadata[SUPERSEDES] = supersedes
    return await client.submit("sleep", {"seconds": 30}, idempotency_key=key, metadata=metadata)


@dataclasses.dataclass
class _Worker:
    runtime: WorkerRuntime
    running: asyncio.Task[None]

    async def stop(self, grace: float = 1) -> None:
        if not self.running.done():
            await self.runtime.stop(grace=grace)
        await asyncio.wait_for(self.running, timeout=10)


@contextlib.asynccontextmanager
async def _worker_on_a(
    peers: Peers, role: str, name: str, cache_dir: Path, journal: ResultJournal | None = None
) -> AsyncIterator[_Worker]:
    """A real worker of ``role`` (capacity 1) connected to ``a``, stopped on the way out."""
    runtime = WorkerRuntime(
        coordinator=peers.addresses["a"],
        roles=[role],
        settings=peers.creds["host"],
        name=name,
        capacity=1,
        cache_dir=cache_dir,
        result_journal=journal,
    )
    worker = _Worker(runtime, asyncio.create_task(runtime.run()))
    try:
        yield worker
    finally:
        await worker.stop()


async def test_only_a_mesh_peer_may_supersede_and_only_its_clients_own_copy(
    peers: Peers,
) -> None:
    a, b = peers.addresses["a"], peers.addresses["b"]
    async with (
        await DispatchClient.connect(peers.creds["editor"], a) as on_a,
        await DispatchClient.connect(peers.creds["editor"], b) as on_b,
        await DispatchClient.connect(peers.creds["mallory"], b) as mallory,
    ):
        # No worker for sleep: the editor's tasks stay queued on a.
        victim = await _sleep(on_a, "k-victim")
        # A client (or worker) credential cannot call the peers' RPC, whatever it names.
        for cred in ("editor", "mallory", "worker"):
            channel = open_channel(a, peers.creds[cred].swarm)
            with pytest.raises(grpc.aio.AioRpcError) as refused:
                await pb_grpc.SwarmCoordinatorStub(channel).SupersedeTask(
                    pb.SupersedeRequest(
                        task_id=victim.task_id, idempotency_key="k-victim", owner="cert:editor"
                    ),
                    timeout=10,
                )
            await channel.close()
            assert refused.value.code() == grpc.StatusCode.PERMISSION_DENIED, cred
            assert "mesh peers only" in str(refused.value.details())
        # Nor through a peer: b asks a on mallory's behalf, and a finds no copy of hers.
        forged = await _sleep(mallory, "k-victim", f"{victim.task_id}@{a}")
        await _superseded(peers)
        assert (await on_a.task_status(victim.task_id)).state == "QUEUED"
        assert (await mallory.task_status(forged.task_id)).state == "QUEUED"
        # The editor's own resubmission stops its copy on a; the new copy is queued on b.
        old = await _sleep(on_a, "k-own")
        new = await _sleep(on_b, "k-own", f"{old.task_id}@{a}")
        await _superseded(peers)
        status = await on_a.task_status(old.task_id)
        assert status.state == "CANCELLED", status
        assert (await on_b.task_status(new.task_id)).state == "QUEUED"
        assert peers.coordinators["b"].queues.depth_by_role() == {"sleep": 2}


async def test_a_finished_old_copy_is_the_answer_and_an_absent_owner_does_not_block(
    peers: Peers, tmp_path: Path
) -> None:
    a, b = peers.addresses["a"], peers.addresses["b"]
    async with (
        _worker_on_a(peers, "echo", "wa", tmp_path / "cache"),
        await DispatchClient.connect(peers.creds["editor"], a) as on_a,
        await DispatchClient.connect(peers.creds["editor"], b) as on_b,
    ):
        await wait_for_workers(on_a, 1)
        old = await on_a.submit("echo", {"text": "once"}, idempotency_key="k-done")
        await wait_state(on_a, old.task_id, {"SUCCEEDED"})
        # The old copy finished while the editor was cut off from a: b returns its
        # result for the new copy, with no worker of its own (nothing runs again).
        new = await on_b.submit(
            "echo",
            {"text": "once"},
            idempotency_key="k-done",
            metadata={SUPERSEDES: f"{old.task_id}@{a}"},
        )
        final = [r async for r in on_b.results(new.task_id) if r.final]
        assert len(final) == 1 and final[0].kind == "final", final
        assert final[0].data["text"] == "once" and final[0].worker == "wa", final
        record = peers.coordinators["b"].store.get(new.task_id)
        assert record is not None and record.result_stats[ADOPTED] == f"{old.task_id}@{a}"
        # A submit that died in flight names no id: found by the key, and absent here.
        lost = await _sleep(on_b, "k-lost", f"@{a}")
        # An old owner that does not answer (nothing listens there) does not block the
        # new copy: it is queued at once, and asked again later.
        gone = await _sleep(on_b, "k-gone", "x@127.0.0.1:1")
        queues = peers.coordinators["b"].queues
        await wait_until(lambda: queues.depth_by_role().get("sleep") == 2)
        for receipt in (lost, gone):
            assert (await on_b.task_status(receipt.task_id)).state == "QUEUED"


async def test_an_old_owner_that_comes_back_is_asked_again_and_its_held_copy_cancelled(
    peers: Peers,
) -> None:
    """The old owner was down when the new copy was accepted (it runs at once); back with its
    store, it holds its recovered copy (``FAILOVER``), and the new owner's repeated ask cancels
    it: it never runs, whoever watches it."""
    a, b = peers.addresses["a"], peers.addresses["b"]
    async with await DispatchClient.connect(peers.creds["editor"], a) as on_a:
        old = await _sleep(on_a, "k-back", failover=True)
    await peers.stop("a")
    async with await DispatchClient.connect(peers.creds["editor"], b) as on_b:
        new = await _sleep(on_b, "k-back", f"{old.task_id}@{a}", failover=True)
        queues = peers.coordinators["b"].queues
        await wait_until(lambda: queues.depth_by_role().get("sleep") == 1)  # not blocked
        assert (await on_b.task_status(new.task_id)).state == "QUEUED"
    await peers.start("a", listen=a)
    async with await DispatchClient.connect(peers.creds["editor"], a) as on_a:
        await wait_state(on_a, old.task_id, {"CANCELLED"})
        record = peers.coordinators["a"].store.get(old.task_id)
        assert record is not None and f"superseded by {new.task_id}@" in record.error_message
    await _superseded(peers)  # asked no more


async def test_a_malformed_supersedes_is_refused_at_submit(peers: Peers) -> None:
    """What a client names as the old copy is checked before any peer dials it."""
    async with await DispatchClient.connect(peers.creds["editor"], peers.addresses["b"]) as on_b:
        for value, key in (
            ("no-owner-here", "k1"),
            ("x@127.0.0.1:99999", "k2"),
            ("x@:7000", "k3"),
            ("x@peer.lan:7000", "k6"),  # a name: mesh peers are known by their addresses
            ("bad id!@127.0.0.1:7000", "k4"),
            (f"x@{'h' * 400}:7000", "k5"),
            ("x@127.0.0.1:7000", ""),  # no idempotency key: nothing to find the copy by
        ):
            with pytest.raises(RpcFailure) as refused:
                await on_b.submit(
                    "sleep", {"seconds": 30}, idempotency_key=key, metadata={SUPERSEDES: value}
                )
            assert refused.value.code == "INVALID_ARGUMENT", value
            assert SUPERSEDES in str(refused.value), value
    assert peers.coordinators["b"].queues.depth_by_role() == {}


class _Rogue(pb_grpc.SwarmCoordinatorServicer):
    """A client's own server, with its client certificate (it names 127.0.0.1 too)."""

    def __init__(self) -> None:
        self.asked: list[tuple[tuple[str, str], ...]] = []

    async def SupersedeTask(
        self, request: pb.SupersedeRequest, context: object
    ) -> pb.SupersedeReply:
        self.asked.append(tuple(context.invocation_metadata() or ()))  # type: ignore[attr-defined]
        return pb.SupersedeReply(state=pb.CANCELLED)


@pytest.mark.parametrize("lan", [True, False], ids=["peer-on-lan", "peer-on-loopback"])
async def test_a_peer_does_not_dial_an_old_owner_outside_its_mesh_view(
    peers: Peers, tmp_path: Path, lan: bool, caplog: pytest.LogCaptureFixture
) -> None:
    """A client cannot make a peer call a server of its own on that peer's loopback.

    The client runs a TLS server with its own certificate (valid for 127.0.0.1, signed by the
    swarm's CA) and names it as the old owner: ``b`` used to call it with its host certificate
    and ``swarm.token``. With ``lan``, ``b`` is told it listens on a LAN address (what
    ``swarm-lsp node --listen`` records; the test cannot give it one on loopback); without,
    ``b`` listens on loopback itself, as the rogue server does (it used to be dialled then):
    only a live peer of ``b``'s mesh view is dialled.
    """
    caplog.set_level(logging.WARNING, logger="swarm_lsp.dispatch.coordinator.supersede")
    rogue = _Rogue()
    server = grpc.aio.server()
    pb_grpc.add_SwarmCoordinatorServicer_to_server(rogue, server)
    certs = tmp_path / "certs"
    credentials = grpc.ssl_server_credentials(
        [((certs / "client-mallory.key").read_bytes(), (certs / "client-mallory.pem").read_bytes())]
    )
    port = server.add_secure_port("127.0.0.1:0", credentials)
    await server.start()
    coordinator = peers.coordinators["b"]
    if lan:
        coordinator.address = "192.168.77.2:7700"
    try:
        async with await DispatchClient.connect(
            peers.creds["mallory"], peers.addresses["b"]
        ) as mallory:
            receipt = await _sleep(mallory, "k-rogue", f"x@127.0.0.1:{port}")
            await wait_until(lambda: coordinator.queues.depth_by_role() == {"sleep": 1})
            assert (await mallory.task_status(receipt.task_id)).state == "QUEUED"
        assert rogue.asked == []
        if not lan:
            assert f"127.0.0.1:{port} is no live peer in this node's view" in caplog.text
    finally:
        await server.stop(None)


async def test_a_task_back_on_its_first_owner_replaces_its_cancelled_copy_there(
    peers: Peers,
) -> None:
    """Two failovers: ``a`` -> ``b`` (a's copy cancelled by the supersede), then ``b`` leaves
    the editor's view and the task goes back to ``a``. ``a`` used to answer with its cancelled
    copy's receipt (same idempotency key): the editor's command ended CANCELLED and nothing
    ran. Now a new copy runs on ``a``, and it stops ``b``'s copy."""
    a, b = peers.addresses["a"], peers.addresses["b"]
    async with (
        await DispatchClient.connect(peers.creds["editor"], a) as on_a,
        await DispatchClient.connect(peers.creds["editor"], b) as on_b,
    ):
        first = await _sleep(on_a, "k-2", failover=True)
        second = await _sleep(on_b, "k-2", f"{first.task_id}@{a}", failover=True)
        await _superseded(peers)
        assert (await on_a.task_status(first.task_id)).state == "CANCELLED"
        third = await _sleep(on_a, "k-2", f"{second.task_id}@{b}", failover=True)
        assert third.task_id not in (first.task_id, second.task_id)
        assert third.state == "QUEUED", third
        await wait_until(lambda: not peers.coordinators["a"].supersedes.tasks)
        assert (await on_b.task_status(second.task_id)).state == "CANCELLED"
        assert (await on_a.task_status(third.task_id)).state == "QUEUED"
        # The same resubmission repeated (a submit that died in flight) is the same copy.
        repeated = await _sleep(on_a, "k-2", f"{second.task_id}@{b}", failover=True)
        assert repeated.task_id == third.task_id
        assert peers.coordinators["a"].queues.depth_by_role() == {"sleep": 1}
        # b's copy may still ask a for the copy it replaced (its ask names no id when its
        # first submit died in flight): a's newer copy is not the one it replaced.
        channel = open_channel(a, peers.creds["host"].swarm)
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await pb_grpc.SwarmCoordinatorStub(channel).SupersedeTask(
                pb.SupersedeRequest(
                    idempotency_key="k-2", owner="cert:editor", by=f"{second.task_id}@{b}"
                ),
                timeout=10,
            )
        await channel.close()
        assert refused.value.code() == grpc.StatusCode.NOT_FOUND
        assert (await on_a.task_status(third.task_id)).state == "QUEUED"


async def test_an_old_copy_that_ran_out_of_runners_is_not_the_answer(
    peers: Peers, tmp_path: Path
) -> None:
    """``a`` gave up on its copy after losing its runners (FAILED, UNAVAILABLE: no answer of
    the task's own); the new copy on ``b`` runs instead of returning that failure."""
    a, b = peers.addresses["a"], peers.addresses["b"]
    peers.coordinators["a"].config.max_attempts = 1
    async with (
        _worker_on_a(peers, "sleep", "wa", tmp_path / "cache") as worker,
        await DispatchClient.connect(peers.creds["editor"], a) as on_a,
        await DispatchClient.connect(peers.creds["editor"], b) as on_b,
    ):
        await wait_for_workers(on_a, 1)
        old = await _sleep(on_a, "k-lost-runner")
        await wait_state(on_a, old.task_id, {"RUNNING"})
        await worker.stop(grace=0)  # its runner is gone: a gives up on it
        await wait_state(on_a, old.task_id, {"FAILED"})
        status = await on_a.task_status(old.task_id)
        assert (status.state, status.error_code) == ("FAILED", "UNAVAILABLE"), status
        new = await _sleep(on_b, "k-lost-runner", f"{old.task_id}@{a}")
        await _superseded(peers)
        assert (await on_b.task_status(new.task_id)).state == "QUEUED"
        # Nor is it the answer when the task comes back to a: a new copy runs there.
        again = await _sleep(on_a, "k-lost-runner", f"{new.task_id}@{b}")
        assert again.task_id != old.task_id and again.state == "QUEUED", again


async def test_a_result_journaled_by_the_machine_that_ran_it_outlives_its_dead_owner(
    peers: Peers, tmp_path: Path
) -> None:
    """The old owner ``a`` is gone (stopped at once, the in-process stand-in for its SIGKILL:
    only that it cannot answer matters) after its task finished on machine ``c``'s worker,
    before any client read the result. ``b`` cannot ask ``a``; it asks the live peers of its
    view, and ``c``'s node answers from its machine's journal (the worker wrote the result
    there before reporting it): the new copy ends with that result, and never runs (``b`` has
    no worker at all). Another client naming the task adopts nothing: its copy is queued."""
    await peers.start("c")
    a, b, c = (peers.addresses[n] for n in ("a", "b", "c"))
    journal = tmp_path / "c" / JOURNAL_FILE  # in c's node (coordinator) state folder
    async with (
        _worker_on_a(peers, "echo", "wc", tmp_path / "cache-c", ResultJournal(journal)),
        await DispatchClient.connect(peers.creds["editor"], a) as on_a,
    ):
        await wait_for_workers(on_a, 1)
        old = await on_a.submit(
            "echo", {"text": "journaled"}, idempotency_key="k-j", metadata={FAILOVER: "1"}
        )
        await wait_state(on_a, old.task_id, {"SUCCEEDED"})
    await peers.stop("a")
    for name in ("b", "c"):
        peers.coordinators[name].mesh_peers = lambda: [a, b, c]
    supersedes = {FAILOVER: "1", SUPERSEDES: f"{old.task_id}@{a}"}
    async with (
        await DispatchClient.connect(peers.creds["editor"], b) as on_b,
        await DispatchClient.connect(peers.creds["mallory"], c) as mallory,
    ):
        new = await on_b.submit(
            "echo", {"text": "journaled"}, idempotency_key="k-j", metadata=supersedes
        )
        final = await asyncio.wait_for(_finals(on_b.results(new.task_id)), timeout=20)
        assert len(final) == 1 and final[0].kind == "final", final
        assert final[0].data["text"] == "journaled" and final[0].worker == "wc", final
        record = peers.coordinators["b"].store.get(new.task_id)
        assert record is not None and record.result_stats[ADOPTED] == f"{old.task_id}@{a}"
        assert record.attempt == 0  # never leased
        # On c itself (its own journal holds the result), for another client: not hers.
        forged = await mallory.submit(
            "echo", {"text": "journaled"}, idempotency_key="k-j", metadata=supersedes
        )
        await wait_until(lambda: peers.coordinators["c"].queues.depth_by_role() == {"echo": 1})
        assert (await mallory.task_status(forged.task_id)).state == "QUEUED"


async def _finals(results: AsyncIterator[Any]) -> list[Any]:
    return [r async for r in results if r.final]
