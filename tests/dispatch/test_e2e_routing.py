"""End to end on loopback: one coordinator process, two worker processes (echo + sleep).

Routing to the least-loaded worker, streamed results, queueing when every worker is busy,
cancellation reaching the handler, deadlines, idempotent submits, and bad input refused while
the coordinator keeps serving.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import grpc
import pytest
import zstandard

from swarm_lsp.dispatch import codec
from swarm_lsp.dispatch.client import DispatchClient, RpcFailure
from swarm_lsp.dispatch.proto import swarm_pb2 as pb
from swarm_lsp.dispatch.proto import swarm_pb2_grpc as pb_grpc
from swarm_lsp.errors import DispatchError

from .conftest import Swarm, connect, wait_for_workers, wait_idle, wait_state, wait_until

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def swarm(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Swarm]:
    root = tmp_path_factory.mktemp("e2e")
    swarm = Swarm(root)
    try:
        swarm.start_coordinator()
        swarm.start_worker("alpha", ["echo", "sleep"], capacity=1)
        swarm.start_worker("beta", ["echo", "sleep"], capacity=1)
        yield swarm
    finally:
        swarm.stop_all()


@pytest.fixture
async def client(swarm: Swarm) -> AsyncIterator[DispatchClient]:
    async with connect(swarm.address) as client:
        await wait_for_workers(client, 2)
        await wait_idle(client)  # each test starts with both workers free
        yield client  # type: ignore[misc]


async def test_least_loaded_worker_streams_results_and_cancel_stops_handler(
    client: DispatchClient, tmp_path: Path
) -> None:
    busy = await client.submit("sleep", {"seconds": 20, "marker_dir": str(tmp_path)})
    assert busy.state == "RUNNING"
    await wait_until(lambda: (tmp_path / f"started-{busy.task_id}").exists())
    busy_worker = (await client.task_status(busy.task_id)).worker

    receipt = await client.submit("echo", {"text": "hello", "partials": 3})
    results = [r async for r in client.results(receipt.task_id)]
    kinds = [r.kind for r in results]
    assert kinds == ["partial", "partial", "partial", "final"]
    assert [r.text for r in results[:3]] == ["part 0", "part 1", "part 2"]
    final = results[-1]
    assert final.state == "SUCCEEDED" and final.text == "hello"
    assert final.data["echo"] == {"text": "hello", "partials": 3}
    assert final.worker != busy_worker, "the idle worker should have taken the echo task"

    # Cancel reaches the worker: the handler sees its cancel_event and stops.
    await client.cancel(busy.task_id)
    await wait_until(lambda: (tmp_path / f"cancelled-{busy.task_id}").exists(), timeout=10)
    assert not (tmp_path / f"finished-{busy.task_id}").exists()
    info = await client.task_status(busy.task_id)
    assert info.state == "CANCELLED"
    final = await client.wait(busy.task_id)
    assert final.kind == "error" and final.error_code == "CANCELLED"


async def test_all_workers_busy_queues_then_runs(client: DispatchClient, tmp_path: Path) -> None:
    first = await client.submit("sleep", {"seconds": 1.0})
    second = await client.submit("sleep", {"seconds": 1.0})
    assert {first.state, second.state} == {"RUNNING"}
    queued = await client.submit("echo", {"text": "later"}, priority="immediate")
    assert queued.state == "QUEUED"
    assert queued.queue_position == 1
    assert queued.estimated_wait_ms >= 0
    assert "busy" in queued.note
    assert queued.wait_bound_ms == 2000
    final = await client.wait(queued.task_id)
    assert final.state == "SUCCEEDED" and final.text == "later"
    for receipt in (first, second):
        assert (await client.wait(receipt.task_id)).state == "SUCCEEDED"


async def test_deadline_exceeded_stops_the_task(client: DispatchClient, tmp_path: Path) -> None:
    soon = int(time.time() * 1000) + 400
    receipt = await client.submit(
        "sleep", {"seconds": 10, "marker_dir": str(tmp_path)}, deadline_ms=soon
    )
    final = await client.wait(receipt.task_id)
    assert final.kind == "error" and final.error_code == "DEADLINE_EXCEEDED"
    assert (await client.task_status(receipt.task_id)).state == "DEADLINE_EXCEEDED"
    await wait_until(lambda: (tmp_path / f"cancelled-{receipt.task_id}").exists(), timeout=10)

    past = await client.submit("echo", {}, deadline_ms=int(time.time() * 1000) - 1000)
    assert (await client.wait(past.task_id)).error_code == "DEADLINE_EXCEEDED"


async def test_same_idempotency_key_makes_one_task(client: DispatchClient) -> None:
    key = f"key-{time.time_ns()}"
    one = await client.submit("echo", {"text": "once"}, idempotency_key=key)
    two = await client.submit("echo", {"text": "twice?"}, idempotency_key=key)
    assert two.task_id == one.task_id
    assert two.duplicate and not one.duplicate
    final = await client.wait(two.task_id)
    assert final.text == "once"
    status = await client.status(recent=50)
    assert sum(1 for t in status.recent if t.task_id == one.task_id) == 1


async def test_bad_input_is_refused_and_the_coordinator_keeps_serving(
    swarm: Swarm, client: DispatchClient
) -> None:
    with pytest.raises(RpcFailure, match="unknown task type 'nonsense'") as info:
        await client.submit("nonsense", {})
    assert info.value.code == "INVALID_ARGUMENT"

    with pytest.raises(RpcFailure, match="metadata key") as info:
        await client.submit("echo", {}, metadata={"bad key\x01": "x"})
    assert info.value.code == "INVALID_ARGUMENT"
    with pytest.raises(RpcFailure, match="control characters"):
        await client.submit("echo", {}, metadata={"k": "\x00\x07"})
    with pytest.raises(RpcFailure, match="unknown priority"):
        await client.submit("echo", {}, priority="asap")

    corrupt = pb.Task(type="echo", context=b"\x28\xb5\x2f\xfd garbage that is not zstd")
    for pipelined in (True, False):  # SubmitStream (the default) and unary SubmitTask
        with pytest.raises(RpcFailure, match="corrupt zstd") as info:
            await client.submit_task(corrupt, pipelined=pipelined)
        assert info.value.code == "INVALID_ARGUMENT"
    not_json = pb.Task(type="echo", context=codec.compress(b"\xff\xfe not json"))
    with pytest.raises(RpcFailure, match="not UTF-8 JSON"):
        await client.submit_task(not_json)

    bomb = pb.Task(type="echo", context=codec.compress(b"\0" * (80 * 1024 * 1024)))
    assert len(bomb.context) < 100_000
    with pytest.raises(RpcFailure, match="more than the") as info:
        await client.submit_task(bomb)
    assert info.value.code == "RESOURCE_EXHAUSTED"

    # A message past the coordinator's size limit is refused by gRPC itself.
    async with grpc.aio.insecure_channel(
        swarm.address, options=[("grpc.max_send_message_length", 64 * 1024 * 1024)]
    ) as channel:
        stub = pb_grpc.SwarmCoordinatorStub(channel)
        with pytest.raises(grpc.aio.AioRpcError) as raw:
            await stub.SubmitTask(
                pb.Task(type="echo", context=b"x" * (33 * 1024 * 1024)), timeout=20
            )
        assert raw.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        # Bytes that are not a Task at all.
        garbage = channel.unary_unary("/swarm.v1.SwarmCoordinator/SubmitTask")
        with pytest.raises(grpc.aio.AioRpcError) as raw:
            await garbage(b"\xff\xff\xff\xff\x0f garbage", timeout=5)
        # grpc refuses it before our code runs; the status names the problem.
        assert "Wire format was corrupt" in (raw.value.details() or "")

    # Snapshot paths that would escape the snapshot folder: refused by the client, and by the
    # coordinator when a client does not check.
    with pytest.raises(DispatchError, match=r"'\.\.'"):
        await client.submit("echo", {}, snapshot={"../outside.txt": b"x"})
    for path in ("../outside.txt", "/etc/passwd", "a/../../b", "C:/x", "a\\..\\b"):
        escape = pb.Task(type="echo", snapshot=pb.SnapshotManifest(files={path: "0" * 64}))
        with pytest.raises(RpcFailure, match="bad snapshot path") as info:
            await client.submit_task(escape)
        assert info.value.code == "INVALID_ARGUMENT"
    missing = pb.Task(type="echo", snapshot=pb.SnapshotManifest(files={"a.py": "0" * 64}))
    with pytest.raises(RpcFailure, match="not uploaded") as info:
        await client.submit_task(missing)
    assert info.value.code == "FAILED_PRECONDITION"
    with pytest.raises(RpcFailure, match="NOT_FOUND"):
        await client.task_status("no-such-task")

    # ... and it still serves everyone else.
    receipt = await client.submit("echo", {"text": "still here"})
    assert (await client.wait(receipt.task_id)).text == "still here"
    await wait_state(client, receipt.task_id, {"SUCCEEDED"})


async def test_submit_many_accepts_each_good_task_and_refuses_each_bad_one(
    client: DispatchClient,
) -> None:
    answers = await client.submit_many("echo", [{"text": f"t{i}"} for i in range(20)])
    assert all(not isinstance(a, Exception) for a in answers)
    texts = sorted(
        [(await client.wait(a.task_id)).text for a in answers if not isinstance(a, Exception)]
    )
    assert texts == sorted(f"t{i}" for i in range(20))
    mixed = await client.submit_many(
        "echo", [{"text": "fine"}, {"x": 1}], metadata={"bad key": "v"}
    )
    assert all(isinstance(a, RpcFailure) and a.code == "INVALID_ARGUMENT" for a in mixed)


async def test_payload_compressed_with_a_workspace_dictionary(client: DispatchClient) -> None:
    samples: list[bytes | bytearray | memoryview] = [
        f'{{"instruction": "explain", "path": "pkg/m{i}.py", "text": "def g{i}(): pass"}}'.encode()
        for i in range(400)
    ]
    dictionary = zstandard.train_dictionary(4096, samples).as_bytes()
    payload = {"instruction": "explain", "path": "pkg/m3.py", "text": "def g3(): pass"}
    first = await client.submit("echo", payload, dictionary=dictionary)
    assert first.blobs_uploaded == 1  # the dictionary, once
    second = await client.submit("echo", payload, dictionary=dictionary)
    assert second.blobs_uploaded == 0
    for receipt in (first, second):
        final = await client.wait(receipt.task_id)
        assert final.state == "SUCCEEDED" and final.data["echo"] == payload

    dict_id = zstandard.ZstdCompressionDict(dictionary).dict_id()
    unknown = pb.Task(
        type="echo",
        context=codec.compress(b"{}"),
        context_dict_id=dict_id + 1,
    )
    with pytest.raises(RpcFailure, match="context_dict_blob") as info:
        await client.submit_task(unknown)
    assert info.value.code == "INVALID_ARGUMENT"
    missing = pb.Task(type="echo", context_dict_id=dict_id, context_dict_blob="ab" * 32)
    with pytest.raises(RpcFailure, match="dictionary is not uploaded") as info:
        await client.submit_task(missing)
    assert info.value.code == "FAILED_PRECONDITION"
