"""The dashboard's board without a browser: health, lost machines, history, the ETA line."""

from __future__ import annotations

from typing import Any

from swarm_lsp.dashboard.board import Board, health
from swarm_lsp.dispatch.client.types import Machine, SwarmStatus, TaskSummary
from swarm_lsp.server.swarm_tasks import with_eta


def _machine(name: str, ago: int = 100, running: int = 0) -> Machine:
    return Machine(
        worker_id=name, name=name, host="h", roles=("sleep",), model_sizes=(), capacity=1,
        running=running, load=0.0, last_heartbeat_ms_ago=ago, draining=False, peer="",
        completed=0,
    )  # fmt: skip


def _status(*machines: Machine, done: int = 0) -> SwarmStatus:
    failed = TaskSummary(
        task_id="t1", type="sleep", state="FAILED", worker="a", submitted_ms=1, duration_ms=5,
        fallback="", error_code="INTERNAL", error_message="boom",
    )  # fmt: skip
    return SwarmStatus(
        coordinator="c", machines=machines, queues={"sleep": 2}, queue_depth=2,
        recent=(failed,), counts={"SUCCEEDED": done, "FAILED": 1}, local_roles=(),
        uptime_ms=1,
    )  # fmt: skip


def test_health_from_heartbeat_age_and_slots() -> None:
    as_json: Any = lambda m: {  # noqa: E731
        "lastHeartbeatMsAgo": m.last_heartbeat_ms_ago,
        "running": m.running,
        "capacity": 1,
    }
    assert health(as_json(_machine("a")))[0] == "ok"
    assert health(as_json(_machine("a", running=1)))[0] == "busy"
    assert health(as_json(_machine("a", ago=2000))) == ("late", "no heartbeat for 2.0s")


def test_board_keeps_lost_machines_and_history() -> None:
    board = Board(client=None)  # type: ignore[arg-type]  # build() needs no coordinator
    first = board.build(_status(_machine("a"), _machine("b")), now=0.0)
    assert [m["health"] for m in first["machines"]] == ["ok", "ok"]
    assert first["failures"][0]["errorMessage"] == "boom"
    second = board.build(_status(_machine("a"), done=3), now=1.0)
    lost = {m["name"]: m for m in second["machines"]}["b"]
    assert lost["health"] == "lost" and "gone" in lost["healthText"]
    assert [s["done"] for s in board.history] == [1, 4]
    later = board.build(_status(_machine("a")), now=1000.0)
    assert [m["name"] for m in later["machines"]] == ["a"]  # forgotten after a while


def test_progress_message_carries_the_eta() -> None:
    assert with_eta("running tests", 12_400) == "running tests (about 12s left)"
    assert with_eta("", 300) == "finishing"
    assert with_eta("sleeping", None) == "sleeping"
