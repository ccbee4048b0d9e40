"""Snapshot blobs on the coordinator: PutBlobs, GetBlobs, HasBlobs over a BlobStore."""

from __future__ import annotations

import grpc

from swarm_lsp.dispatch import codec
from swarm_lsp.dispatch.coordinator.model import RequestError
from swarm_lsp.dispatch.proto import swarm_pb2 as pb
from swarm_lsp.dispatch.snapshot import BlobStore, SnapshotError
from swarm_lsp.errors import CompressionError

MAX_BLOB_BYTES = 16 * 1024 * 1024


class BlobService:
    def __init__(self, store: BlobStore, max_message_bytes: int) -> None:
        self.store = store
        self.max_message_bytes = max_message_bytes

    def put(self, batch: pb.BlobBatch) -> None:
        for blob in batch.blobs:
            try:
                raw = codec.decompress(blob.data, max_size=MAX_BLOB_BYTES, dict_id=blob.dict_id)
                self.store.put(blob.hash, raw)
            except codec.PayloadTooLargeError as err:
                raise RequestError(grpc.StatusCode.RESOURCE_EXHAUSTED, f"blob: {err}") from err
            except (CompressionError, SnapshotError) as err:
                raise RequestError(grpc.StatusCode.INVALID_ARGUMENT, f"blob: {err}") from err

    def get(self, refs: pb.BlobRefs) -> pb.BlobBatch:
        batch = pb.BlobBatch()
        budget = self.max_message_bytes // 2
        for digest in refs.hashes:
            try:
                if not self.store.has(digest):
                    continue
                data = codec.compress(self.store.get(digest))
            except SnapshotError as err:
                raise RequestError(grpc.StatusCode.INVALID_ARGUMENT, str(err)) from err
            if batch.blobs and budget - len(data) < 0:
                break  # the caller asks again for the rest
            budget -= len(data)
            batch.blobs.append(pb.Blob(hash=digest, data=data))
        return batch

    def missing(self, refs: pb.BlobRefs) -> pb.BlobRefs:
        try:
            return pb.BlobRefs(hashes=self.store.missing(refs.hashes))
        except SnapshotError as err:
            raise RequestError(grpc.StatusCode.INVALID_ARGUMENT, str(err)) from err
