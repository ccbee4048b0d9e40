"""The contract between the worker runtime and the role handlers.

The runtime (lease, heartbeat, streaming, cancellation) knows nothing of what a role does;
a role knows nothing of gRPC. A task's ``payload`` is the JSON object carried, zstd-compressed,
in ``Task.context``; its ``snapshot_dir`` holds the workspace files named in the task's
snapshot manifest, materialised by the runtime before the handler runs.
"""

from __future__ import annotations

import asyncio
import dataclasses
from pathlib import Path
from typing import Any, Protocol


@dataclasses.dataclass(kw_only=True)
class TaskRequest:
    """One leased task, as a role handler sees it."""

    id: str
    type: str
    priority: str = "background"
    complexity: str = "simple"
    payload: dict[str, Any] = dataclasses.field(default_factory=dict)
    metadata: dict[str, str] = dataclasses.field(default_factory=dict)
    snapshot_dir: Path | None = None
    cancel_event: asyncio.Event = dataclasses.field(default_factory=asyncio.Event)

    @property
    def cancelled(self) -> bool:
        return self.cancel_event.is_set()


class TaskReporter(Protocol):
    """Streams partial results of one task back to whoever submitted it."""

    async def partial(self, text: str, data: dict[str, Any] | None = None) -> None: ...

    async def progress(self, message: str, percentage: int | None = None) -> None: ...


class RoleHandler(Protocol):
    """A worker role: runs the task types it names and returns a JSON-able result."""

    role: str
    task_types: tuple[str, ...]

    async def run(self, task: TaskRequest, reporter: TaskReporter) -> dict[str, Any]: ...
