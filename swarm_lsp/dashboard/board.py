"""The dashboard's picture of the swarm: the coordinator's status, polled, plus what it forgets.

Each poll of ``GetSwarmStatus`` becomes one JSON snapshot for the page. The board adds what a
single status cannot say: a machine's health from its heartbeat age, machines that dropped out
of the status (killed, cut off) kept as ``lost`` for a while, and a history of finished tasks
and queue depth for the plot (one sample per poll, five minutes kept).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from collections.abc import Callable
from typing import Any

from swarm_lsp.dispatch.client import DispatchClient, SwarmStatus
from swarm_lsp.errors import SwarmError

log = logging.getLogger(__name__)

LATE_MS = 1500  # no heartbeat for this long: the machine is not answering (red)
FORGET_LOST_S = 300.0  # a machine gone from the status is shown as lost this long
HISTORY_S = 300.0
TERMINAL = ("SUCCEEDED", "FAILED", "CANCELLED", "DEADLINE_EXCEEDED")
FAILED = ("FAILED", "DEADLINE_EXCEEDED")

Listener = Callable[[dict[str, Any]], None]


def health(machine: dict[str, Any]) -> tuple[str, str]:
    """(ok | busy | draining | late, a short reason) from one machine's status."""
    ago = int(machine.get("lastHeartbeatMsAgo", 0))
    if ago >= LATE_MS:
        return "late", f"no heartbeat for {ago / 1000:.1f}s"
    if machine.get("draining"):
        return "draining", "draining: takes no new tasks"
    if machine.get("capacity") and machine.get("running", 0) >= machine["capacity"]:
        return "busy", "every slot is in use"
    return "ok", "healthy"


class Board:
    """Polls the coordinator and hands each snapshot to the listeners."""

    def __init__(self, client: DispatchClient, interval: float = 0.5, recent: int = 50) -> None:
        self.client = client
        self.interval = interval
        self.recent = recent
        self.listeners: set[Listener] = set()
        self.snapshot: dict[str, Any] = {"type": "status", "connected": False, "machines": []}
        self.history: deque[dict[str, int]] = deque(maxlen=int(HISTORY_S / interval) + 1)
        self._lost: dict[str, tuple[float, dict[str, Any]]] = {}  # name -> (when, last seen)
        self._seen: dict[str, dict[str, Any]] = {}
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.ensure_future(self._run())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _run(self) -> None:
        while True:
            started = time.monotonic()
            try:
                status = await self.client.status(recent=self.recent)
            except SwarmError as err:
                self._publish({**self.snapshot, "connected": False, "error": str(err)})
            else:
                self._publish(self.build(status))
            await asyncio.sleep(max(0.05, self.interval - (time.monotonic() - started)))

    def _publish(self, snapshot: dict[str, Any]) -> None:
        self.snapshot = snapshot
        for listener in list(self.listeners):
            listener(snapshot)

    def build(self, status: SwarmStatus, now: float | None = None) -> dict[str, Any]:
        """The page's snapshot of ``status``; remembers machines that disappear."""
        now = time.monotonic() if now is None else now
        data = status.to_json()
        machines: list[dict[str, Any]] = []
        present = set()
        for machine in data["machines"]:
            state, reason = health(machine)
            machine.update(health=state, healthText=reason)
            machines.append(machine)
            present.add(machine["name"])
            self._seen[machine["name"]] = machine
            self._lost.pop(machine["name"], None)
        for name, machine in self._seen.items():
            if name not in present and name not in self._lost:
                self._lost[name] = (now, machine)
        for name, (since, machine) in list(self._lost.items()):
            if now - since > FORGET_LOST_S:
                del self._lost[name]
                self._seen.pop(name, None)
                continue
            gone = f"lost: gone from the coordinator {now - since:.0f}s ago"
            machines.append({**machine, "health": "lost", "healthText": gone, "running": 0})
        data["machines"] = sorted(machines, key=lambda m: m["name"])
        done = sum(int(data["counts"].get(state, 0)) for state in TERMINAL)
        sample = {
            "t": int(time.time() * 1000),
            "done": done,
            "queue": int(data["queueDepth"]),
            "running": sum(1 for t in data["active"] if t["state"] == "RUNNING"),
        }
        self.history.append(sample)
        data.update(
            type="status",
            connected=True,
            error="",
            failures=[t for t in data["recent"] if t["state"] in FAILED],
            sample=sample,
        )
        return data

    async def cancel(self, task_id: str) -> str:
        """Cancel ``task_id`` with the dashboard's credentials; "" or the reason it failed."""
        try:
            await self.client.cancel(task_id)
        except SwarmError as err:
            return str(err)
        return ""
