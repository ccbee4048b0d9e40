"""The worker's side of ``GetBlobs``: the blobs of a task's snapshot it does not have yet."""

from __future__ import annotations

import grpc

from swarm_lsp.config import Settings
from swarm_lsp.dispatch import codec
from swarm_lsp.dispatch.proto import swarm_pb2 as pb
from swarm_lsp.dispatch.proto import swarm_pb2_grpc as pb_grpc
from swarm_lsp.dispatch.security import call_metadata
from swarm_lsp.dispatch.snapshot import SnapshotError
from swarm_lsp.workers.reconnect import describe

BLOB_CALL_TIMEOUT_S = 30.0
BATCH = 256  # hashes asked for in one call


async def fetch_blobs(
    channel: grpc.aio.Channel | None, settings: Settings, hashes: list[str]
) -> dict[str, bytes]:
    """The blobs ``hashes`` names (decompressed) from the coordinator on ``channel``; the ones
    it does not have are left out (the caller reports what is missing)."""
    if channel is None:
        raise SnapshotError("not connected to the coordinator")
    stub = pb_grpc.SwarmWorkerStub(channel)
    found: dict[str, bytes] = {}
    wanted = list(hashes)
    while wanted:
        try:
            batch = await stub.GetBlobs(
                pb.BlobRefs(hashes=wanted[:BATCH]),
                metadata=call_metadata(settings.swarm),
                timeout=BLOB_CALL_TIMEOUT_S,
            )
        except grpc.aio.AioRpcError as err:
            raise SnapshotError(f"cannot fetch blobs: {describe(err)}") from err
        if not batch.blobs:
            break
        for blob in batch.blobs:
            found[blob.hash] = codec.decompress(
                blob.data, max_size=settings.context.max_decompressed_bytes
            )
        wanted = [h for h in wanted if h not in found]
    return found
