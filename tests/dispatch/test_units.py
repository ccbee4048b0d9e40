"""Plain-module tests: codec caps, routing table checks, snapshot paths, store, registry."""

from __future__ import annotations

import asyncio
import collections
import contextlib
import sqlite3
from pathlib import Path

import pytest
import zstandard

from swarm_lsp.config import Settings
from swarm_lsp.dispatch import codec, routing
from swarm_lsp.dispatch.snapshot import (
    BlobStore,
    SnapshotError,
    blob_hash,
    check_relative_path,
    manifest_of,
    materialise,
)
from swarm_lsp.dispatch.store import BACKSTOP_PAGES, TaskRecord, TaskStore
from swarm_lsp.errors import CompressionError, RoutingTableError, UnknownTaskTypeError, WorkerError
from swarm_lsp.workers import registry
from swarm_lsp.workers.base import TaskRequest

from .conftest import task_record, wait_until

# -- codec -------------------------------------------------------------------------------

MB = 1_000_000


def test_json_round_trip() -> None:
    payload = {"instruction": "rename", "documents": ["a", "ü"], "n": 3}
    assert codec.decode_payload(codec.encode_json(payload)) == payload
    assert codec.decode_payload(b"") == {}


def test_bomb_refused_from_header_and_from_stream() -> None:
    declared = codec.compress(b"\0" * 2_000_000)
    with pytest.raises(codec.PayloadTooLargeError, match="declares 2000000 bytes"):
        codec.decompress(declared, max_size=1_000_000)
    # A streamed frame does not declare its size: the cap stops it while decompressing.
    streamed = zstandard.ZstdCompressor().compressobj()
    data = streamed.compress(b"\0" * 2_000_000) + streamed.flush()
    assert zstandard.get_frame_parameters(data).content_size == zstandard.CONTENTSIZE_UNKNOWN
    with pytest.raises(codec.PayloadTooLargeError, match="expands past"):
        codec.decompress(data, max_size=1_000_000)


@pytest.mark.parametrize(
    "data", [b"not zstd at all", codec.compress(b"{}")[:-3], b"\x28\xb5\x2f\xfd"]
)
def test_corrupt_zstd_is_a_clear_error(data: bytes) -> None:
    with pytest.raises(CompressionError, match=r"corrupt zstd|not UTF-8 JSON"):
        codec.decode_payload(data)


def test_payload_must_be_an_object() -> None:
    with pytest.raises(CompressionError, match="JSON object"):
        codec.decode_payload(codec.encode_json([1, 2]))


def test_check_payload_bounds_and_shapes_without_parsing() -> None:
    assert codec.check_payload(codec.encode_json({"a": [1, 2]})) == len(b'{"a":[1,2]}')
    assert codec.check_payload(b"") == 0
    # Declared past the cap, and streamed past it (no size in the header): refused either way.
    with pytest.raises(codec.PayloadTooLargeError, match="declares"):
        codec.check_payload(codec.compress(b'{"t":"' + b"a" * 2_000_000 + b'"}'), max_size=MB)
    streamed = zstandard.ZstdCompressor().compressobj()
    data = streamed.compress(b'{"t":"' + b"a" * 2_000_000 + b'"}') + streamed.flush()
    with pytest.raises(codec.PayloadTooLargeError, match="expands past"):
        codec.check_payload(data, max_size=MB)
    for bad in (b"\xff\xfe not json", b"[1, 2]", b"  {  ", b""):
        with pytest.raises(CompressionError, match="not UTF-8 JSON"):
            codec.check_payload(codec.compress(bad) if bad else codec.compress(b" "))
    with pytest.raises(CompressionError, match="corrupt zstd"):
        codec.check_payload(b"\x28\xb5\x2f\xfd garbage that is not zstd")


def test_several_frames_and_a_lying_header_decode_as_before() -> None:
    two = codec.compress(b'{"a":') + codec.compress(b"1}")
    assert codec.decode_payload(two) == {"a": 1}  # every frame, not only the first
    frame = bytearray(codec.compress(b'{"a": "' + b"x" * 1000 + b'"}'))
    params = zstandard.get_frame_parameters(bytes(frame))
    assert params.content_size == 1009
    # The header's size field (last byte(s) of a single-segment header) made smaller: zstd
    # refuses a frame that decodes to more than it declares.
    size_at = 5 if frame[4] & 0x20 else 6
    frame[size_at] = (frame[size_at] - 1) % 256
    with pytest.raises(CompressionError, match="corrupt zstd"):
        codec.decompress(bytes(frame), max_size=1009)


def _trained_dictionary() -> bytes:
    samples: list[bytes | bytearray | memoryview] = [
        f'{{"path": "src/mod{i}.py", "text": "def f{i}(x): return x * {i} + {i % 7}"}}'.encode()
        for i in range(400)
    ]
    return zstandard.train_dictionary(4096, samples).as_bytes()


def test_dictionaries_are_known_by_their_zstd_id() -> None:
    trained = _trained_dictionary()
    dict_id = codec.register_dictionary(trained)
    assert dict_id > 0 and codec.known_dictionary(dict_id)
    packed = codec.encode_json({"a": 1}, dict_id=dict_id)
    assert zstandard.get_frame_parameters(packed).dict_id == dict_id
    assert codec.decode_payload(packed) == {"a": 1}  # the frame names its dictionary
    assert not codec.known_dictionary(dict_id + 1)
    with pytest.raises(CompressionError, match="unknown zstd dictionary id"):
        codec.encode_json({}, dict_id=dict_id + 1)
    with pytest.raises(CompressionError, match="not a trained zstd dictionary"):
        codec.register_dictionary(b"raw content, not a dictionary")


def test_registered_dictionaries_are_bounded_and_come_back_from_their_bytes(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A client may upload any number of dictionaries; each costs the coordinator ~40 KB
    once used (they used to stay forever). The least recently used go, and one that went is
    registered again from its bytes (its blob), as admission and the worker do."""
    monkeypatch.setattr(codec, "_dictionaries", collections.OrderedDict())
    trained = bytearray(_trained_dictionary())
    ids = []
    for n in range(1, codec.MAX_DICTIONARIES + 21):
        trained[4:8] = (100_000 + n).to_bytes(4, "little")  # the dictionary id's bytes
        ids.append(codec.register_dictionary(bytes(trained)))
        if n == 2:
            first = bytes(trained)
        packed = codec.compress(b'{"n": 1}', dict_id=ids[0])  # the first one stays in use
        assert codec.decode_payload(packed) == {"n": 1}
    known = [i for i in ids if codec.known_dictionary(i)]
    assert len(known) == codec.MAX_DICTIONARIES
    assert ids[0] in known and ids[1] not in known and ids[-1] in known
    packed = zstandard.ZstdCompressor(dict_data=zstandard.ZstdCompressionDict(first)).compress(
        b'{"back": true}'
    )
    with pytest.raises(CompressionError, match="unknown zstd dictionary id"):
        codec.decode_payload(packed)
    assert codec.register_dictionary(first) == ids[1]
    assert codec.decode_payload(packed) == {"back": True}


# -- routing -----------------------------------------------------------------------------


def test_default_table_routes_every_seed_type() -> None:
    table = routing.load()
    assert {"chat", "refactor", "research", "test", "explain", "review", "echo", "sleep"} <= set(
        table.task_types
    )
    chat = table.route("chat", "immediate", "simple")
    assert (chat.role, chat.model_size, chat.timeout_ms) == ("research", "7B", 10000)
    assert table.route("chat", "background", "complex").model_size == "13B"
    assert table.route("refactor", "background", "complex").model_size == "70B"
    assert table.route("test").role == "test"
    assert table.wait_bound_ms("immediate") == 2000 and table.wait_bound_ms("batch") == 0
    with pytest.raises(UnknownTaskTypeError, match="unknown task type 'deploy'"):
        table.route("deploy")
    with pytest.raises(ValueError, match="unknown priority"):
        table.route("chat", "urgent")
    with pytest.raises(ValueError, match="unknown complexity"):
        table.route("chat", "immediate", "galactic")


BAD_TABLES = [
    ("[types]\nchat = 'research'\n\n[[route]]\ntaskType = 'chat'\nmodelSize = '65B'\n", 6, "65B"),
    ("[types]\nchat = 'research'\n\n[[route]]\ntaskType = 'chat'\ntimeout = -5\n", 6, "timeout"),
    (
        "[types]\nchat = 'research'\n[[route]]\ntaskType = 'chat'\n[[route]]\ntaskType = 'nope'\n",
        6,
        "nope",
    ),
    ("[types]\nchat = 'research'\n[[route]]\ntaskType = 'chat'\npriority = 'now'\n", 5, "now"),
    ("[types]\nchat = 'research'\n[[route]]\ntaskType = 'chat'\nspeed = 3\n", 5, "unknown field"),
    ("[types]\nchat = 'research'\nbad = = 'x'\n", 3, "not valid TOML"),
    ("[types]\nchat = 7\n", 2, "needs a role"),
    ("[types]\nchat = 'research'\n[waitBounds]\nimmediate = 'soon'\n", 4, "waitBounds"),
    ("[typos]\nchat = 'research'\n", 1, "unknown section"),
]


@pytest.mark.parametrize(("text", "line", "word"), BAD_TABLES)
def test_bad_tables_name_the_line_at_fault(text: str, line: int, word: str) -> None:
    with pytest.raises(RoutingTableError, match=rf"line {line}:.*{word}"):
        routing.parse(text, "swarm-routes.toml")


def test_first_matching_route_wins_and_types_without_routes_get_a_default(tmp_path: Path) -> None:
    path = tmp_path / "routes.toml"
    path.write_text(
        "[types]\nchat = 'research'\necho = 'echo'\n"
        "[[route]]\ntaskType = 'chat'\ncomplexity = 'complex'\nmodelSize = '180B'\n"
        "[[route]]\ntaskType = 'chat'\nmachine = 'gpu-box'\n"
    )
    table = routing.load(path)
    assert table.route("chat", complexity="complex").model_size == "180B"
    assert table.route("chat").machine == "gpu-box"
    assert table.route("echo").timeout_ms == 60000
    with pytest.raises(RoutingTableError, match="cannot read"):
        routing.load(tmp_path / "missing.toml")


# -- snapshots ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "path", ["../x", "/abs", "a/../../b", "a//b", "./a", "C:/win", "a\\b", "", "a/\x00"]
)
def test_escaping_paths_are_refused(path: str) -> None:
    with pytest.raises(SnapshotError):
        check_relative_path(path)


async def test_materialise_fetches_only_missing_blobs(tmp_path: Path) -> None:
    store = BlobStore(tmp_path / "blobs")
    files = {"a.py": b"a = 1\n", "pkg/b.py": b"b = 2\n", "pkg/c.txt": b"same"}
    source = {blob_hash(v): v for v in files.values()}
    asked: list[list[str]] = []

    async def fetch(hashes: list[str]) -> dict[str, bytes]:
        asked.append(hashes)
        return {h: source[h] for h in hashes}

    manifest = manifest_of(files)
    assert await materialise(manifest, tmp_path / "one", store, fetch) == (3, 3)
    files["a.py"] = b"a = 100\n"
    source[blob_hash(files["a.py"])] = files["a.py"]
    assert await materialise(manifest_of(files), tmp_path / "two", store, fetch) == (1, 3)
    assert asked[1] == [blob_hash(b"a = 100\n")]
    assert (tmp_path / "two" / "a.py").read_bytes() == b"a = 100\n"
    # Editing the materialised copy never corrupts the cache.
    (tmp_path / "two" / "pkg" / "b.py").write_bytes(b"changed")
    assert store.get(blob_hash(b"b = 2\n")) == b"b = 2\n"

    async def liar(hashes: list[str]) -> dict[str, bytes]:
        return {h: b"not what you asked for" for h in hashes}

    with pytest.raises(SnapshotError, match="does not match its hash"):
        await materialise({"x.py": blob_hash(b"x")}, tmp_path / "three", store, liar)


# -- store -------------------------------------------------------------------------------


def test_store_round_trip_and_reopen(tmp_path: Path) -> None:
    store = TaskStore(tmp_path / "tasks.sqlite3")
    record = TaskRecord(
        id="t1",
        idempotency_key="k1",
        type="echo",
        role="echo",
        priority="background",
        complexity="simple",
        context=b"\x01\x02",
        context_dict_id=0,
        metadata={"uri": "file:///a.py"},
        manifest={"a.py": "0" * 64},
        route={"role": "echo", "machine": "any", "model_size": "7B", "timeout_ms": 5},
        state="QUEUED",
        submitted_ms=1,
        deadline_ms=2,
    )
    store.insert(record)
    store.update("t1", state="RUNNING", attempt=1, worker="w")
    store.close()
    again = TaskStore(tmp_path / "tasks.sqlite3")
    loaded = again.get("t1")
    assert loaded is not None and loaded.state == "RUNNING" and loaded.metadata == record.metadata
    assert again.by_idempotency_key("k1") is not None
    assert [r.id for r in again.unfinished()] == ["t1"]
    assert again._db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    again.close()


async def test_store_wal_is_checkpointed_by_a_thread_not_by_commits(tmp_path: Path) -> None:
    path = tmp_path / "tasks.sqlite3"
    store = TaskStore(path)
    store.group_commits(asyncio.get_running_loop())
    assert store._db.execute("PRAGMA wal_autocheckpoint").fetchone()[0] == BACKSTOP_PAGES

    def in_database_file() -> int:  # the main file only, without the WAL
        with contextlib.closing(sqlite3.connect(f"file:{path}?immutable=1", uri=True)) as db:
            try:
                return int(db.execute("SELECT COUNT(*) FROM tasks").fetchone()[0])
            except sqlite3.OperationalError:  # not even the table is copied there yet
                return 0

    store.insert(task_record("a"))
    assert await store.durable()
    await wait_until(lambda: in_database_file() == 1, timeout=10)
    thread = store._checkpointer._thread  # type: ignore[union-attr]
    store.close()
    assert not thread.is_alive()


async def test_store_writes_of_one_loop_pass_share_one_commit(tmp_path: Path) -> None:
    path = tmp_path / "tasks.sqlite3"
    store = TaskStore(path)
    store.group_commits(asyncio.get_running_loop())
    with contextlib.closing(sqlite3.connect(path)) as other:

        def committed() -> set[str]:
            return {row[0] for row in other.execute("SELECT id FROM tasks")}

        seen: list[bool] = []
        store.insert(task_record("a"))
        store.after_commit(seen.append)
        with pytest.raises(ValueError), store.transaction():  # all or none, inside the group
            store.insert(task_record("b"))
            raise ValueError
        with store.transaction():
            store.insert(task_record("c"))
        store.update("a", state="RUNNING")
        assert store.pending() and committed() == set() and seen == []
        assert store.get("a").state == "RUNNING"  # type: ignore[union-attr]
        assert await store.durable()
        assert committed() == {"a", "c"} and seen == [True] and not store.pending()
        store.after_commit(seen.append)  # nothing pending: at once
        assert seen == [True, True]
        store.insert(task_record("d"))
        await asyncio.sleep(0)  # the commit runs on the next pass of the loop by itself
        assert committed() == {"a", "c", "d"}
    store.close()


# -- registry and test roles -------------------------------------------------------------


def test_registry_names_the_roles_and_explains_missing_ones(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert set(registry.known_roles()) == {"echo", "sleep", "refactor", "research", "test"}
    assert registry.ROLES["refactor"] == "swarm_lsp.workers.refactor.role:create"
    assert registry.role_available("echo")
    monkeypatch.setitem(registry.ROLES, "ghost", "swarm_lsp.workers.ghost_role:create")
    assert not registry.role_available("ghost")
    with pytest.raises(WorkerError, match="role 'ghost' is not available"):
        registry.load_role("ghost", Settings())
    with pytest.raises(WorkerError, match="unknown role"):
        registry.load_role("astrology", Settings())


class _Reporter:
    def __init__(self) -> None:
        self.parts: list[str] = []

    async def partial(self, text: str, data: dict[str, object] | None = None) -> None:
        self.parts.append(text)

    async def progress(self, message: str, percentage: int | None = None) -> None:
        self.parts.append(message)


async def test_sleep_role_stops_on_cancel(tmp_path: Path) -> None:
    handler = registry.load_role("sleep", Settings())
    request = TaskRequest(
        id="s1", type="sleep", payload={"seconds": 30, "marker_dir": str(tmp_path)}
    )
    running = asyncio.create_task(handler.run(request, _Reporter()))
    await asyncio.sleep(0.1)
    request.cancel_event.set()
    result = await asyncio.wait_for(running, timeout=2)
    assert result["cancelled"] is True
    assert (tmp_path / "cancelled-s1").exists() and not (tmp_path / "finished-s1").exists()


def test_store_prunes_only_old_finished_tasks(tmp_path: Path) -> None:
    store = TaskStore(tmp_path / "tasks.sqlite3")
    for task_id, state, finished in (
        ("old", "SUCCEEDED", 10),
        ("new", "FAILED", 5000),
        ("q", "QUEUED", 0),
    ):
        store.insert(task_record(task_id, state, finished_ms=finished))
    assert store.prune(1000) == 1
    assert store.get("old") is None and store.get("new") is not None and store.get("q") is not None
    store.close()


def test_store_made_by_an_older_version_gets_new_columns(tmp_path: Path) -> None:
    import sqlite3

    path = tmp_path / "old.sqlite3"
    db = sqlite3.connect(path)
    db.execute(
        "CREATE TABLE tasks (id TEXT PRIMARY KEY, idempotency_key TEXT UNIQUE, type TEXT, "
        "role TEXT, priority TEXT, complexity TEXT, context BLOB, context_dict_id INTEGER, "
        "metadata TEXT, manifest TEXT, route TEXT, state TEXT, attempt INTEGER, worker TEXT, "
        "fallback TEXT, submitted_ms INTEGER, deadline_ms INTEGER, started_ms INTEGER, "
        "finished_ms INTEGER, result_text TEXT, result_data BLOB, result_stats TEXT, "
        "error_code TEXT, error_message TEXT)"
    )
    db.execute(
        "INSERT INTO tasks VALUES ('t', NULL, 'echo', 'echo', 'batch', 'simple', x'', 0, '{}', "
        "'{}', '{}', 'QUEUED', 0, '', '', 1, 2, 0, 0, '', x'', '{}', '', '')"
    )
    db.commit()
    db.close()
    store = TaskStore(path)
    (record,) = store.unfinished()
    assert record.id == "t" and record.context_dict_blob == ""
    store.close()


def test_default_table_routes_every_task_type_the_server_sends() -> None:
    from swarm_lsp.dispatch import routing

    table = routing.parse(routing.default_table_text())
    for task_type in ("chat", "refactor", "explain", "review", "research", "index", "test"):
        route = table.route(task_type)
        assert route.timeout_ms > 0, task_type
    assert table.types["index"] == "research"
