"""Limits and quotas: every leak and amplification case of issue 10, checked before acceptance.

A coordinator and workers in this process over real gRPC on loopback, with small quotas so
each case is cheap to reach.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import grpc
import pytest

from swarm_lsp.config import Settings
from swarm_lsp.dispatch import codec, routing
from swarm_lsp.dispatch.client import DispatchClient, RpcFailure, uploads
from swarm_lsp.dispatch.coordinator import (
    ActiveTask,
    Coordinator,
    CoordinatorConfig,
    RequestError,
    results,
)
from swarm_lsp.dispatch.coordinator.servicers import Batches
from swarm_lsp.dispatch.proto import swarm_pb2 as pb
from swarm_lsp.dispatch.snapshot import BlobStore, SnapshotError, blob_hash, materialise
from swarm_lsp.workers.runtime import WorkerRuntime

from .conftest import ECHO_SLEEP_ROUTES, connect, serving, task_record, wait_for_workers, wait_idle

KIB = 1024
MIB = 1024 * 1024


class Swarm:
    """A coordinator (no local fallback) and the workers a test starts, in this process."""

    def __init__(self, coordinator: Coordinator, address: str, root: Path) -> None:
        self.coordinator = coordinator
        self.address = address
        self.root = root
        self.workers: list[tuple[WorkerRuntime, asyncio.Task[None]]] = []

    def start_worker(self, name: str, cls: type[WorkerRuntime] = WorkerRuntime) -> WorkerRuntime:
        worker = cls(
            coordinator=self.address,
            roles=["echo", "sleep"],
            settings=Settings(),
            name=name,
            capacity=1,
            cache_dir=self.root / name,
        )
        self.workers.append((worker, asyncio.create_task(worker.run())))
        return worker

    async def stop(self) -> None:
        for worker, _ in self.workers:
            await worker.stop(grace=1)
        await asyncio.wait_for(asyncio.gather(*(run for _, run in self.workers)), timeout=10)


@pytest.fixture
async def make_swarm(tmp_path: Path) -> AsyncIterator[Callable[..., Any]]:
    made: list[Swarm] = []
    async with contextlib.AsyncExitStack() as stack:

        async def make(**quotas: int) -> Swarm:
            coordinator = Coordinator(
                CoordinatorConfig(
                    state_dir=tmp_path / f"state{len(made)}",
                    routing=routing.parse(ECHO_SLEEP_ROUTES),
                    heartbeat_interval_ms=100,
                    lease_timeout_ms=500,
                    local_fallback=False,
                    **quotas,  # type: ignore[arg-type]
                )
            )
            address = await stack.enter_async_context(serving(coordinator))
            swarm = Swarm(coordinator, address, tmp_path)
            stack.push_async_callback(swarm.stop)  # the workers first, then their coordinator
            made.append(swarm)
            return swarm

        yield make


def _manifest_task(files: dict[str, str]) -> pb.Task:
    return pb.Task(type="echo", snapshot=pb.SnapshotManifest(files=files))


async def _refused(client: DispatchClient, task: pb.Task) -> RpcFailure:
    with pytest.raises(RpcFailure) as info:
        await client.submit_task(task)
    return info.value


async def test_bad_manifests_are_refused_before_acceptance(make_swarm: Any) -> None:
    swarm = await make_swarm()
    digest = "0" * 64
    async with connect(swarm.address) as client:
        file_and_folder = await _refused(client, _manifest_task({"a": digest, "a/b": digest}))
        assert file_and_folder.code == "INVALID_ARGUMENT"
        assert "both a file and a folder" in str(file_and_folder)
        long_part = await _refused(client, _manifest_task({"d/" + "x" * 300: digest}))
        assert "longer than 255 bytes" in str(long_part)
        # 255 bytes of UTF-8 is the limit, not 255 characters.
        wide = await _refused(client, _manifest_task({"é" * 130: digest}))
        assert "longer than 255 bytes" in str(wide)
        long_path = await _refused(client, _manifest_task({"/".join(["p" * 200] * 6): digest}))
        assert "more than 1024" in str(long_path)
        too_many = await _refused(client, _manifest_task({f"f{i}": digest for i in range(50_001)}))
        assert "more than 50000" in str(too_many)
    assert swarm.coordinator.store.counts() == {}  # nothing was stored


async def test_a_snapshot_naming_one_blob_many_times_is_refused(make_swarm: Any) -> None:
    swarm = await make_swarm(max_snapshot_bytes=1 * MIB)
    blob = os.urandom(300 * KIB)
    async with connect(swarm.address) as client:
        manifest, _ = await client.upload_snapshot({"one": blob})
        files = {f"copy{i}": manifest["one"] for i in range(4)}  # 1.2 MB written on a worker
        refusal = await _refused(client, _manifest_task(files))
        assert refusal.code == "RESOURCE_EXHAUSTED" and "max_snapshot_bytes" in str(refusal)
        fits = await client.submit_task(_manifest_task({"a": manifest["one"]}))
        assert fits.state == "QUEUED"


async def test_a_context_bomb_is_refused_before_it_is_stored(make_swarm: Any) -> None:
    swarm = await make_swarm()
    # 60 MB of JSON in a few KB of zstd: past the 16 MiB default, refused at the door.
    bomb = codec.compress(b'{"text": "' + b"a" * (60 * MIB) + b'"}')
    assert len(bomb) < 10 * KIB
    async with connect(swarm.address) as client:
        refusal = await _refused(client, pb.Task(type="echo", context=bomb))
    assert refusal.code == "RESOURCE_EXHAUSTED" and "task context" in str(refusal)
    assert swarm.coordinator.store.counts() == {}


async def test_a_too_large_result_fails_only_its_task_with_a_clear_message(
    make_swarm: Any,
) -> None:
    swarm = await make_swarm(max_result_bytes=256 * KIB, max_context_bytes=4 * MIB)
    worker = swarm.start_worker("alpha")
    async with connect(swarm.address) as client:
        await wait_for_workers(client, 1)
        big = await client.submit("echo", {"text": "x" * (512 * KIB)})
        final = await client.wait(big.task_id)
        assert final.state == "FAILED" and final.error_code == "RESOURCE_EXHAUSTED"
        assert "more than the coordinator accepts (262144)" in final.text
        # The worker said so itself: its session (and the next task) carry on.
        small = await client.submit("echo", {"text": "small"})
        assert (await client.wait(small.task_id)).text == "small"
        assert worker.sessions == 1
        await wait_idle(client)


async def test_the_coordinator_refuses_a_too_large_result_from_any_worker(
    make_swarm: Any,
) -> None:
    swarm = await make_swarm(max_result_bytes=1 * KIB)
    c = swarm.coordinator
    session = c.register_worker(pb.RegisterRequest(name="old", roles=["echo"], capacity=1), "")
    async with connect(swarm.address) as client:
        receipt = await client.submit("echo", {"text": "hi"})
        assert session.running == {receipt.task_id: 1}
        epoch = c.active[receipt.task_id].epoch  # a worker echoes its lease's epoch
        c.on_complete(
            session,
            pb.CompleteRequest(task_id=receipt.task_id, attempt=1, epoch=epoch, data=b"x" * 2048),
        )
        final = await client.wait(receipt.task_id)
    assert final.error_code == "RESOURCE_EXHAUSTED" and "max_result_bytes" in final.text
    assert session.running == {}


class _LosesLeases(WorkerRuntime):
    """A worker with a bug: it takes leases and never runs or answers them.

    (The fault is injected here because no real role can lose a lease once the runtime
    catches every exception; the coordinator must still not leak the slot.)
    """

    def _start(self, lease: pb.LeaseTask) -> None:
        return


async def test_a_lease_the_worker_silently_dropped_frees_its_slot(make_swarm: Any) -> None:
    swarm = await make_swarm()
    swarm.start_worker("buggy", _LosesLeases)
    async with connect(swarm.address) as client:
        await wait_for_workers(client, 1)
        receipt = await client.submit("echo", {"text": "lost"})
        final = await asyncio.wait_for(client.wait(receipt.task_id), timeout=15)
        assert final.state == "FAILED"
        assert "stopped running the task without a report" in final.text
        status = await client.status()
        assert [m.running for m in status.machines] == [0]  # the slot is free again


async def test_blob_quota_per_client_and_the_store_cap(make_swarm: Any) -> None:
    swarm = await make_swarm(max_client_blob_bytes=3 * MIB, max_blob_store_bytes=64 * MIB)
    # One small PutBlobs that would expand to 10 x 1 MiB: the quota stops it at 3 MiB.
    raws = [bytes([i]) * MIB for i in range(10)]
    batch = pb.BlobBatch(blobs=[pb.Blob(hash=blob_hash(r), data=codec.compress(r)) for r in raws])
    assert batch.ByteSize() < 10 * KIB
    with pytest.raises(RequestError, match="blob quota") as info:
        await asyncio.to_thread(swarm.coordinator.put_blobs, batch, "client-a")
    assert info.value.code == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert swarm.coordinator.blobs.total_bytes() == 3 * MIB
    assert swarm.coordinator.blob_service.usage("client-a") == 3 * MIB
    # Another client has its own quota.
    await asyncio.to_thread(swarm.coordinator.put_blobs, pb.BlobBatch(blobs=batch.blobs[5:6]), "b")
    assert swarm.coordinator.blob_service.usage("b") == MIB


async def test_one_small_put_blobs_cannot_expand_without_bound(
    make_swarm: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from swarm_lsp.dispatch.coordinator import blobs

    monkeypatch.setattr(blobs, "CALL_RAW_BYTES", 2 * MIB)  # 64 MiB by default
    swarm = await make_swarm()
    raws = [bytes([i]) * MIB for i in range(5)]
    batch = pb.BlobBatch(blobs=[pb.Blob(hash=blob_hash(r), data=codec.compress(r)) for r in raws])
    with pytest.raises(RequestError, match="call"):
        await asyncio.to_thread(swarm.coordinator.put_blobs, batch, "client-a")
    assert swarm.coordinator.blobs.total_bytes() == 2 * MIB
    # The client splits its uploads by raw size too, so it never meets this limit.
    async with connect(swarm.address) as client:
        monkeypatch.setattr(uploads, "BLOB_BATCH_RAW_BYTES", MIB)
        _, sent = await client.upload_snapshot({f"f{i}": r + b"!" for i, r in enumerate(raws)})
    assert sent == 5


def test_blob_store_prunes_least_recently_used_but_never_pinned(tmp_path: Path) -> None:
    evicted: list[str] = []
    store = BlobStore(
        tmp_path / "blobs", max_bytes=4 * KIB, on_evict=lambda d, s: evicted.append(d)
    )
    blobs = [bytes([i]) * KIB for i in range(4)]
    digests = [blob_hash(b) for b in blobs]
    for index, (digest, blob) in enumerate(zip(digests, blobs, strict=True)):
        store.put(digest, blob)
        os.utime(store.path(digest), (1000 + index, 1000 + index))
    store.pin([digests[0]])
    store.get(digests[1])  # used just now: among the last to go
    assert store.path(digests[1]).stat().st_mtime > 2000
    newest = b"n" * KIB
    store.put(blob_hash(newest), newest)  # 5 KiB > 4 KiB: prune to 80%, oldest first
    assert evicted == [digests[2], digests[3]]  # not the pinned one, not the ones just used
    assert store.has(digests[0]) and store.has(digests[1]) and store.has(blob_hash(newest))
    assert store.total_bytes() == 3 * KIB
    store.unpin([digests[0]])
    os.utime(store.path(digests[1]), (1500, 1500))
    assert store.prune(target=KIB) == [digests[0], digests[1]]
    assert store.total_bytes() == KIB


async def test_task_store_cap_prunes_finished_then_refuses(make_swarm: Any) -> None:
    swarm = await make_swarm(max_store_bytes=600 * KIB, max_context_bytes=MIB)
    swarm.start_worker("alpha")
    noise = os.urandom(60 * KIB).hex()  # incompressible: 120 KB stored per task
    async with connect(swarm.address) as client:
        await wait_for_workers(client, 1)
        for _ in range(6):  # finished tasks: pruned (oldest first) to make room
            receipt = await client.submit("echo", {"text": "x", "noise": noise})
            await client.wait(receipt.task_id)
        await swarm.stop()  # nothing runs now: waiting tasks pile up until the store is full
        swarm.workers.clear()
        refusal = None
        for _ in range(12):
            try:
                await client.submit("sleep", {"seconds": 0, "noise": noise})
            except RpcFailure as err:
                refusal = err
                break
    assert refusal is not None and refusal.code == "RESOURCE_EXHAUSTED"
    assert "task store is full" in str(refusal)
    assert swarm.coordinator.store.live_bytes() < 600 * KIB + 2 * 130 * KIB


async def test_materialising_never_fails_with_anything_but_a_snapshot_error(
    tmp_path: Path,
) -> None:
    store = BlobStore(tmp_path / "blobs")
    data = b"x"
    store.put(blob_hash(data), data)
    dest = tmp_path / "snap"
    dest.mkdir()
    (dest / "a").write_text("a file where the snapshot wants a folder")

    async def fetch(hashes: list[str]) -> dict[str, bytes]:
        return {}

    with pytest.raises(SnapshotError, match="cannot write the snapshot"):
        await materialise({"a/b": blob_hash(data)}, dest, store, fetch)


async def test_batches_stay_under_the_byte_budget() -> None:
    queue: asyncio.Queue[Any] = asyncio.Queue()
    big = [pb.TaskResult(task_id=str(i), data=b"x" * 600) for i in range(3)]
    for item in [*big, pb.TaskResult(task_id="small"), None]:
        queue.put_nowait(item)
    batches = Batches(queue, max_bytes=1000)
    sizes = []
    while (batch := await batches.next()) is not None:
        sizes.append([r.task_id for r in batch])
    assert sizes == [["0"], ["1"], ["2", "small"]]


def test_finished_results_are_bounded_in_bytes(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(results, "FINISHED_HISTORY_BYTES", 3000)
    log = results.ResultLog()
    for index in range(5):
        record = task_record(f"t{index}", "SUCCEEDED")
        log.remember(ActiveTask(record), pb.TaskResult(task_id=record.id, data=b"x" * 1000))
    assert [bool(log.finished(f"t{i}")) for i in range(5)] == [False, False, True, True, True]
