"""Mesh membership between real peers in network namespaces on a bridge (root only).

Four ``swarm-lsp node`` peers with different roles and no addresses configured find each other
over mDNS and keep each other by gRPC health over mTLS; a peer with a certificate from another
CA, and one on an address the user does not own (with a certificate from our CA, reachable),
are ignored (one log line each); a SIGKILLed peer, or one whose cable is cut, is gone from
every view within 3 s (and a healed cable merges the views again); a fifth peer that joins is
seen and works for the others; a task submitted to any peer runs on a peer with its role; a
partition that cuts off the machine running a task has the owner re-run it elsewhere, fences
the stale run and heals without a second completion; a machine that dies mid-task has its task
re-run on another, and leaves no ghost.
Peers run without the local fallback worker (membership is under test, and each fallback
worker is one more process on a 2-core CI machine).
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from swarm_lsp.dispatch.coordinator.fencing import fence_ms
from tests.mesh.netmesh import PORT, ROOT, Mesh, MeshNetwork, machines, tls_env
from tests.multihost import netns
from tests.multihost.conftest import Agent
from tests.multihost.netns import available

pytestmark = [pytest.mark.skipif(bool(available()), reason=available() or ""), pytest.mark.slow]

DEAD_BOUND_S = 3.0
LEASE_TIMEOUT_MS = 2000  # the node's default
SLACK_S = 0.6  # timer slack on a loaded 2-core machine
# Advertised roles; only the echo/sleep peers run workers (for every peer): light processes.
WORKING = ("echo", "sleep")
ROLES = {"n1": ("refactor",), "n2": WORKING, "n3": ("test",), "n4": ("research",), "n5": WORKING}
PREFIX = "swmesh"
SUBNET = "10.215.0"
# Not an address the user owns (TEST-NET-1: neither loopback, private nor link-local), on the
# bridge with an on-link route both ways: only the locality guard keeps it out.
FAR = "192.0.2.9"


@pytest.fixture(scope="module")
def mesh(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Mesh]:
    root = tmp_path_factory.mktemp("mesh")
    with MeshNetwork(PREFIX, SUBNET) as net:
        names = ("n1", "n2", "n3", "n4", "n5", "rogue", "cli", "up1", "star")
        hosts = {h: net.add_host(h) for h in names}
        hosts["far"] = net.add_host("far", FAR)
        net.route("far", f"{net.subnet}.0/24")
        for host in ("n1", "n2", "n3", "n4", "n5"):
            net.route(host, f"{FAR}/32")
        cli = [sys.executable, "-m", "swarm_lsp.cli", "certs"]
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        ours = [f"--host={hosts[h]}" for h in ("n1", "n2", "n3", "n4", "n5", "far", "up1", "star")]
        making = [
            subprocess.Popen([*cli, "--out", str(root / "certs"), *ours], env=env),
            subprocess.Popen([*cli, "--out", str(root / "foreign"), "--host", hosts["rogue"]]),
        ]
        assert all(p.wait(timeout=120) == 0 for p in making)
        client = [*cli, "--out", str(root / "certs"), "--role", "client", "--name", "cli"]
        subprocess.run(client, env=env, check=True, timeout=120)
        mesh = Mesh(net, root, ROLES, {h for h, r in ROLES.items() if r == WORKING})
        try:
            for host in ("n1", "n2", "n3", "n4"):
                mesh.start(host, root / "certs")
            mesh.start("rogue", root / "foreign")
            # The far peer owns its address (swarm.allowedHosts), so it runs and advertises.
            allowed = {"SWARM_LSP_SWARM__ALLOWED_HOSTS": f"{FAR}/32"}
            mesh.start("far", root / "certs", allowed)
            yield mesh
        finally:
            mesh.stop_all()


FOUR = {"n1", "n2", "n3", "n4"}


def test_four_peers_find_each_other_and_ignore_foreign_and_non_owned_peers(mesh: Mesh) -> None:
    mesh.wait(
        lambda: all(mesh.view(h) == FOUR - {h} for h in FOUR),
        90,
        "the four peers did not all see each other (and only each other)",
    )
    mesh.wait(
        lambda: all(mesh.ignored(h, "rogue") and mesh.ignored(h, "far") for h in FOUR),
        30,
        "the foreign and the non-owned peers were not judged",
    )
    assert all({"rogue", "far"}.isdisjoint(mesh.view(h)) for h in FOUR)
    assert mesh.view("rogue") == set()  # and it sees none of us: our certificates are foreign
    # The far peer (a certificate from our CA, reachable) is refused for its address alone,
    # before any connection, and in one line; ours refuse its calls likewise.
    for host in FOUR:
        (line,) = mesh.ignored(host, "far")
        assert "not an address you own" in line, line
    assert mesh.view("far") == set()
    view = mesh.root / "n1" / "mesh.json"
    status = subprocess.run(
        [sys.executable, "-m", "swarm_lsp.cli", "status", "--mesh", "--mesh-view", str(view)],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        check=True,
    )
    rows = {line.split()[0]: line.split() for line in status.stdout.splitlines()[2:]}
    assert set(rows) == {"n2", "n3", "n4"}
    assert rows["n2"][1:3] == [f"{mesh.net.address('n2')}:{PORT}", "echo,sleep"]


def test_a_task_submitted_to_any_peer_runs_on_the_peer_with_the_role(mesh: Mesh) -> None:
    """Only n2 offers echo; it works for every peer, so n1 and n3 both place echo on n2."""
    for host in ("n1", "n3"):
        agent = mesh.agent(host)
        mesh.wait(lambda a=agent: "n2" in machines(a), 30, f"n2 never worked for {host}")  # type: ignore[misc]
        answer = agent.call(op="sequential", type="echo", payload={"text": "hi"}, count=2)
        assert answer["workers"] == ["n2", "n2"], (host, answer)
        assert machines(agent) == {"n2"}  # peers without workers offer none (no ghost)


def test_sigkilled_peer_leaves_every_view_within_the_bound(mesh: Mesh) -> None:
    mesh.procs["n4"].send_signal(signal.SIGKILL)
    mesh.procs["n4"].wait(timeout=10)
    took = mesh.wait(
        lambda: all("n4" not in mesh.view(h) for h in ("n1", "n2", "n3")),
        DEAD_BOUND_S,
        "n4 (SIGKILLed) was not out of every view",
    )
    print(f"dead peer out of every view after {took:.2f}s")
    assert all(mesh.view(h) == {"n1", "n2", "n3"} - {h} for h in ("n1", "n2", "n3"))


def test_a_cut_cable_leaves_the_views_within_the_bound_and_the_heal_merges(mesh: Mesh) -> None:
    """No RST this time: the checks time out. Healed, the candidates are probed again."""
    mesh.net.link("n3", up=False)
    try:
        took = mesh.wait(
            lambda: "n3" not in mesh.view("n1") | mesh.view("n2") and not mesh.view("n3"),
            DEAD_BOUND_S,
            "n3 (cable cut) and the others were not out of each other's views",
        )
        print(f"cut peer out of every view after {took:.2f}s")
    finally:
        mesh.net.link("n3", up=True)
    healed = mesh.wait(
        lambda: all(mesh.view(h) == {"n1", "n2", "n3"} - {h} for h in ("n1", "n2", "n3")),
        15,
        "the views did not merge after the cable was back",
    )
    print(f"views merged {healed:.2f}s after the cable was back")


def test_a_fifth_peer_joining_is_seen_by_all(mesh: Mesh) -> None:
    mesh.start("n5", mesh.root / "certs")
    took = mesh.wait(
        lambda: (
            all("n5" in mesh.view(h) for h in ("n1", "n2", "n3"))
            and mesh.view("n5") == {"n1", "n2", "n3"}
        ),
        60,
        "n5 was not seen by every peer",
    )
    print(f"joiner in every view after {took:.2f}s (process start included)")
    agent = mesh.agent("n3")
    ready = mesh.wait(lambda: "n5" in machines(agent), 5, "n5 did not work for n3 within 5 s")
    print(f"joiner working for n3 {took + ready:.2f}s after its process started")
    mesh.wait(lambda: mesh.ignored("n5", "rogue"), 30, "n5 did not judge the foreign peer")
    # Probed again every 2 s all along, the foreign peer was still logged once per peer.
    assert [len(mesh.ignored(h, "rogue")) for h in ("n1", "n2", "n3", "n5")] == [1] * 4


def _peak(intervals: list[tuple[float, float]]) -> int:
    """The most intervals that overlap at any moment (an end before a start at a tie)."""
    events = sorted([(start, 1) for start, _ in intervals] + [(end, -1) for _, end in intervals])
    running = peak = 0
    for _, step in events:
        running += step
        peak = max(peak, running)
    return peak


def test_a_machine_runs_at_most_its_capacity_for_all_peers_together(mesh: Mesh) -> None:
    """n2 and n5 (capacity 2 each) work for every peer. Three peers get three 1-second tasks
    each at once: neither machine ever runs more than two at once (each could take two per
    peer without one shared capacity), and both run two at once (the slots are used)."""
    markers = mesh.root / "capacity"
    markers.mkdir()
    agents = {host: mesh.agent(host) for host in ("n1", "n3", "n5")}
    for host, agent in agents.items():
        mesh.wait(lambda a=agent: {"n2", "n5"} <= machines(a), 30, f"n2, n5 not working for {host}")  # type: ignore[misc]
    payload = {"seconds": 1.0, "marker_dir": str(markers)}
    for agent in agents.values():
        agent.send(op="submit", type="sleep", payloads=[payload] * 3)
    ids = [agent.answer()["ids"] for agent in agents.values()]  # each peer owns its three
    for agent, own in zip(agents.values(), ids, strict=True):
        agent.send(op="wait", ids=own, timeout=60)
    results = [r for agent in agents.values() for r in agent.answer(90)["results"]]
    assert [r.get("state") for r in results] == ["SUCCEEDED"] * 9, results
    runs: dict[str, list[tuple[float, float]]] = {"n2": [], "n5": []}
    for result in results:
        started, finished = (markers / f"{k}-{result['id']}" for k in ("started", "finished"))
        runs[result["worker"]].append((started.stat().st_mtime, finished.stat().st_mtime))
    peaks = {machine: _peak(intervals) for machine, intervals in runs.items()}
    print(f"tasks at once per machine: {peaks} (capacity 2, 3 peers submitting)")
    assert peaks == {"n2": 2, "n5": 2}, (peaks, runs)


def _runner(marker: Path) -> str:
    """The machine (node id) whose worker wrote ``marker`` (the sleep role writes its pid)."""
    args = Path(f"/proc/{int(marker.read_text())}/cmdline").read_bytes().split(b"\0")
    return args[args.index(b"--name") + 1].decode()


def test_a_partition_that_heals_merges_without_a_second_completion(mesh: Mesh) -> None:
    """n3 owns a task running on n2 or n5; that machine's cable is cut mid-task. Its worker for
    n3 stops the task within its fence, before n3 (the owner) runs it on the other machine;
    the cable comes back: the views merge, the stale machine works for n3 again, and the task
    completed once as the client sees it (one final result, from the second run) and as n3
    counts it."""
    agent = mesh.agent("n3")
    markers = mesh.root / "partition"
    markers.mkdir()
    done_before = agent.call(op="status")["counts"].get("SUCCEEDED", 0)
    payload = {"seconds": 4.0, "marker_dir": str(markers)}
    (task_id,) = agent.call(op="submit", type="sleep", payloads=[payload])["ids"]
    started, cancelled, finished = (
        markers / f"{k}-{task_id}" for k in ("started", "cancelled", "finished")
    )
    mesh.wait(
        lambda: started.exists() and started.read_text().strip(), 30, "the task never started"
    )
    first_start, stale_pid = started.stat().st_mtime, int(started.read_text())
    stale = _runner(started)
    other = {"n2": "n5", "n5": "n2"}[stale]
    agent.send(op="wait", ids=[task_id], timeout=60)  # the client follows it through it all
    cut = time.time()
    mesh.net.link(stale, up=False)
    try:
        mesh.wait(lambda: started.stat().st_mtime > first_start, 30, "the owner never re-ran it")
    finally:
        mesh.net.link(stale, up=True)
        heal = time.monotonic()
    (result,) = agent.answer(60)["results"]
    assert result.get("state") == "SUCCEEDED" and result["attempt"] == 2, result
    assert result["worker"] == other, result
    # The stale run was fenced: stopped within the fence of the cut, before the second start,
    # and never finished; the second run finished.
    stopped = cancelled.stat().st_mtime
    assert int(cancelled.read_text()) == stale_pid
    assert stopped - cut <= fence_ms(LEASE_TIMEOUT_MS) / 1000 + SLACK_S, stopped - cut
    assert stopped <= started.stat().st_mtime
    assert int(finished.read_text()) != stale_pid
    _merged(mesh, agent, stale, heal)
    # Once merged, nothing of the stale run surfaces: one completion, the second run's.
    assert agent.call(op="status")["counts"].get("SUCCEEDED", 0) == done_before + 1
    assert agent.call(op="task_status", id=task_id) == {"state": "SUCCEEDED", "worker": other}
    (again,) = agent.call(op="wait", ids=[task_id], timeout=30)["results"]
    assert (again["worker"], again["attempt"], again["state"]) == (other, 2, "SUCCEEDED"), again
    assert f"of task {task_id}" not in mesh.log("n3")  # no stale report reached the owner


def _merged(mesh: Mesh, agent: Agent, machine: str, heal: float) -> None:
    """Wait until the views of the live peers merged and ``machine`` works for n3 again."""
    live = {"n1", "n2", "n3", "n5"}
    mesh.wait(
        lambda: all(mesh.view(h) == live - {h} for h in live) and machine in machines(agent),
        30,
        f"the views did not merge, or {machine} did not work for n3 again, after the heal",
    )
    print(f"partition healed: merged, {machine} works for n3, {time.monotonic() - heal:.2f}s")


def test_an_owner_cut_off_mid_task_runs_it_once_after_the_heal(mesh: Mesh) -> None:
    """The other side of a partition: n3, the owner, is cut off from every machine (and from
    the client) while its task runs on n2 or n5. The executor stops it within its fence; n3
    takes the task back when the lease times out and, with no machine for the role on its
    side, queues it; once the cable is back the machines work for n3 again, the task runs a
    second time, and the client, following it through the cut, sees one completion."""
    agent = mesh.agent("n3")
    markers = mesh.root / "owner-cut"
    markers.mkdir()
    done_before = agent.call(op="status")["counts"].get("SUCCEEDED", 0)
    payload = {"seconds": 3.0, "marker_dir": str(markers)}
    (task_id,) = agent.call(op="submit", type="sleep", payloads=[payload])["ids"]
    started, cancelled = (markers / f"{k}-{task_id}" for k in ("started", "cancelled"))
    mesh.wait(
        lambda: started.exists() and started.read_text().strip(), 30, "the task never started"
    )
    first_pid = int(started.read_text())
    executor = _runner(started)
    agent.send(op="wait", ids=[task_id], timeout=60)
    mesh.net.link("n3", up=False)
    try:
        mesh.wait(cancelled.exists, 10, f"{executor} did not stop n3's task (fence)")
        # n3 has lost every machine (and so taken its task back: its lease timed out).
        mesh.wait(lambda: not mesh.view("n3"), 10, "n3 did not notice the cut")
        assert int(cancelled.read_text()) == first_pid
        assert int(started.read_text()) == first_pid  # nothing ran it meanwhile
    finally:
        mesh.net.link("n3", up=True)
        heal = time.monotonic()
    (result,) = agent.answer(60)["results"]
    # Leased again at least once (a lease sent to a machine whose silence n3 had not yet
    # timed out is one more attempt that never started), run again after the fence.
    assert result.get("state") == "SUCCEEDED" and result["attempt"] >= 2, result
    assert started.stat().st_mtime > cancelled.stat().st_mtime
    _merged(mesh, agent, executor, heal)
    assert agent.call(op="status")["counts"].get("SUCCEEDED", 0) == done_before + 1
    (again,) = agent.call(op="wait", ids=[task_id], timeout=30)["results"]
    assert (again["worker"], again["attempt"]) == (result["worker"], result["attempt"]), again
    assert f"of task {task_id}" not in mesh.log("n3")  # no stale report reached the owner


def test_a_killed_working_peer_loses_no_task_and_leaves_no_ghost(mesh: Mesh) -> None:
    """A task accepted by n3 runs on n2 or n5; that machine dies mid-task (every process in its
    namespace SIGKILLed: node and workers): n3, the owner, runs the task on the other machine,
    the dead one leaves n3's machines, and work goes on."""
    agent = mesh.agent("n3")
    markers = mesh.root / "markers"
    markers.mkdir(exist_ok=True)
    payload = {"seconds": 3.0, "marker_dir": str(markers)}
    (task_id,) = agent.call(op="submit", type="sleep", payloads=[payload])["ids"]
    marker = markers / f"started-{task_id}"
    mesh.wait(lambda: marker.exists() and marker.read_text().strip(), 30, "the task never started")
    victim = _runner(marker)
    survivor = {"n2": "n5", "n5": "n2"}[victim]
    for pid in netns._ip("netns", "pids", mesh.net.namespace(victim)).split():
        os.kill(int(pid), signal.SIGKILL)
    mesh.procs[victim].wait(timeout=10)
    took = mesh.wait(lambda: victim not in machines(agent), DEAD_BOUND_S, f"{victim}: a ghost")
    (result,) = agent.call(op="wait", ids=[task_id], timeout=60)["results"]
    assert not result.get("client_error") and not result["error_code"], result
    assert result["worker"] == survivor, result
    print(f"{victim} out of n3's machines after {took:.2f}s; its task re-run on {survivor}")
    answer = agent.call(op="sequential", type="echo", payload={"text": "hi"}, count=2)
    assert answer["workers"] == [survivor, survivor], answer


def _spawn(
    mesh: Mesh, host: str, log: str, args: list[str], tls: bool = True
) -> subprocess.Popen[bytes]:
    """``swarm-lsp <args>`` in ``host``'s namespace, on its address's certificate if ``tls``."""
    env = (
        tls_env(mesh.root / "certs", mesh.net.address(host))
        if tls
        else {**os.environ, "PYTHONPATH": str(ROOT)}
    )
    command = [
        "ip",
        "netns",
        "exec",
        mesh.net.namespace(host),
        sys.executable,
        "-m",
        "swarm_lsp.cli",
    ]
    with open(mesh.root / f"{log}.log", "ab") as out:
        proc = subprocess.Popen(
            [*command, *args],
            cwd=mesh.root,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=out,
        )
    mesh.procs[log] = proc
    return proc


def test_up_is_a_mesh_node_peers_join_and_star_workers_still_dial(mesh: Mesh) -> None:
    """`swarm-lsp up --listen ADDR` (TLS set up): its node joins the mesh both ways, with no
    token of its own (mTLS is the credential); its roles work for the peers and theirs for it;
    a star worker dialling it as it dialled `swarm-lsp coordinator` registers and works.
    Without TLS it refuses to leave loopback, in one line."""
    address = mesh.net.address("up1")
    plain = _spawn(
        mesh,
        "star",
        "up-plain",
        [
            "up",
            "--listen",
            mesh.net.address("star"),
            "--role",
            "echo",
            "--state-dir",
            str(mesh.root / "up-plain"),
        ],
        tls=False,
    )
    assert plain.wait(timeout=60) == 1
    assert "refusing to listen" in mesh.log("up-plain") and "without TLS" in mesh.log("up-plain")

    ready = mesh.root / "up1.ready"
    state = mesh.root / "up1"
    _spawn(
        mesh,
        "up1",
        "up1",
        [
            "up",
            "--listen",
            address,
            "--port",
            str(PORT),
            "--role",
            "echo",
            "--role",
            "sleep",
            "--state-dir",
            str(state),
            "--ready-file",
            str(ready),
        ],
    )
    mesh.wait(ready.exists, 60, "swarm-lsp up did not start")
    assert ready.read_text().strip() == f"{address}:{PORT}"
    assert not (state / "token").exists()
    up_id = f"{socket.gethostname()}-{address}:{PORT}"
    live = {h for h in ("n1", "n2", "n3", "n5") if mesh.procs[h].poll() is None}
    up_view = state / "coordinator" / "mesh.json"
    mesh.wait(
        lambda: (
            all(up_id in mesh.view(h) for h in live)
            and {p["id"] for p in json.loads(up_view.read_text())["peers"]} == live
        ),
        30,
        "up's node and the peers did not see each other",
    )
    # Its roles work for the peers ...
    at_n3 = mesh.agent("n3")
    mesh.wait(lambda: up_id in machines(at_n3), 10, "up's machine did not work for n3")
    # ... the peers' for it (n2 or n5, whichever survived), and a star worker dials it.
    worker = mesh.net.address("star")
    _spawn(
        mesh,
        "star",
        "star-worker",
        [
            "worker",
            "--coordinator",
            f"{address}:{PORT}",
            "--name",
            "star-w",
            "--role",
            "echo",
            "--capacity",
            "1",
            "--cache-dir",
            str(mesh.root / "star-cache"),
        ],
    )
    at_up = mesh.agent("up1")
    working = {"local-echo", "local-sleep", "star-w"} | (live & {"n2", "n5"})
    mesh.wait(lambda: working <= machines(at_up), 30, f"not all of {working} worked for up")
    answer = at_up.call(op="sequential", type="echo", payload={"text": "hi"}, count=3)
    assert set(answer["workers"]) <= working, answer
    print(f"up as a mesh node: machines {sorted(machines(at_up))}; star worker {worker} in")
