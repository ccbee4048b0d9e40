"""Test roles: ``echo`` answers with its payload, ``sleep`` sleeps and can be cancelled.

Both are real roles run by the real runtime; tests and benchmarks use them to exercise routing,
failover and cancellation without a model. Payload keys:

- echo: ``partials`` (int, default 0) partial results before the answer; ``text``; any other
  keys are echoed back. With a snapshot, the result lists its files and their sizes.
- sleep: ``seconds`` (float); ``marker_dir`` (optional) gets ``started-<id>``,
  ``finished-<id>`` or ``cancelled-<id>`` files so a test in another process can see what the
  handler did.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
from pathlib import Path
from typing import Any

from swarm_lsp.config import Settings
from swarm_lsp.workers.base import TaskReporter, TaskRequest


class EchoRole:
    role = "echo"
    task_types: tuple[str, ...] = ("echo",)

    async def run(self, task: TaskRequest, reporter: TaskReporter) -> dict[str, Any]:
        payload = task.payload
        for index in range(int(payload.get("partials", 0))):
            await reporter.partial(f"part {index}", {"index": index})
        files: dict[str, int] = {}
        if task.snapshot_dir is not None:
            for path in sorted(task.snapshot_dir.rglob("*")):
                if path.is_file():
                    files[path.relative_to(task.snapshot_dir).as_posix()] = path.stat().st_size
        return {
            "text": str(payload.get("text", "")),
            "echo": payload,
            "files": files,
            "pid": os.getpid(),
        }


def _mark(folder: str | None, name: str) -> None:
    if folder:
        with contextlib.suppress(OSError):
            Path(folder, name).write_text(str(os.getpid()), encoding="utf-8")


class SleepRole:
    role = "sleep"
    task_types: tuple[str, ...] = ("sleep",)

    async def run(self, task: TaskRequest, reporter: TaskReporter) -> dict[str, Any]:
        seconds = float(task.payload.get("seconds", 1.0))
        marker = task.payload.get("marker_dir")
        _mark(marker, f"started-{task.id}")
        await reporter.progress("sleeping", 0)
        end = time.monotonic() + seconds
        try:
            while (left := end - time.monotonic()) > 0:
                if task.cancelled:
                    _mark(marker, f"cancelled-{task.id}")
                    return {"text": "cancelled", "cancelled": True}
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(task.cancel_event.wait(), timeout=min(left, 0.05))
        except asyncio.CancelledError:
            _mark(marker, f"cancelled-{task.id}")
            raise
        _mark(marker, f"finished-{task.id}")
        return {"text": f"slept {seconds}s", "pid": os.getpid()}


def create_echo(settings: Settings) -> EchoRole:
    return EchoRole()


def create_sleep(settings: Settings) -> SleepRole:
    return SleepRole()
