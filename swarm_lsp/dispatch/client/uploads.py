"""Uploading snapshot blobs and zstd dictionaries: only what the coordinator lacks."""

from __future__ import annotations

from collections.abc import Mapping

from swarm_lsp.dispatch import codec
from swarm_lsp.dispatch.client.types import call_failures
from swarm_lsp.dispatch.proto import swarm_pb2 as pb
from swarm_lsp.dispatch.proto import swarm_pb2_grpc as pb_grpc
from swarm_lsp.dispatch.snapshot import blob_hash, manifest_of
from swarm_lsp.errors import DispatchError, SwarmError

BLOB_BATCH_BYTES = 8 * 1024 * 1024  # compressed, per PutBlobs call
BLOB_BATCH_RAW_BYTES = 32 * 1024 * 1024  # raw: the coordinator refuses calls that expand past 64


class Uploads:
    def __init__(
        self,
        stub: pb_grpc.SwarmCoordinatorStub,
        metadata: tuple[tuple[str, str], ...],
        timeout: float,
    ) -> None:
        self._stub = stub
        self._metadata = metadata
        self._timeout = timeout
        self.closed = False  # set by the client's close(): its calls in flight are cancelled
        self._dictionaries: dict[str, int] = {}  # blob hash -> zstd id, uploaded already

    async def snapshot(self, files: Mapping[str, bytes]) -> tuple[dict[str, str], int]:
        """Send only the blobs the coordinator lacks; return (manifest, blobs uploaded)."""
        try:
            manifest = manifest_of(files)
        except SwarmError as err:
            raise DispatchError(f"snapshot: {err}") from err
        by_hash = {digest: files[path] for path, digest in manifest.items()}
        with call_failures("uploading the snapshot", lambda: self.closed):
            missing = await self._stub.HasBlobs(
                pb.BlobRefs(hashes=list(by_hash)), metadata=self._metadata, timeout=self._timeout
            )
            batch = pb.BlobBatch()
            size = raw = 0
            for digest in missing.hashes:
                data = codec.compress(by_hash[digest])
                if batch.blobs and (
                    size + len(data) > BLOB_BATCH_BYTES
                    or raw + len(by_hash[digest]) > BLOB_BATCH_RAW_BYTES
                ):
                    await self._stub.PutBlobs(batch, metadata=self._metadata, timeout=self._timeout)
                    batch, size, raw = pb.BlobBatch(), 0, 0
                batch.blobs.append(pb.Blob(hash=digest, data=data))
                size += len(data)
                raw += len(by_hash[digest])
            if batch.blobs:
                await self._stub.PutBlobs(batch, metadata=self._metadata, timeout=self._timeout)
        return manifest, len(missing.hashes)

    async def dictionary(self, dictionary: bytes) -> tuple[int, str, int]:
        """Register and upload a dictionary (once per client); (zstd id, blob hash, sent)."""
        digest = blob_hash(dictionary)
        known = self._dictionaries.get(digest)
        if known is not None:
            return known, digest, 0
        try:
            dict_id = codec.register_dictionary(dictionary)
        except SwarmError as err:
            raise DispatchError(f"dictionary: {err}") from err
        _, sent = await self.snapshot({"zstd.dict": dictionary})
        self._dictionaries[digest] = dict_id
        return dict_id, digest, sent
