"""A real multi-host swarm (namespaces on a bridge, mTLS): crashes, cuts, impostors, a slow link.

The module's swarm (see conftest): coordinator, w1 (direct), w2 (behind a 50 ms proxy), a
client agent; lease timeout 2 s, so a worker's fence is 1.4 s (see ``coordinator.fencing``).
Tests run in file order and each leaves the swarm as it found it.
"""

from __future__ import annotations

import time

import pytest

from swarm_lsp.dispatch.client import UNREACHABLE
from swarm_lsp.dispatch.coordinator.fencing import fence_ms
from tests.multihost.conftest import (
    LEASE_TIMEOUT_MS,
    Agent,
    MultiHost,
    machines,
    wait_for,
    wait_workers,
)
from tests.multihost.netns import available

pytestmark = pytest.mark.skipif(bool(available()), reason=available() or "")

Swarm = tuple[MultiHost, Agent]
SLACK_S = 0.6  # timer slack on a loaded 2-core machine


def _started_on(mh: MultiHost, task_id: str) -> str:
    """Which worker (w1/w2) runs ``task_id``: the sleep role's marker holds its pid."""
    marker = mh.marker("started", task_id)
    wait_for(marker.exists, 30, f"task {task_id} never started")
    wait_for(lambda: marker.read_text().strip(), 5)
    pid = int(marker.read_text())
    return next(name for name, proc in mh.workers.items() if proc.pid == pid)


def _sleep(mh: MultiHost, seconds: float) -> dict[str, object]:
    return {"seconds": seconds, "marker_dir": str(mh.markers)}


def test_immediate_tasks_avoid_the_worker_behind_a_slow_link(swarm: Swarm) -> None:
    _mh, agent = swarm
    # Both workers' round trips are known within a heartbeat or two.
    wait_for(lambda: all(m["rtt_ms"] > 0 for m in machines(agent).values()), 30)
    estimates = machines(agent)
    assert estimates["w2"]["rtt_ms"] >= 90  # 2 x 50 ms through the proxy
    workers = agent.call(op="sequential", type="echo", payload={"text": "hi"}, count=20)["workers"]
    assert set(workers) <= {"w1", "w2"}, workers
    assert workers.count("w2") <= 2, workers
    assert machines(agent)["w2"]["service_ms"] > machines(agent)["w1"]["service_ms"]


def test_worker_sigkill_mid_task_gives_exactly_one_result(swarm: Swarm) -> None:
    mh, agent = swarm
    before = agent.call(op="status")["counts"].get("SUCCEEDED", 0)
    (task_id,) = agent.call(op="submit", type="sleep", payloads=[_sleep(mh, 2.0)])["ids"]
    victim = _started_on(mh, task_id)
    mh.kill(mh.workers[victim])
    try:
        (result,) = agent.call(op="wait", ids=[task_id], timeout=60)["results"]
        assert result.get("state") == "SUCCEEDED", result
        survivor = "w2" if victim == "w1" else "w1"
        assert result["worker"] == survivor
        assert agent.call(op="status")["counts"].get("SUCCEEDED", 0) == before + 1
    finally:
        if victim == "w1":
            mh.start_worker("w1", "w1", "worker-w1")
        else:
            mh.start_worker("w2", "w2", "worker-w2", target=f"127.0.0.1:{50052}")
        wait_workers(agent, {"w1", "w2"})


def test_link_down_stale_worker_stops_before_the_task_runs_elsewhere(swarm: Swarm) -> None:
    mh, agent = swarm
    (task_id,) = agent.call(op="submit", type="sleep", payloads=[_sleep(mh, 4.0)])["ids"]
    stale = _started_on(mh, task_id)
    first_start = mh.marker("started", task_id).stat().st_mtime
    cut = time.time()
    mh.net.link(stale, up=False)
    try:
        (result,) = agent.call(op="wait", ids=[task_id], timeout=60)["results"]
        assert result.get("state") == "SUCCEEDED", result
        other = "w2" if stale == "w1" else "w1"
        assert result["worker"] == other
        # The stale worker stopped within its fence of the cut (its last acknowledged
        # heartbeat was sent before the cut) ...
        stopped = mh.marker("cancelled", task_id).stat().st_mtime
        assert stopped - cut <= fence_ms(LEASE_TIMEOUT_MS) / 1000 + SLACK_S
        # ... and before the task started again elsewhere: the two never overlapped.
        second_start = mh.marker("started", task_id).stat().st_mtime
        assert second_start > first_start
        assert stopped <= second_start
        assert "tasks stopped (fenced)" in mh.log(f"worker-{stale}") or "stopping 1 task" in (
            mh.log(f"worker-{stale}")
        )
    finally:
        mh.net.link(stale, up=True)
    wait_for(lambda: machines(agent).get(stale, {}).get("rtt_ms", 0) > 0, 60)


def test_coordinator_sigkill_and_restart_loses_nothing_and_the_client_sees_no_error(
    swarm: Swarm,
) -> None:
    mh, agent = swarm
    ids = agent.call(op="submit", type="sleep", payloads=[_sleep(mh, 1.5) for _ in range(4)])["ids"]
    wait_for(lambda: sum(mh.marker("started", i).exists() for i in ids) >= 2, 30)
    agent.send(op="wait", ids=ids, timeout=90)  # the client follows all four ...
    time.sleep(0.5)
    mh.kill(mh.coordinator)  # ... through a crash and a restart
    time.sleep(1.0)
    mh.start_coordinator()
    results = agent.answer(timeout=120)["results"]
    assert [r.get("state") for r in results] == ["SUCCEEDED"] * 4, results
    assert not [r for r in results if "client_error" in r]
    # What the editor shows meanwhile: a retry note, never a failure.
    assert all(UNREACHABLE in r["progress"] for r in results), results
    wait_workers(agent, {"w1", "w2"})


def test_a_second_worker_claiming_an_identity_is_refused_and_no_task_fails(swarm: Swarm) -> None:
    mh, agent = swarm
    peer = machines(agent)["w1"]["peer"]
    # w1's own credential, from another host:
    mh.start_worker("impostor", "rogue", "worker-w1", declared="w1")
    try:
        ids = agent.call(op="submit", type="sleep", payloads=[_sleep(mh, 0.3) for _ in range(6)])[
            "ids"
        ]
        results = agent.call(op="wait", ids=ids, timeout=60)["results"]
        assert [r.get("state") for r in results] == ["SUCCEEDED"] * 6, results
        assert all(r["attempt"] == 1 for r in results), results
        assert machines(agent)["w1"]["peer"] == peer
        wait_for(lambda: "refused" in mh.log("worker-impostor").lower(), 20)
    finally:
        mh.kill(mh.workers.pop("impostor"))


def test_a_client_credential_cannot_work_or_read_another_clients_task(swarm: Swarm) -> None:
    mh, agent = swarm
    mh.start_worker("client-as-worker", "cli2", "client-cli2", declared="cli2")
    other = mh.agent("cli2", "client-cli2")
    try:
        (task_id,) = agent.call(op="submit", type="echo", payloads=[{"text": "mine"}])["ids"]
        answer = other.call(op="task_status", id=task_id)
        assert answer.get("code") in ("PERMISSION_DENIED", "NOT_FOUND"), answer
        wait_for(lambda: "refused" in mh.log("worker-client-as-worker").lower(), 20)
        assert "client-as-worker" not in machines(agent)
    finally:
        mh.kill(mh.workers.pop("client-as-worker"))
        mh.kill(other.proc)
