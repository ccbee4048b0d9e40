"""The research role: index a workspace and answer questions about it with citations.

Task types ``index`` and ``research``. The workspace is ``task.snapshot_dir`` (files sent with
the task) or, for a worker on the same machine, ``payload["root"]``.

``index`` payload: ``{"root"?: str, "rebuild"?: bool}`` → ``{"stats": {...}, "summary"}``
(files seen / indexed / unchanged / removed, chunks, points, skipped files with reasons).

With a snapshot, ``root`` (the client's workspace path) names the index so the next task of
the same workspace finds it again.

``explain`` (the shipped routing table sends it here) runs the refactor role's explain.

``research`` payload: ``{"question": str, "root"?: str, "top_k"?: int (default 5)}`` →
``{"answer": markdown, "citations": [{"path", "line", "end_line", "symbol", "score"}],
"model": name}``. Lines in citations are 1-based (``path:line`` as people write it). The
index is brought up to date first (only changed files are re-embedded), then the hybrid search
runs, then the local chat model answers; its tokens stream as partial results and the answer
always ends with the list of sources.
"""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path
from typing import Any

from swarm_lsp.config import Settings
from swarm_lsp.errors import ModelError, WorkerError
from swarm_lsp.workers.base import TaskReporter, TaskRequest
from swarm_lsp.workers.refactor import backend
from swarm_lsp.workers.research import answer
from swarm_lsp.workers.research.index import IndexStats, WorkspaceIndex

DEFAULT_TOP_K = 5


def summarize(stats: IndexStats) -> str:
    text = (
        f"{stats.files_seen} files: {stats.files_indexed} indexed, "
        f"{stats.files_unchanged} unchanged, {stats.files_removed} removed, "
        f"{len(stats.skipped)} skipped; {stats.chunks} chunks written, "
        f"{stats.points} in the index ({stats.seconds:.1f}s)"
    )
    for warning in stats.warnings:
        text += f"\nwarning: {warning}"
    return text


class ResearchRole:
    """Runs ``index`` and ``research`` tasks."""

    role = "research"
    task_types: tuple[str, ...] = ("research", "index", "explain")

    def __init__(self, settings: Settings, *, model: backend.ChatModel | None = None) -> None:
        self.settings = settings
        self._model = model

    def _root(self, task: TaskRequest) -> Path:
        if task.snapshot_dir is not None:
            return task.snapshot_dir
        root = task.payload.get("root")
        if not root:
            raise WorkerError("a research task needs the workspace: no snapshot or root was sent")
        return Path(str(root))

    async def _update(
        self, task: TaskRequest, reporter: TaskReporter, rebuild: bool
    ) -> tuple[WorkspaceIndex, IndexStats]:
        root = self._root(task)
        identity = None
        if task.snapshot_dir is not None:
            # Snapshot folders are new for every task: name the index by the client's
            # workspace so it is reused (and only changed files are embedded again).
            identity = str(task.payload.get("root") or "swarm-snapshot")
        index = await asyncio.to_thread(WorkspaceIndex, root, self.settings, identity=identity)
        loop = asyncio.get_running_loop()
        stop = threading.Event()
        last = [-1]

        def progress(done: int, total: int, rel: str) -> None:
            pct = int(done * 100 / max(total, 1))
            if pct != last[0] and pct % 5 == 0:
                last[0] = pct
                asyncio.run_coroutine_threadsafe(reporter.progress(f"indexing {rel}", pct), loop)

        async def watch() -> None:
            await task.cancel_event.wait()
            stop.set()

        watcher = asyncio.ensure_future(watch())
        try:
            stats = await asyncio.to_thread(
                index.update, rebuild=rebuild, progress=progress, cancel=stop
            )
        except BaseException:
            await asyncio.to_thread(index.close)
            raise
        finally:
            watcher.cancel()
        return index, stats

    async def run(self, task: TaskRequest, reporter: TaskReporter) -> dict[str, Any]:
        payload = task.payload or {}
        if task.type == "explain":
            # The shipped routing table sends ``explain`` to research workers; the refactor
            # role's explain runs here with the same chat model.
            from swarm_lsp.workers.refactor.role import RefactorRole

            return await RefactorRole(self.settings, model=self._model).run(task, reporter)
        if task.type == "index":
            index, stats = await self._update(task, reporter, bool(payload.get("rebuild")))
            await asyncio.to_thread(index.close)
            return {"stats": stats.as_dict(), "summary": summarize(stats)}
        if task.type != "research":
            raise WorkerError(f"the research role does not run {task.type!r} tasks")
        question = str(payload.get("question") or "").strip()
        if not question:
            raise WorkerError("a research task needs a non-empty question")
        top_k = payload.get("top_k", DEFAULT_TOP_K)
        if isinstance(top_k, bool) or not isinstance(top_k, int) or not 1 <= top_k <= 50:
            raise WorkerError(f"top_k must be an integer from 1 to 50, got {top_k!r}")
        index, _ = await self._update(task, reporter, False)
        try:
            await reporter.progress("searching", 90)
            hits = await asyncio.to_thread(index.search, question, top_k)
        finally:
            await asyncio.to_thread(index.close)
        text, model_name = await self._answer(task, reporter, question, hits)
        sources = answer.sources_section(hits)
        await reporter.partial(sources)
        return {
            "answer": text + sources,
            "citations": [hit.citation() for hit in hits],
            "model": model_name,
        }

    async def _answer(
        self, task: TaskRequest, reporter: TaskReporter, question: str, hits: list[Any]
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
        try:
            text = await backend.run_chat(
                model,
                answer.build_messages(question, hits),
                max_tokens=self.settings.models.chat_max_tokens,
                temperature=self.settings.models.temperature,
                cancel_event=task.cancel_event,
                on_token=reporter.partial,
            )
        except ModelError as err:
            # Retrieval worked: still answer with where the code is, and say what failed.
            text = answer.extractive_answer(question, hits) + f"\n\n({err})"
            await reporter.partial(text)
            return text, "none"
        if task.cancelled:
            raise WorkerError("research cancelled")
        return answer.resolve_references(text.strip(), hits), model.name


def create(settings: Settings) -> ResearchRole:
    """The registry's entry point: ``swarm_lsp.workers.research.role:create``."""
    return ResearchRole(settings)
