"""Snapshot blobs on the coordinator: PutBlobs, GetBlobs, HasBlobs over a BlobStore.

Quotas: one blob is at most 16 MiB decompressed; one call expands to at most 64 MiB (or 64
times its size, when larger), so a small message cannot fill a disk; each client may have at most
``max_client_bytes`` of blobs stored at once (what it uploaded and is still there); the store
as a whole is capped, and past its cap the least recently used blobs go — never those that a
task still waiting or running refers to (the coordinator pins them).
"""

from __future__ import annotations

import threading

import grpc

from swarm_lsp.dispatch import codec
from swarm_lsp.dispatch.coordinator.model import RequestError
from swarm_lsp.dispatch.proto import swarm_pb2 as pb
from swarm_lsp.dispatch.snapshot import BlobStore, SnapshotError, check_hash
from swarm_lsp.errors import CompressionError

MAX_BLOB_BYTES = 16 * 1024 * 1024
# One PutBlobs call may expand to at most this much, or EXPANSION times its own size if more
# (clients send at most 32 MiB of raw blobs per call; see client/uploads.py).
CALL_RAW_BYTES = 64 * 1024 * 1024
EXPANSION = 64


class BlobService:
    def __init__(self, store: BlobStore, *, max_message_bytes: int, max_client_bytes: int) -> None:
        self.store = store
        self.max_message_bytes = max_message_bytes
        self.max_client_bytes = max_client_bytes
        self._lock = threading.Lock()  # puts run in threads
        self._usage: dict[str, int] = {}  # client -> bytes of its blobs still stored
        self._owner: dict[str, tuple[str, int]] = {}  # digest -> (client, bytes)
        store.on_evict = self._evicted

    def usage(self, client: str) -> int:
        with self._lock:
            return self._usage.get(client, 0)

    def _evicted(self, digest: str, size: int) -> None:
        with self._lock:
            owner = self._owner.pop(digest, None)
            if owner is not None:
                self._usage[owner[0]] = max(0, self._usage.get(owner[0], 0) - owner[1])

    def _reserve(self, client: str) -> int:
        """Bytes ``client`` may still store in one blob (taken now, settled by ``_settle``)."""
        with self._lock:
            room = self.max_client_bytes - self._usage.get(client, 0)
            if room <= 0:
                raise RequestError(
                    grpc.StatusCode.RESOURCE_EXHAUSTED,
                    f"blob quota: {client} already has {self.max_client_bytes} bytes of blobs "
                    "stored (they are released as tasks finish and blobs age out)",
                )
            reserved = min(MAX_BLOB_BYTES, room)
            self._usage[client] = self._usage.get(client, 0) + reserved
            return reserved

    def _settle(self, client: str, digest: str, reserved: int, written: int) -> None:
        with self._lock:
            self._usage[client] = self._usage.get(client, 0) - reserved + written
            if written:
                self._owner[digest] = (client, written)

    def put(self, batch: pb.BlobBatch, client: str = "") -> None:
        allowance = max(CALL_RAW_BYTES, EXPANSION * batch.ByteSize())
        for blob in batch.blobs:
            try:
                if self.store.has(check_hash(blob.hash)):
                    continue  # nothing to write (and nothing to decompress)
            except SnapshotError as err:
                raise RequestError(grpc.StatusCode.INVALID_ARGUMENT, f"blob: {err}") from err
            if allowance <= 0:
                raise RequestError(
                    grpc.StatusCode.RESOURCE_EXHAUSTED,
                    f"blobs: this call expands to more than {CALL_RAW_BYTES} bytes; send "
                    "fewer blobs per PutBlobs",
                )
            reserved = self._reserve(client)
            cap = min(reserved, allowance)
            written = 0
            try:
                raw = codec.decompress(blob.data, max_size=cap, dict_id=blob.dict_id)
                allowance -= len(raw)
                written = self.store.put(blob.hash, raw)
            except codec.PayloadTooLargeError as err:
                if cap == MAX_BLOB_BYTES:
                    limit = "16 MiB per blob"
                elif cap == allowance:
                    limit = f"at most {CALL_RAW_BYTES} bytes per call"
                else:
                    limit = "the client's blob quota"
                raise RequestError(
                    grpc.StatusCode.RESOURCE_EXHAUSTED, f"blob: {err} ({limit})"
                ) from err
            except (CompressionError, SnapshotError) as err:
                raise RequestError(grpc.StatusCode.INVALID_ARGUMENT, f"blob: {err}") from err
            finally:
                self._settle(client, blob.hash, reserved, written)

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
