"""Admission: everything a task must pass before the coordinator accepts (stores) it.

Checks here raise :class:`RequestError` with the status code the client sees. Anything that
could fail later for a reason known now (a bad manifest, a payload that expands too far)
belongs here: a task that fails after acceptance has already taken a queue entry.
"""

from __future__ import annotations

import ipaddress
import re
import uuid
from collections.abc import Mapping

import grpc

from swarm_lsp.dispatch import codec
from swarm_lsp.dispatch.coordinator.model import RequestError, route_dict
from swarm_lsp.dispatch.failover import SUPERSEDES, superseded_copy
from swarm_lsp.dispatch.locality import IPAddress, split_host_port
from swarm_lsp.dispatch.proto import swarm_pb2 as pb
from swarm_lsp.dispatch.routing import Route, RoutingTable
from swarm_lsp.dispatch.snapshot import BlobStore, SnapshotError, check_hash, check_manifest
from swarm_lsp.dispatch.store import TaskRecord, now_ms
from swarm_lsp.errors import CompressionError, LocalityError, UnknownTaskTypeError

TASK_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")
META_KEY = re.compile(r"^[A-Za-z0-9._/-]{1,128}$")
MAX_METADATA_ENTRIES = 64
MAX_METADATA_VALUE = 4096
MAX_IDEMPOTENCY_KEY = 256


def check_idempotency_key(key: str) -> None:
    if len(key) > MAX_IDEMPOTENCY_KEY:
        raise RequestError(grpc.StatusCode.INVALID_ARGUMENT, "idempotency key is too long")


def route_of(routing: RoutingTable, task: pb.Task) -> Route:
    try:
        return routing.route(task.type, task.priority, task.complexity)
    except (UnknownTaskTypeError, ValueError) as err:
        raise RequestError(grpc.StatusCode.INVALID_ARGUMENT, str(err)) from err


def check_task_id(task_id: str) -> None:
    if not TASK_ID.match(task_id):
        raise RequestError(
            grpc.StatusCode.INVALID_ARGUMENT,
            "task id must be 1-128 characters of A-Z a-z 0-9 . _ : -",
        )


def check_metadata(metadata: Mapping[str, str]) -> None:
    if len(metadata) > MAX_METADATA_ENTRIES:
        raise RequestError(
            grpc.StatusCode.INVALID_ARGUMENT,
            f"metadata has {len(metadata)} entries; at most {MAX_METADATA_ENTRIES}",
        )
    for name, value in metadata.items():
        if not META_KEY.match(name):
            raise RequestError(
                grpc.StatusCode.INVALID_ARGUMENT,
                f"metadata key {name[:40]!r} must be 1-128 characters of A-Z a-z 0-9 . _ / -",
            )
        if len(value) > MAX_METADATA_VALUE or any(ord(c) < 32 and c not in "\t\n" for c in value):
            raise RequestError(
                grpc.StatusCode.INVALID_ARGUMENT,
                f"metadata value for {name!r} is too long or has control characters",
            )


MAX_PEER_ADDRESS = 300


def peer_ip_port(address: str) -> tuple[IPAddress, int] | None:
    """``ip:port`` / ``[v6]:port`` → (ip, port); None for anything else (names included:
    mesh peers are known by their addresses, and resolving a client's text takes time)."""
    try:
        host, port = split_host_port(address)
        ip = ipaddress.ip_address(host)
    except (LocalityError, ValueError):
        return None
    return (ip, port) if port is not None and 0 < port < 65536 else None


def check_supersedes(task: pb.Task) -> None:
    """``SUPERSEDES`` (``<old id>@<ip:port>``) is well formed before anyone dials it."""
    value = task.metadata.get(SUPERSEDES)
    if value is None:
        return
    old = superseded_copy(value)
    problem = "" if old is not None else "no '@<old owner host:port>'"
    if old is not None:
        old_id, owner = old
        if old_id and not TASK_ID.match(old_id):
            problem = "the old task id is not a task id"
        elif not task.idempotency_key:
            problem = "a task that supersedes another needs their idempotency key"
        else:
            if len(owner) > MAX_PEER_ADDRESS or peer_ip_port(owner) is None:
                problem = f"the old owner {owner[:80]!r} is not an ip:port (a mesh peer's)"
    if problem:
        raise RequestError(
            grpc.StatusCode.INVALID_ARGUMENT, f"metadata {SUPERSEDES} {value[:120]!r}: {problem}"
        )


def check_snapshot(manifest: Mapping[str, str], blobs: BlobStore, max_bytes: int) -> None:
    """The manifest is a valid tree, its blobs are here, its files fit in ``max_bytes``.

    The size is what a worker writes to disk: a small manifest naming one big blob many
    times is refused here, not on the worker.
    """
    if not manifest:
        return
    try:
        check_manifest(manifest)
    except SnapshotError as err:
        raise RequestError(grpc.StatusCode.INVALID_ARGUMENT, str(err)) from err
    missing = blobs.missing(manifest.values())
    if missing:
        raise RequestError(
            grpc.StatusCode.FAILED_PRECONDITION,
            f"{len(missing)} snapshot blob(s) are not uploaded yet (PutBlobs first)",
        )
    sizes: dict[str, int] = {}
    total = 0
    for digest in manifest.values():
        if digest not in sizes:
            try:
                sizes[digest] = blobs.size(digest)
            except SnapshotError as err:  # pruned a moment ago
                raise RequestError(grpc.StatusCode.FAILED_PRECONDITION, str(err)) from err
        total += sizes[digest]
        if total > max_bytes:
            raise RequestError(
                grpc.StatusCode.RESOURCE_EXHAUSTED,
                f"the snapshot's files come to more than {max_bytes} bytes "
                f"(the coordinator's max_snapshot_bytes)",
            )


def check_context(task: pb.Task, blobs: BlobStore, max_bytes: int) -> None:
    """The context decompresses (with its dictionary) within ``max_bytes`` to UTF-8 shaped
    like a JSON object (not parsed here: the worker does that)."""
    if task.context_dict_blob:
        try:
            check_hash(task.context_dict_blob)
        except SnapshotError as err:
            raise RequestError(grpc.StatusCode.INVALID_ARGUMENT, str(err)) from err
        if not blobs.has(task.context_dict_blob):
            raise RequestError(
                grpc.StatusCode.FAILED_PRECONDITION,
                "the context's zstd dictionary is not uploaded yet (PutBlobs first)",
            )
    if not task.context:
        return
    if task.context_dict_id and not codec.known_dictionary(task.context_dict_id):
        if not task.context_dict_blob:
            raise RequestError(
                grpc.StatusCode.INVALID_ARGUMENT,
                f"context needs zstd dictionary {task.context_dict_id}: set context_dict_blob",
            )
        try:
            known = codec.register_dictionary(blobs.get(task.context_dict_blob))
        except CompressionError as err:
            raise RequestError(grpc.StatusCode.INVALID_ARGUMENT, f"dictionary: {err}") from err
        if known != task.context_dict_id:
            raise RequestError(
                grpc.StatusCode.INVALID_ARGUMENT,
                f"context_dict_blob is dictionary {known}, not {task.context_dict_id}",
            )
    try:
        codec.check_payload(task.context, max_size=max_bytes, dict_id=task.context_dict_id)
    except codec.PayloadTooLargeError as err:
        raise RequestError(grpc.StatusCode.RESOURCE_EXHAUSTED, f"task context: {err}") from err
    except CompressionError as err:
        raise RequestError(grpc.StatusCode.INVALID_ARGUMENT, f"task context: {err}") from err


def admit(
    task: pb.Task,
    *,
    routing: RoutingTable,
    blobs: BlobStore,
    max_context_bytes: int,
    max_snapshot_bytes: int,
) -> TaskRecord:
    """A QUEUED record for ``task`` once every check passes (its id: given, or a new one).

    Whether a given id or idempotency key is already taken is the caller's question (it
    needs the store).
    """
    check_idempotency_key(task.idempotency_key)
    route = route_of(routing, task)
    metadata = dict(task.metadata)
    check_metadata(metadata)
    check_supersedes(task)
    check_context(task, blobs, max_context_bytes)
    manifest = dict(task.snapshot.files)
    check_snapshot(manifest, blobs, max_snapshot_bytes)
    if task.id:
        check_task_id(task.id)
    submitted = now_ms()
    return TaskRecord(
        id=task.id or uuid.uuid4().hex,
        idempotency_key=task.idempotency_key or None,
        type=task.type,
        role=route.role,
        priority=task.priority or "background",
        complexity=task.complexity or "simple",
        context=task.context,
        context_dict_id=task.context_dict_id,
        context_dict_blob=task.context_dict_blob,
        metadata=metadata,
        manifest=manifest,
        route=route_dict(route),
        state="QUEUED",
        submitted_ms=submitted,
        deadline_ms=task.deadline_ms if task.deadline_ms > 0 else submitted + route.timeout_ms,
    )
