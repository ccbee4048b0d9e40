"""Long swarm work that never blocks a request: start it, answer at once, finish in the background.

A command that starts swarm work (refactor, explain, research, run tests, ask, index, ...)
answers within milliseconds with what it started::

    {"status": "started", "taskId": "swarm.refactor-1a2b3c", "token": "swarm-...", "title": ...}

The work goes on under a server-created work-done progress (``window/workDoneProgress/create``,
cancellable: ``window/workDoneProgress/cancel`` on that token, or ``swarm.cancel [taskId]``,
stops it and the swarm task behind it). When it ends, every client gets a ``swarm/result``
notification ``{"taskId", "command", "title", "ok", "result" | "error"}``; the work itself
delivers what the user sees (an Apply question and ``workspace/applyEdit``, diagnostics, a
Markdown document or message). A request from the client's ``workDoneToken`` is never used
after its response: the LSP spec ends its validity there.
"""

from __future__ import annotations

import asyncio
import dataclasses
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

from lsprotocol import types
from pygls.exceptions import JsonRpcException

from swarm_lsp.errors import SwarmError
from swarm_lsp.server.app import SwarmLanguageServer
from swarm_lsp.server.progress import ProgressStream, client_supports_progress

RESULT_NOTIFICATION = "swarm/result"

Work = Callable[[ProgressStream], Awaitable[dict[str, Any]]]


@dataclasses.dataclass
class Job:
    task_id: str
    command: str
    title: str
    token: str | None
    task: asyncio.Task[None] | None = None


def _summary(result: dict[str, Any]) -> str:
    for key in ("summary", "answer", "markdown"):
        value = result.get(key)
        if isinstance(value, str) and value.strip():
            first = value.strip().splitlines()[0]
            return first if len(first) <= 80 else first[:79] + "…"
    return "done"


class Jobs:
    """The server's running background jobs, by task id and by progress token."""

    def __init__(self, ls: SwarmLanguageServer) -> None:
        self.ls = ls
        self.running: dict[str, Job] = {}

    def start(self, command: str, title: str, work: Work) -> dict[str, Any]:
        """Start ``work`` in the background; the answer for the request that asked for it."""
        task_id = f"{command}-{uuid.uuid4().hex[:10]}"
        token = f"swarm-{uuid.uuid4().hex[:12]}" if client_supports_progress(self.ls) else None
        job = Job(task_id, command, title, token)
        self.running[task_id] = job
        job.task = self.ls.spawn(self._run(job, work))
        answer: dict[str, Any] = {
            "status": "started",
            "taskId": task_id,
            "command": command,
            "title": title,
        }
        if token is not None:
            answer["token"] = token
        return answer

    def cancel(self, task_id: str) -> bool:
        job = self.running.get(task_id)
        if job is None or job.task is None or job.task.done():
            return False
        job.task.cancel()
        return True

    def cancel_token(self, token: Any) -> bool:
        for job in list(self.running.values()):
            if job.token is not None and job.token == token:
                return self.cancel(job.task_id)
        return False

    async def stop(self, timeout: float = 0.5) -> None:
        """Cancel every job and give each a moment to cancel its swarm task."""
        tasks = [job.task for job in self.running.values() if job.task is not None]
        for task_id in list(self.running):
            self.cancel(task_id)
        if tasks:
            await asyncio.wait(tasks, timeout=timeout)

    async def _run(self, job: Job, work: Work) -> None:
        progress = await ProgressStream.create(self.ls, job.token, job.title)
        try:
            result = await work(progress)
        except asyncio.CancelledError:
            progress.end("cancelled")
            self._finish(job, error="cancelled")
            return
        except (SwarmError, JsonRpcException) as err:
            message = str(err) or type(err).__name__
            progress.end(f"failed: {message}")
            self.ls.notify_user(f"{job.title} failed: {message}", types.MessageType.Error)
            self._finish(job, error=message)
            return
        except Exception as err:  # a bug in one job must not hide the failure from the user
            progress.end(f"failed: {err!r}")
            self.ls.notify_user(f"{job.title} failed: {err!r}", types.MessageType.Error)
            self._finish(job, error=repr(err))
            return
        progress.end(_summary(result))
        self._finish(job, result=result)

    def _finish(
        self, job: Job, *, result: dict[str, Any] | None = None, error: str | None = None
    ) -> None:
        self.running.pop(job.task_id, None)
        params: dict[str, Any] = {
            "taskId": job.task_id,
            "command": job.command,
            "title": job.title,
            "ok": error is None,
        }
        if error is None:
            params["result"] = result or {}
        else:
            params["error"] = error
        try:
            self.ls.protocol.notify(RESULT_NOTIFICATION, params)
        except Exception as err:  # the client may be gone (shutdown)
            self.ls.log(f"swarm: could not send {RESULT_NOTIFICATION}: {err!r}")
