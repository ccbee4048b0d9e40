"""The editor's side of the mesh: the real LSP server (over stdio) in its own namespace.

Three ``swarm-lsp node`` peers on a bridge (root only): ``p1`` offers no role (it only accepts
and owns tasks), ``p2`` runs ``sleep`` and ``p3`` runs ``echo`` for every peer. The routing
table sends ``research`` (``swarm.ask``) to ``sleep`` and ``index`` (``swarm.index``) to
``echo``. A server with no coordinator configured finds the mesh on the LAN; a server given
``[p1, p3]`` talks to p1, and when p1 is SIGKILLed with tasks accepted (running and queued) it
moves to p3, resubmits them there with their idempotency keys, and every command still
answers with its result (no false failure). When p1 comes back with its store, the copies it
recovers are held and then cancelled: each task completed exactly once. A server cut off from
p1 only (p1 still reaches the other peers) resubmits to p3, which supersedes p1's copies
peer to peer: each task completes once in the mesh.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import pytest
from lsprotocol import types
from pytest_lsp import ClientServerConfig, LanguageClient

from swarm_lsp.dispatch.coordinator.supersede import ADOPTED
from swarm_lsp.dispatch.result_journal import JOURNAL_FILE
from tests.mesh.netmesh import PORT, ROOT, Mesh, MeshNetwork, tls_env
from tests.multihost import netns
from tests.multihost.netns import available
from tests.server_swarm.conftest import Editor, _plain, capabilities, finished, install_handlers

pytestmark = [pytest.mark.skipif(bool(available()), reason=available() or ""), pytest.mark.slow]

PREFIX = "swlsp"
SUBNET = "10.216.0"
ROLES: dict[str, tuple[str, ...]] = {"p1": (), "p2": ("sleep",), "p3": ("echo",)}
ROUTING = """
[types]
research = "sleep"
index = "echo"

[waitBounds]
immediate = 0
background = 0
batch = 0
"""


@pytest.fixture(scope="module")
def mesh(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Mesh]:
    root = tmp_path_factory.mktemp("lspmesh")
    (root / "routing.toml").write_text(ROUTING)
    with MeshNetwork(PREFIX, SUBNET) as net:
        hosts = {h: net.add_host(h) for h in ("p1", "p2", "p3", "ed")}
        cli = [sys.executable, "-m", "swarm_lsp.cli", "certs", "--out", str(root / "certs")]
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        ours = [f"--host={hosts[h]}" for h in ROLES]
        subprocess.run([*cli, *ours], env=env, check=True, timeout=120)
        subprocess.run(
            [*cli, "--role", "client", "--name", "editor"], env=env, check=True, timeout=120
        )
        extra = ("--routing-table", str(root / "routing.toml"))
        mesh = Mesh(net, root, ROLES, {"p2", "p3"}, extra)
        try:
            for host in ROLES:
                mesh.start(host, root / "certs")
            mesh.wait(
                lambda: all(mesh.view(h) == set(ROLES) - {h} for h in ROLES),
                90,
                "the three peers did not see each other",
            )
            yield mesh
        finally:
            mesh.stop_all()


def _address(mesh: Mesh, host: str) -> str:
    return f"{mesh.net.address(host)}:{PORT}"


@contextlib.asynccontextmanager
async def _server(mesh: Mesh, coordinator: list[str]) -> AsyncIterator[LanguageClient]:
    """``swarm-lsp serve`` in the editor's namespace, initialized with ``coordinator``."""
    certs = mesh.root / "certs"
    workspace = mesh.root / "workspace"
    workspace.mkdir(exist_ok=True)
    (workspace / "app.py").write_text("def answer() -> int:\n    return 42\n")
    command = ["ip", "netns", "exec", mesh.net.namespace("ed"), sys.executable, "-m"]
    env = {**os.environ, "PYTHONPATH": str(ROOT), "SWARM_LSP_CACHE": str(mesh.root / "cache")}
    config = ClientServerConfig(server_command=[*command, "swarm_lsp.cli", "serve"], server_env=env)
    client = await config.start()
    assert isinstance(client, LanguageClient)
    editor = Editor()
    install_handlers(client, editor)
    client.editor = editor  # type: ignore[attr-defined]
    await client.initialize_session(
        types.InitializeParams(
            capabilities=capabilities(),
            root_uri=workspace.as_uri(),
            workspace_folders=[types.WorkspaceFolder(uri=workspace.as_uri(), name="workspace")],
            initialization_options={
                "swarm": {
                    "coordinator": coordinator,
                    "autostart": False,
                    "waitBoundMs": 0,
                    "tlsCa": str(certs / "ca.pem"),
                    "tlsCert": str(certs / "client-editor.pem"),
                    "tlsKey": str(certs / "client-editor.key"),
                },
                "context": {"indexOnStart": False},
            },
        )
    )
    try:
        yield client
    finally:
        await client.shutdown_session()


async def _status(client: LanguageClient) -> dict[str, Any]:
    """The ``swarm/status`` request's answer."""
    answer = await asyncio.wait_for(client.protocol.send_request_async("swarm/status", {}), 15)
    plain: dict[str, Any] = answer if isinstance(answer, dict) else _plain(answer)
    return plain


async def _until(
    client: LanguageClient, predicate: Callable[[dict[str, Any]], bool], timeout: float, what: str
) -> dict[str, Any]:
    """The first ``swarm/status`` answer ``predicate`` accepts (asked every 0.2 s)."""
    loop = asyncio.get_running_loop()
    end = loop.time() + timeout
    while True:
        status = await _status(client)
        if predicate(status):
            return status
        if loop.time() > end:
            pytest.fail(f"{what} within {timeout}s; last swarm/status: {status}")
        await asyncio.sleep(0.2)


async def _run(client: LanguageClient, name: str, *args: Any) -> dict[str, Any]:
    answer = await asyncio.wait_for(
        client.workspace_execute_command_async(
            types.ExecuteCommandParams(command=name, arguments=list(args))
        ),
        timeout=15,
    )
    assert isinstance(answer, dict) and answer.get("status") == "started", answer
    return answer


def _cli_status(mesh: Mesh, listed: list[str]) -> dict[str, Any]:
    """``swarm-lsp status --json`` over several peers, from the editor's namespace."""
    command = ["ip", "netns", "exec", mesh.net.namespace("ed"), sys.executable, "-m"]
    peers = ",".join(listed)
    done = subprocess.run(
        [*command, "swarm_lsp.cli", "status", "--json", "--recent=50", f"--coordinator={peers}"],
        env=tls_env(mesh.root / "certs", "client-editor"),
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    answer: dict[str, Any] = json.loads(done.stdout)
    return answer


def _peer_ids(status: dict[str, Any]) -> set[str]:
    return {p["id"] for p in status.get("peers") or ()}


def _peer_addresses(status: dict[str, Any]) -> set[str]:
    return {p["address"] for p in status.get("peers") or ()}


async def test_a_server_with_no_peer_configured_finds_the_mesh(mesh: Mesh) -> None:
    async with _server(mesh, []) as client:
        status = await _until(
            client,
            lambda s: s["state"] == "ready" and _peer_ids(s) == set(ROLES),
            30,
            "the server did not find the three peers",
        )
        peers = {p["id"]: p for p in status["peers"]}
        assert peers["p2"]["roles"] == ["sleep"] and peers["p3"]["roles"] == ["echo"]
        assert sum(p["current"] for p in status["peers"]) == 1
        assert all(p["rttMs"] > 0 and "load" in p for p in status["peers"]), status["peers"]
        answer = await _run(client, "swarm.index")
        result = await finished(client, answer["taskId"], 60)
        assert result["summary"], result


async def test_the_server_survives_the_death_of_its_peer_and_no_task_completes_twice(
    mesh: Mesh,
) -> None:
    p1, p3 = _address(mesh, "p1"), _address(mesh, "p3")
    since_ms = int(time.time() * 1000)
    async with _server(mesh, [p1, p3]) as client:
        ready = await _until(
            client,
            lambda s: (
                s["state"] == "ready"
                and s["coordinator"] == p1
                and {m["id"] for m in s["machines"]} == {"p2", "p3"}
            ),
            30,
            "the server did not use p1 with both working peers",
        )
        earlier = {t["id"] for t in ready["recent"]}  # p1's tasks (this editor's) so far
        # Each role runs on the peer that has it, whoever owns the task.
        asks = [await _run(client, "swarm.ask", f"question {i}") for i in range(3)]
        index = await _run(client, "swarm.index")

        def ours(s: dict[str, Any]) -> list[dict[str, Any]]:
            """The tasks p1 has stored since (a command answers before its task is sent)."""
            return [t for t in s["recent"] if t["id"] not in earlier]

        # The kill waits until p1 stored all four: a submit p1 never accepted is owned by the
        # peer its retry reaches (``@p1`` supersedes; the cut test sends one on purpose).
        status = await _until(
            client,
            lambda s: (
                s["coordinator"] == p1
                and sorted(t["type"] for t in ours(s)) == ["index", *["research"] * 3]
                and any(t["state"] == "RUNNING" and t["type"] == "research" for t in s["tasks"])
            ),
            30,
            "p1 did not accept the four tasks with an ask running",
        )
        accepted = {t["id"] for t in ours(status) if t["type"] == "research"}
        # SIGKILL the peer the server talks to, with asks accepted (running or queued).
        for pid in netns._ip("netns", "pids", mesh.net.namespace("p1")).split():
            os.kill(int(pid), signal.SIGKILL)
        mesh.procs["p1"].wait(timeout=10)
        killed = asyncio.get_running_loop().time()
        running = [t for t in status["tasks"] if t["state"] == "RUNNING"]
        worker = {"research": "p2", "index": "p3"}  # the peer with the task's role
        assert all(t["owner"] == p1 and t["worker"] == worker[t["type"]] for t in running), running
        assert (await finished(client, index["taskId"], 60))["summary"]
        for ask in asks:  # every one answers (finished() raises on a failure)
            result = await finished(client, ask["taskId"], 60)
            assert result["local"] is False, result
        took = asyncio.get_running_loop().time() - killed
        print(f"all asks answered {took:.2f}s after their owner was SIGKILLed (1 s tasks)")
        status = await _until(
            client, lambda s: s["coordinator"] == p3, 10, "the server did not move to p3"
        )
        assert _peer_addresses(status) == {p3}
        again = await _run(client, "swarm.ask", "after the death")
        assert (await finished(client, again["taskId"], 60))["local"] is False
        # p1 comes back with its store: the copies it recovers are held, never run, and the
        # server cancels them once p1 is in its view again.
        mesh.start("p1", mesh.root / "certs")
        await _until(client, lambda s: _peer_addresses(s) == {p1, p3}, 60, "p1 did not return")
        before = _research(_cli_status(mesh, [p1, p3]), p1)
        succeeded = {t["taskId"] for t in before if t["state"] == "SUCCEEDED"}  # before the kill
        loop = asyncio.get_running_loop()
        end = loop.time() + 30
        while True:
            seen = _cli_status(mesh, [p1, p3])
            old = _research(seen, p1)
            assert {t["taskId"] for t in old if t["state"] == "SUCCEEDED"} == succeeded, old
            if all(t["state"] in {"CANCELLED", "SUCCEEDED"} for t in old):
                break
            assert loop.time() < end, f"p1's old copies were not cancelled: {old}"
            await asyncio.sleep(0.5)
        # Exactly the asks p1 had accepted are back in its store, none lost, none more.
        assert {t["taskId"] for t in old} == accepted and len(old) == 3, (old, accepted)
        done = _research(seen, p3)
        assert all(t["state"] == "SUCCEEDED" and t["worker"] == "p2" for t in done), done
        assert len(succeeded) + len(done) >= 4, (old, done)
        # Every ask ran on p2 for another peer: p2's machine journaled each result.
        journal = _journaled(mesh, since_ms)
        assert len({key for key, _ in journal["p2"]}) == 4, journal
        # Each task ran to completion exactly once (the 3 asks, the one after the death and
        # the index task): the completions the owners stored (SUCCEEDED copies that did not
        # return another copy's result), plus the runs journaled on a machine whose owner
        # stored no success (it was SIGKILLed right after the run completed, before it told
        # anyone). Such a run is not repeated: p3's copy returns its journaled result
        # (docs/mesh.md, the result journal).
        runs = [entry for entries in journal.values() for entry in entries]
        for kind, count in (("research", 4), ("index", 1)):
            copies = [c for host in ROLES for c in _stored(mesh, host, since_ms, kind)]
            by_key: dict[str, list[dict[str, Any]]] = {}
            for copy in copies:
                by_key.setdefault(copy["key"], []).append(copy)
            assert len(by_key) == count, by_key
            for key, found in by_key.items():
                stored = {c["id"] for c in found if c["completed"]}
                lost = {task for k, task in runs if k == key and task not in stored}
                assert len(stored) + len(lost) == 1, (found, lost)
            adopted = sum(c["adopted"] for c in copies)
            print(f"{kind}: {adopted} copies returned a result (p1's, or journaled)")
        # The index task completed on the peer with its role; a copy still queued at p1 when
        # p1 was killed is held and then cancelled (no worker), never run.
        indexed = [
            t for s in seen["statuses"].values() for t in s["recent"] if t["type"] == "index"
        ]
        ran = [t for t in indexed if t["state"] == "SUCCEEDED"]
        assert ran and all(t["worker"] == "p3" for t in ran), indexed
        assert all(t["state"] == "CANCELLED" for t in indexed if t not in ran), indexed
        assert {t["owner"] for t in seen["tasks"]} <= {p1, p3}


def _research(status: dict[str, Any], peer: str) -> list[dict[str, Any]]:
    recent: list[dict[str, Any]] = status["statuses"][peer]["recent"]
    return [t for t in recent if t["type"] == "research"]


async def test_a_server_cut_off_from_its_peer_moves_on_and_each_task_completes_once(
    mesh: Mesh,
) -> None:
    """No RST this time: packets from the editor to p1 are dropped (a blackhole route in the
    editor's namespace), p1 itself stays up and reachable by the other peers. The server's
    view loses p1 and it resubmits p1's tasks to p3, which asks p1 (peer to peer) to supersede
    each old copy: a finished one's result is returned, an unfinished one is cancelled and runs
    on p3. Every command answers once, and each task completes exactly once in the mesh (the
    peers' stores); when the route is back, p1 is in the view again."""
    p1, p3 = _address(mesh, "p1"), _address(mesh, "p3")
    ns = mesh.net.namespace("ed")
    since_ms = int(time.time() * 1000)
    async with _server(mesh, [p1, p3]) as client:
        ready = await _until(
            client,
            lambda s: s["state"] == "ready" and s["coordinator"] == p1 and len(s["machines"]) == 2,
            60,
            "the server did not use p1 with both working peers",
        )
        earlier = {t["id"] for t in ready["recent"]}
        # p2 runs two 1 s asks at once: two run on p1's behalf, eight wait in p1's queue (the
        # last ones are still there when the cut is noticed, even on a loaded machine).
        asks = [await _run(client, "swarm.ask", f"cut {i}") for i in range(10)]
        await _until(
            client,
            lambda s: (
                sum(t["state"] == "RUNNING" and t["owner"] == p1 for t in s["tasks"]) == 2
                and sum(t["id"] not in earlier for t in s["recent"]) == len(asks)  # all stored
            ),
            30,
            "the asks did not run for p1",
        )
        netns._ip("-n", ns, "route", "add", "blackhole", mesh.net.address("p1"))
        try:
            cut = asyncio.get_running_loop().time()
            # Sent to p1 as well (still the current peer): its submit hangs, its channel is
            # closed when p1 leaves the view, and the submit goes to p3 with the same key.
            asks.append(await _run(client, "swarm.ask", "during the cut"))
            for ask in asks:
                assert (await finished(client, ask["taskId"], 60))["local"] is False
            took = asyncio.get_running_loop().time() - cut
            print(f"asks answered {took:.2f}s after the editor was cut off from their owner")
            status = await _status(client)
            assert status["coordinator"] == p3 and _peer_addresses(status) == {p3}, status
            more = await _run(client, "swarm.index")
            assert (await finished(client, more["taskId"], 60))["summary"]
        finally:
            netns._ip("-n", ns, "route", "del", "blackhole", mesh.net.address("p1"), check=False)
        await _until(client, lambda s: _peer_addresses(s) == {p1, p3}, 30, "p1 not back in view")
        assert len(client.editor.results) == len(asks) + 1  # type: ignore[attr-defined]
    copies = {host: _stored(mesh, host, since_ms, "research") for host in ROLES}
    by_key: dict[str, list[dict[str, Any]]] = {}
    for host_copies in copies.values():
        for copy in host_copies:
            by_key.setdefault(copy["key"], []).append(copy)
    assert len(by_key) == len(asks), by_key
    ran = {key: [c for c in found if c["completed"]] for key, found in by_key.items()}
    assert all(len(completed) == 1 for completed in ran.values()), by_key
    adopted = sum(c["adopted"] for c in copies["p3"])
    superseded = [c for c in copies["p1"] if "superseded by" in c["error"]]
    print(
        f"old copies on p1: {adopted} finished (their results returned by p3), "
        f"{len(superseded)} cancelled and run on p3"
    )
    assert superseded and all(c["state"] == "CANCELLED" for c in superseded), copies["p1"]


def _journaled(mesh: Mesh, since_ms: int) -> dict[str, list[tuple[str, str]]]:
    """(idempotency key, task id) of each run the working peers journaled since ``since_ms``
    (runs for another peer: a peer's own tasks are not journaled)."""
    found: dict[str, list[tuple[str, str]]] = {}
    for host in ("p2", "p3"):
        path = mesh.root / host / JOURNAL_FILE
        found[host] = []
        if not path.exists():  # made on the first journaled run: this machine had none
            continue
        with contextlib.closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True)) as db:
            rows = db.execute(
                "SELECT idempotency_key, task_id FROM results WHERE at_ms >= ?", (since_ms,)
            ).fetchall()
        found[host] = [(key, task) for key, task in rows]
    return found


def _stored(mesh: Mesh, host: str, since_ms: int, kind: str) -> list[dict[str, Any]]:
    """``host``'s stored tasks of type ``kind`` submitted since ``since_ms``: a completion is a
    SUCCEEDED copy that did not return another copy's result (``ADOPTED``)."""
    path = mesh.root / host / "tasks.sqlite3"
    with contextlib.closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True)) as db:
        rows = db.execute(
            "SELECT id, idempotency_key, state, result_stats, error_message FROM tasks"
            " WHERE type = ? AND submitted_ms >= ?",
            (kind, since_ms),
        ).fetchall()
    copies = []
    for task_id, key, state, stats, error in rows:
        adopted = ADOPTED in json.loads(stats or "{}")
        completed = state == "SUCCEEDED" and not adopted
        copies.append(
            {
                "id": task_id,
                "key": key,
                "state": state,
                "adopted": adopted,
                "completed": completed,
                "error": error,
            }
        )
    return copies
