"""What the mesh looks like to the user: ``swarm/status`` params and ``swarm-lsp status``.

Pure functions over the client's own status types (the live paths are in test_lsp_mesh.py).
"""

from __future__ import annotations

from swarm_lsp.config import Settings, merge
from swarm_lsp.dispatch import mesh_status
from swarm_lsp.dispatch.client import Machine, SwarmStatus, TaskSummary
from swarm_lsp.mesh.membership import Peer
from swarm_lsp.server.swarm_status import mesh_params, status_params


def _status(address: str, worker: str, task: str) -> SwarmStatus:
    machine = Machine(
        worker_id=f"id-{worker}",
        name=worker,
        host="h",
        roles=("sleep",),
        model_sizes=(),
        capacity=2,
        running=1,
        load=0.5,
        last_heartbeat_ms_ago=10,
        draining=False,
        peer="",
        completed=0,
    )
    running = TaskSummary(
        task_id=task,
        type="research",
        state="RUNNING",
        worker=worker,
        submitted_ms=1,
        duration_ms=0,
        fallback="",
    )
    return SwarmStatus(
        coordinator=address,
        machines=(machine,),
        queues={},
        queue_depth=3,
        recent=(),
        counts={},
        local_roles=(),
        uptime_ms=5,
        active=(running,),
    )


def test_several_peers_are_a_list_or_comma_separated() -> None:
    listed = merge(Settings(), {"swarm": {"coordinator": ["10.0.0.1:1", "10.0.0.2:1"]}})
    assert not listed.problems
    assert listed.swarm.coordinators == ("10.0.0.1:1", "10.0.0.2:1")
    assert listed.swarm.first_coordinator == "10.0.0.1:1"
    spelled = merge(Settings(), {"swarm": {"coordinator": "10.0.0.1:1, 10.0.0.2:1"}})
    assert spelled.swarm.coordinators == ("10.0.0.1:1", "10.0.0.2:1")
    assert Settings().swarm.coordinators == () and Settings().swarm.first_coordinator == ""


def test_swarm_status_shows_every_peer_and_the_owner_of_each_task() -> None:
    a, b = "10.0.0.1:50051", "10.0.0.2:50051"
    statuses: dict[str, object] = {a: _status(a, "gpu", "t1"), b: ConnectionError("refused")}
    peers = [Peer(a, "n1", ("echo",), "seed", 0.0, rtt_ms=1.5), Peer(b, "n2", (), "mdns", 0.0)]
    params = mesh_params(status_params("ready", a, _status(a, "gpu", "t1")), peers, statuses, a)
    first, second = params["peers"]
    assert first | {"machines": []} == {
        "address": a,
        "id": "n1",
        "roles": ["echo"],
        "rttMs": 1.5,
        "current": True,
        "load": 0.5,
        "running": 1,
        "capacity": 2,
        "queueDepth": 3,
        "machines": [],
    }
    assert second["current"] is False and "refused" in second["error"]
    assert params["tasks"] == [
        {"id": "t1", "type": "research", "state": "RUNNING", "owner": a, "worker": "gpu"}
    ]


def test_the_cli_lists_peers_with_load_latency_and_task_owners() -> None:
    a, b = "10.0.0.1:50051", "10.0.0.2:50051"
    answers = [
        mesh_status.PeerAnswer(a, _status(a, "gpu", "task-on-a"), "", 2.25),
        mesh_status.PeerAnswer(b, None, "UNAVAILABLE: refused", 0.0),
    ]
    lines = mesh_status.render(answers).splitlines()
    assert lines[0].split() == ["PEER", "ROLES", "RUNNING", "QUEUED", "LATENCY", "MACHINES"]
    assert lines[1].split() == [a, "sleep", "1/2", "3", "2.2ms", "gpu"]
    assert lines[2].startswith(b) and "unreachable" in lines[2]
    assert lines[4].split() == ["TASK", "TYPE", "STATE", "OWNER", "WORKER"]
    assert lines[5].split() == ["task-on-a", "research", "RUNNING", a, "gpu"]
    view: dict[str, object] = {
        "address": b,
        "peers": [{"address": a}, {"address": "10.0.0.3:50051"}],
    }
    assert mesh_status.peers_of([a], view) == [a, b, "10.0.0.3:50051"]
    data = mesh_status.to_json(answers, None)
    assert data["tasks"][0]["owner"] == a and set(data["statuses"]) == {a}
