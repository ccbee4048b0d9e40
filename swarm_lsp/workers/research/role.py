"""The research role: index a workspace and answer questions about it with citations.

Task types ``index`` and ``research``. The workspace is ``task.snapshot_dir`` (files sent with
the task) or, for a worker on the same machine, ``payload["root"]``.

``index`` payload: ``{"root"?: str, "rebuild"?: bool, "open_files"?: [str]}`` →
``{"stats": {...}, "summary"}`` (files seen / indexed / unchanged / removed, chunks, points,
points with dense vectors, skipped files with reasons). Its progress reports the keyword side
(searchable from 50%) and then the dense fill.

With a snapshot, ``root`` (the client's workspace path) names the index so the next task of
the same workspace finds it again.

``explain`` (the shipped routing table sends it here) runs the refactor role's explain.

``research`` payload: ``{"question": str, "root"?: str, "top_k"?: int (default 5),
"open_files"?: [str]}`` → ``{"answer": markdown, "citations": [{"path", "line", "end_line",
"symbol", "score"}], "model": name, "coverage": dense fraction, "timings": {...}}``, timings
in ms from the task's start (``sources_ms``, ``first_token_ms``; ``search_ms``) and what the
engine reported of the answer (``prompt_tokens``, ``reused_tokens`` of them kept from the last
answer's prompt, ``prompt_ms``, ``threads``). Lines in citations are
1-based (``path:line`` as people write it). The keyword side of the index is brought up to
date first (only changed files are read again), the hybrid search fuses it with whatever dense
vectors exist, the sources stream at once, then the local chat model's tokens; the answer says
when the index was not complete and always ends with the list of sources.

The role is long-lived: the worker keeps each workspace's index open between tasks and fills
its dense vectors in a background thread (:mod:`.workspace`), paused while a question is
answered; ``open_files`` go first.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from pathlib import Path
from typing import Any

from swarm_lsp.config import Settings
from swarm_lsp.errors import ModelError, WorkerError
from swarm_lsp.workers.base import TaskReporter, TaskRequest
from swarm_lsp.workers.refactor import backend
from swarm_lsp.workers.research import answer, stopping
from swarm_lsp.workers.research.index import LOCK_WAIT_S, IndexStats, WorkspaceIndex
from swarm_lsp.workers.research.workspace import Workspace

log = logging.getLogger(__name__)

DEFAULT_TOP_K = 5
ANSWER_MAX_TOKENS = 768


def summarize(stats: IndexStats) -> str:
    text = (
        f"{stats.files_seen} files: {stats.files_indexed} indexed, "
        f"{stats.files_unchanged} unchanged, {stats.files_removed} removed, "
        f"{len(stats.skipped)} skipped; {stats.chunks} chunks written, "
        f"{stats.points} in the index, {stats.dense_points} with semantic vectors "
        f"(searchable after {stats.sparse_seconds:.1f}s, complete after {stats.seconds:.1f}s)"
    )
    for warning in stats.warnings:
        text += f"\nwarning: {warning}"
    return text


class ResearchRole:
    """Runs ``index`` and ``research`` tasks; keeps each workspace's index open between them."""

    role = "research"
    task_types: tuple[str, ...] = ("research", "index", "explain")

    def __init__(
        self,
        settings: Settings,
        *,
        model: backend.ChatModel | None = None,
        background_fill: bool = True,
    ) -> None:
        """``background_fill`` False (a one-shot CLI run) leaves the dense fill to ``index``."""
        self.settings = settings
        self._model = model
        self.background_fill = background_fill
        # How long opening an index waits for another process to let it go (then
        # ResourceBusy: the task goes back to the queue).
        self.lock_wait_s = LOCK_WAIT_S
        self.fallback = False
        self._tasks = 0  # tasks running now
        self._workspaces: dict[str, Workspace] = {}
        self._open_lock = threading.Lock()

    def _root(self, task: TaskRequest) -> Path:
        if task.snapshot_dir is not None:
            return task.snapshot_dir
        root = task.payload.get("root")
        if not root:
            raise WorkerError("a research task needs the workspace: no snapshot or root was sent")
        return Path(str(root))

    def _workspace(self, task: TaskRequest) -> Workspace:
        """The workspace's open index (opened on its first task, then kept)."""
        root = self._root(task)
        identity = None
        if task.snapshot_dir is not None:
            # Snapshot folders are new for every task: name the index by the client's
            # workspace so it is reused (and only changed files are read again).
            identity = str(task.payload.get("root") or "swarm-snapshot")
        if not root.is_dir():
            WorkspaceIndex(root, self.settings)  # raises the "no such folder" error
        key = identity or str(root.resolve())
        with self._open_lock:
            workspace = self._workspaces.get(key)
            if workspace is None:
                workspace = Workspace.open(root, self.settings, identity, self.lock_wait_s)
                self._workspaces[key] = workspace
        workspace.rebase(root)
        workspace.last_used = time.monotonic()
        focus = task.payload.get("open_files")
        if isinstance(focus, list):
            workspace.focus = [str(f) for f in focus]
        return workspace

    def as_fallback(self) -> None:
        """Run as the coordinator's local fallback worker, which a research worker on this
        machine may share the workspace indexes with (one process at a time opens one): never
        wait for an index another process holds (give the task back at once, for the holder),
        fill dense vectors only within ``index`` tasks, and close every index when the last
        task ends, so such a worker can open it."""
        self.fallback = True
        self.lock_wait_s = 0.0
        self.background_fill = False

    def close(self) -> None:
        """Stop every fill and close every index, so another process may open them (the
        worker is shutting down, or a fallback is done); the next task opens them again."""
        with self._open_lock:
            workspaces = list(self._workspaces.values())
            self._workspaces.clear()
        for workspace in workspaces:
            workspace.close()

    async def _update(
        self, task: TaskRequest, reporter: TaskReporter, rebuild: bool
    ) -> tuple[Workspace, IndexStats]:
        """Bring the sparse side up to date (the index answers from here on)."""
        workspace = await asyncio.to_thread(self._workspace, task)
        loop = asyncio.get_running_loop()
        stop = threading.Event()
        last = [-1]

        def progress(done: int, total: int, rel: str) -> None:
            pct = int(done * 50 / max(total, 1))
            if pct != last[0] and pct % 5 == 0:
                last[0] = pct
                asyncio.run_coroutine_threadsafe(reporter.progress(f"reading {rel}", pct), loop)

        async def watch() -> None:
            await task.cancel_event.wait()
            stop.set()

        def update() -> IndexStats:
            with workspace.lock, workspace.paused():
                return workspace.index.update(
                    rebuild=rebuild, progress=progress, cancel=stop, dense=False
                )

        watcher = asyncio.ensure_future(watch())
        try:
            stats = await asyncio.to_thread(update)
        finally:
            watcher.cancel()
        if self.background_fill or task.type == "index":
            workspace.start_fill()
        return workspace, stats

    async def _follow_fill(self, task: TaskRequest, reporter: TaskReporter, ws: Workspace) -> int:
        """Report the dense fill's progress until it is complete (or the task is cancelled)."""
        last = -1
        while not task.cancelled:
            finished = await asyncio.to_thread(ws.wait, 1.0)
            cover = ws.index.coverage()
            pct = 50 + int(cover.fraction * 50)
            if pct != last:
                last = pct
                await reporter.progress(
                    f"semantic vectors {cover.dense_points}/{cover.points}", pct
                )
            if finished:
                break
        if task.cancelled:
            ws.stop()
            raise WorkerError("indexing cancelled; the index keeps what was done")
        if ws.error:
            raise WorkerError(f"filling the dense vectors failed: {ws.error}")
        return ws.index.coverage().dense_points

    async def run(self, task: TaskRequest, reporter: TaskReporter) -> dict[str, Any]:
        self._tasks += 1
        try:
            return await self._run(task, reporter)
        finally:
            self._tasks -= 1
            if self.fallback and not self._tasks:
                await asyncio.to_thread(self.close)

    async def _run(self, task: TaskRequest, reporter: TaskReporter) -> dict[str, Any]:
        payload = task.payload or {}
        if task.type == "explain":
            # The shipped routing table sends ``explain`` to research workers; the refactor
            # role's explain runs here with the same chat model.
            from swarm_lsp.workers.refactor.role import RefactorRole

            return await RefactorRole(self.settings, model=self._model).run(task, reporter)
        if task.type == "index":
            workspace, stats = await self._update(task, reporter, bool(payload.get("rebuild")))
            await reporter.progress(
                f"searchable (keywords) after {stats.sparse_seconds:.1f}s; "
                "filling semantic vectors",
                50,
            )
            await self._follow_fill(task, reporter, workspace)
            await asyncio.to_thread(workspace.index.optimize)
            cover = workspace.index.coverage()
            stats.points, stats.dense_points = cover.points, cover.dense_points
            return {"stats": stats.as_dict(), "summary": summarize(stats)}
        if task.type != "research":
            raise WorkerError(f"the research role does not run {task.type!r} tasks")
        question = str(payload.get("question") or "").strip()
        if not question:
            raise WorkerError("a research task needs a non-empty question")
        top_k = payload.get("top_k", DEFAULT_TOP_K)
        if isinstance(top_k, bool) or not isinstance(top_k, int) or not 1 <= top_k <= 50:
            raise WorkerError(f"top_k must be an integer from 1 to 50, got {top_k!r}")
        started = time.perf_counter()
        # The chat model loads and reads the prompt's fixed head while the index is searched.
        warming = asyncio.ensure_future(asyncio.to_thread(self._warm_model))
        workspace, _ = await self._update(task, reporter, False)
        timings: dict[str, Any] = {"update_ms": (time.perf_counter() - started) * 1000}
        with workspace.paused():
            await reporter.progress("searching", 90)
            searched = time.perf_counter()
            hits = await asyncio.to_thread(workspace.index.search, question, top_k)
            timings["search_ms"] = (time.perf_counter() - searched) * 1000
            sources = answer.sources_section(hits)
            # The sources first: where the code is, before the model has said a word.
            await reporter.partial(sources.lstrip() + "\n\n")
            timings["sources_ms"] = (time.perf_counter() - started) * 1000
            timings["warm_tokens"] = await warming
            text, model_name = await self._answer(task, reporter, question, hits, timings, started)
        note = hits.note()
        if note:
            text = f"{text}\n\n{note}"
        return {
            "answer": text + sources,
            "citations": [hit.citation() for hit in hits],
            "model": model_name,
            "coverage": round(hits.coverage, 4),
            "timings": {k: round(v, 1) for k, v in timings.items()},
        }

    def _warm_model(self) -> int:
        """Load the local chat model and evaluate the answers' fixed head (tokens evaluated:
        0 once it is in the model's context). Nothing when the model is not local."""
        try:
            model = self._model or backend.local_chat_model(self.settings)
            warm = getattr(model, "warm_chat", None)
            if warm is None:
                return 0
            return int(warm(answer.head_messages(), answer.SOURCES_START))
        except (ModelError, RuntimeError, ValueError, OSError) as err:
            log.debug("chat model not warmed: %s", err)  # the answer will say what failed
            return 0

    async def _answer(
        self,
        task: TaskRequest,
        reporter: TaskReporter,
        question: str,
        hits: list[Any],
        timings: dict[str, Any],
        started: float,
    ) -> tuple[str, str]:
        if not hits:
            return answer.extractive_answer(question, hits), "none"
        try:
            # Answers come from the local chat model (a research worker needs no big model).
            model = self._model or backend.local_chat_model(self.settings)
        except ModelError as err:
            text = answer.extractive_answer(question, hits) + f"\n\n({err})"
            await reporter.partial(text)
            return text, "none"
        guard = stopping.StopWhenDone()
        stop = asyncio.Event()
        shown = 0  # how much of the answer has been streamed

        async def show(upto: int) -> None:
            nonlocal shown
            if upto > shown:
                timings.setdefault("first_token_ms", (time.perf_counter() - started) * 1000)
                await reporter.partial(guard.raw[shown:upto])
                shown = upto

        async def on_token(piece: str) -> None:
            if stop.is_set():
                return
            if guard.feed(piece):
                stop.set()  # done: the model went on to a new turn or repeats itself
                await show(guard.cut or 0)
                return
            # Whole words only: a word that never ends (a loop inside one word) is never shown.
            await show(max(guard.raw.rfind(" "), guard.raw.rfind("\n")) + 1)

        async def follow_cancel() -> None:
            await task.cancel_event.wait()
            stop.set()

        watcher = asyncio.ensure_future(follow_cancel())
        try:
            generated = await backend.run_chat(
                model,
                answer.build_messages(question, hits),
                # A safety bound only: answers end at the model's end-of-turn or StopWhenDone.
                max_tokens=max(self.settings.models.chat_max_tokens, ANSWER_MAX_TOKENS),
                temperature=self.settings.models.temperature,
                cancel_event=stop,
                on_token=on_token,
                stats=timings,
            )
            text = guard.text if guard.cut is not None else generated
            if guard.cut is None:
                await show(len(guard.raw))  # the last word
        except ModelError as err:
            # Retrieval worked: still answer with where the code is, and say what failed.
            text = answer.extractive_answer(question, hits) + f"\n\n({err})"
            await reporter.partial(text)
            return text, "none"
        finally:
            watcher.cancel()
        if task.cancelled:
            raise WorkerError("research cancelled")
        return answer.resolve_references(text.strip(), hits), model.name


def create(settings: Settings) -> ResearchRole:
    """The registry's entry point: ``swarm_lsp.workers.research.role:create``."""
    return ResearchRole(settings)
