"""What each swarm command and code action does, given a progress stream to report on.

The commands (:mod:`swarm_commands`) validate arguments, then hand one of these coroutines to
the server's :class:`~swarm_lsp.server.jobs.Jobs`, which runs it in the background, owns its
progress and reports its end; nothing here opens or ends a progress.
"""

from __future__ import annotations

import asyncio
import dataclasses
import itertools
from typing import Any

from lsprotocol import types
from pygls.exceptions import JsonRpcInvalidParams

from swarm_lsp import paths
from swarm_lsp.errors import SwarmError
from swarm_lsp.server.app import SwarmLanguageServer
from swarm_lsp.server.diagnostics import SwarmDiagnostics
from swarm_lsp.server.progress import ProgressStream
from swarm_lsp.server.swarm_bridge import SwarmBridge
from swarm_lsp.server.swarm_edits import ask_and_apply
from swarm_lsp.server.swarm_tasks import run_task
from swarm_lsp.server.task_payloads import (
    document_entry,
    open_overlay,
    packed_context,
    relative_path,
    selected_text,
    symbol_at,
    where_tests_go,
    workspace_snapshot,
)
from swarm_lsp.tasks import (
    DocumentEntry,
    ExplainPayload,
    IndexPayload,
    IndexResult,
    MarkdownResult,
    RefactorPayload,
    RefactorResult,
    ResearchPayload,
    ResearchResult,
)

SHOW_DOCUMENT_TIMEOUT_S = 10.0
MESSAGE_EXCERPT_CHARS = 1500


@dataclasses.dataclass(frozen=True)
class Span:
    start_line: int
    start_character: int
    end_line: int
    end_character: int

    def as_json(self) -> dict[str, Any]:
        return {
            "start": {"line": self.start_line, "character": self.start_character},
            "end": {"line": self.end_line, "character": self.end_character},
        }

    @property
    def last_line(self) -> int:
        """Last line the span covers (an end at column 0 of a later line does not count)."""
        if self.end_character == 0 and self.end_line > self.start_line:
            return self.end_line - 1
        return self.end_line


def client_shows_documents(ls: SwarmLanguageServer) -> bool:
    window = ls.client_capabilities.window
    support = window.show_document if window else None
    return bool(support and support.support)


class SwarmActions:
    """The work behind the commands; handlers only parse arguments and start these."""

    def __init__(
        self, ls: SwarmLanguageServer, bridge: SwarmBridge, diagnostics: SwarmDiagnostics
    ) -> None:
        self.ls = ls
        self.bridge = bridge
        self.diagnostics = diagnostics
        self._results = itertools.count(1)

    # Local answers (the seed's fallback 4) ------------------------------------------------
    async def _local_chat(self, prompt: str, progress: ProgressStream, stream: bool) -> str:
        system = "You are a concise coding assistant. Answer in Markdown."
        generation = await self.ls.models.chat(
            [{"role": "system", "content": system}, {"role": "user", "content": prompt}],
            on_token=progress.report_threadsafe if stream else None,
        )
        return str(generation.text).strip()

    def _model_name(self) -> str:
        try:
            return str(self.ls.models.chat_scheduler.engine.name)
        except Exception:
            return "local chat model"

    # Shared pieces -------------------------------------------------------------------------
    def target(self, uri: str, span: Span) -> tuple[dict[str, Any], dict[str, Any]]:
        """(document entry, target) for ``uri``; InvalidParams when it cannot be read."""
        try:
            document = document_entry(self.ls, uri)
        except SwarmError as err:
            raise JsonRpcInvalidParams(str(err)) from err
        target = {"path": document["path"], "range": span.as_json()}
        return document, target

    def _root(self) -> str | None:
        return str(self.ls.workspace_root) if self.ls.workspace_root else None

    def _open_files(self) -> tuple[str, ...]:
        """The open documents inside the workspace, last opened first (the research index
        fills their semantic vectors first)."""
        return tuple(reversed(list(open_overlay(self.ls))))

    async def _snapshot(self) -> dict[str, bytes] | None:
        root = self.ls.workspace_root
        if root is None:
            return None
        return await asyncio.to_thread(workspace_snapshot, root, open_overlay(self.ls))

    async def show_markdown(self, kind: str, title: str, text: str) -> str:
        """Put a Markdown result in front of the user; how it was shown.

        ``window/showDocument`` when the client supports it (and says it worked); otherwise
        (eglot, older clients) ``window/showMessage`` with the file's path and the start of
        the text, the whole text in the log.
        """
        root = self.ls.workspace_root
        folder = (paths.workspace_cache_dir(root) if root else paths.user_cache_dir()) / "results"
        folder.mkdir(parents=True, exist_ok=True)
        file = folder / f"{kind}-{next(self._results)}.md"
        file.write_text(text, encoding="utf-8")
        if client_shows_documents(self.ls):
            try:
                shown = await asyncio.wait_for(
                    self.ls.window_show_document_async(
                        types.ShowDocumentParams(uri=file.as_uri(), take_focus=True)
                    ),
                    timeout=SHOW_DOCUMENT_TIMEOUT_S,
                )
            except (TimeoutError, Exception) as err:  # the fallback below still shows it
                self.ls.log(f"swarm: showDocument {file} failed: {err!r}")
                shown = None
            if getattr(shown, "success", False):
                return "document"
        excerpt = text if len(text) <= MESSAGE_EXCERPT_CHARS else text[:MESSAGE_EXCERPT_CHARS] + "…"
        self.ls.window_show_message(
            types.ShowMessageParams(
                type=types.MessageType.Info, message=f"{title} (full text: {file})\n\n{excerpt}"
            )
        )
        self.ls.log(f"swarm: {title} ({file}):\n{text}")
        return "message"

    # Edits ---------------------------------------------------------------------------------
    async def compute_refactor(
        self,
        uri: str,
        span: Span,
        instruction: str,
        progress: ProgressStream,
        *,
        extra_docs: list[dict[str, Any]] | None = None,
    ) -> tuple[RefactorResult, dict[str, tuple[str, int | None]]]:
        """Run a refactor task; (worker result, uri → (text, version) sent)."""
        document, target = self.target(uri, span)
        documents = [document, *(extra_docs or [])]
        lines = span.last_line - span.start_line + 1
        payload = RefactorPayload(
            instruction=instruction,
            documents=tuple(DocumentEntry.from_json(d) for d in documents),
            target_path=target["path"],
            target_range=target["range"],
            context=packed_context(self.ls, uri, span.start_line, span.start_character),
        )
        outcome = await run_task(
            self.ls,
            self.bridge,
            "refactor",
            payload.to_json(),
            progress,
            priority="background",
            complexity="simple" if lines <= 40 else "complex",
        )
        sent = {d["uri"]: (d["text"], d["version"]) for d in documents}
        return RefactorResult.from_json(outcome.data), sent

    async def apply_refactor(
        self,
        result: RefactorResult,
        sent: dict[str, tuple[str, int | None]],
        label: str,
        progress: ProgressStream,
    ) -> dict[str, Any]:
        """Ask Apply / Discard for a finished refactor and apply it."""
        progress.report("ready: waiting for Apply")
        answer = await ask_and_apply(self.ls, result.edit, sent, label, result.explanation)
        return {**answer, "explanation": result.explanation, "diff": result.diff}

    async def refactor(
        self,
        uri: str,
        span: Span,
        instruction: str,
        progress: ProgressStream,
        label: str = "Refactor",
        extra_docs: list[dict[str, Any]] | None = None,
    ) -> dict[str, Any]:
        result, sent = await self.compute_refactor(
            uri, span, instruction, progress, extra_docs=extra_docs
        )
        return await self.apply_refactor(result, sent, label, progress)

    async def generate_tests(
        self, uri: str, span: Span, progress: ProgressStream
    ) -> dict[str, Any]:
        root = self.ls.workspace_root
        rel = relative_path(self.ls, uri)
        test_rel = where_tests_go(root, rel)
        extra: list[dict[str, Any]] = []
        if test_rel != rel:
            test_uri = (root / test_rel).as_uri() if root else f"file:///{test_rel}"
            try:
                extra.append(document_entry(self.ls, test_uri))
            except SwarmError:
                extra.append({"path": test_rel, "uri": test_uri, "version": None, "text": ""})
        instruction = (
            f"Write focused pytest unit tests for the code in {rel} lines "
            f"{span.start_line + 1}-{span.last_line + 1}. Put them in {test_rel} (import what they "
            "test); change no other file."
        )
        result = await self.refactor(uri, span, instruction, progress, "Generate tests", extra)
        return {**result, "file": test_rel}

    # Answers -------------------------------------------------------------------------------
    async def explain(
        self, kind: str, uri: str, span: Span, progress: ProgressStream, show: bool
    ) -> dict[str, Any]:
        document, target = self.target(uri, span)
        code = selected_text(document["text"], span.start_line, span.last_line)
        payload = ExplainPayload(
            documents=(DocumentEntry.from_json(document),),
            target_path=target["path"],
            target_range=target["range"],
            context=packed_context(self.ls, uri, span.start_line, span.start_character),
        )
        title = "Explain" if kind == "explain" else "Review"

        async def local(p: ProgressStream) -> dict[str, Any]:
            lead = (
                "Explain what this code does."
                if kind == "explain"
                else "Review this code; list problems."
            )
            text = await self._local_chat(
                f"{lead}\n\n{document['path']}:\n```\n{code}\n```", p, False
            )
            return {"markdown": text, "model": self._model_name()}

        outcome = await run_task(
            self.ls, self.bridge, kind, payload.to_json(), progress, local=local
        )
        answer = MarkdownResult.from_json(outcome.data)
        markdown = answer.markdown
        result: dict[str, Any] = {
            "markdown": markdown,
            "model": answer.model,
            "local": outcome.local,
        }
        if show:
            heading = f"Swarm: {title} — {document['path']}"
            result["shown"] = await self.show_markdown(
                kind, heading, f"# {heading}\n\n{markdown}\n"
            )
        return result

    async def _research(
        self, question: str, progress: ProgressStream, stream: bool, context_hint: str = ""
    ) -> dict[str, Any]:
        async def local(p: ProgressStream) -> dict[str, Any]:
            prompt = f"{context_hint}\n\n{question}".strip()
            return {
                "answer": await self._local_chat(prompt, p, stream),
                "citations": [],
                "model": self._model_name(),
            }

        outcome = await run_task(
            self.ls,
            self.bridge,
            "research",
            ResearchPayload(
                question=question, top_k=5, root=self._root(), open_files=self._open_files()
            ).to_json(),
            progress,
            snapshot=await self._snapshot(),
            local=local,
            stream_partials=stream,
        )
        found = ResearchResult.from_json(outcome.data)
        return {
            "answer": found.answer,
            "citations": [c.to_json() for c in found.citations],
            "model": found.model,
            "local": outcome.local,
        }

    async def ask(self, question: str, progress: ProgressStream) -> dict[str, Any]:
        return await self._research(question, progress, stream=True)

    def symbol_question(self, uri: str, line: int, character: int) -> tuple[str, str, str]:
        """(symbol, question, context hint) for "Research this symbol"; InvalidParams if none."""
        try:
            document = document_entry(self.ls, uri)
        except SwarmError as err:
            raise JsonRpcInvalidParams(str(err)) from err
        symbol = symbol_at(document["text"], line, character)
        if not symbol:
            raise JsonRpcInvalidParams(
                f"swarm.research: no symbol at line {line + 1}, column {character + 1}"
            )
        question = f"What is `{symbol}`, what does it do, and where is it defined and used?"
        nearby = selected_text(document["text"], max(line - 5, 0), line + 5)
        hint = f"In {document['path']} near line {line + 1}:\n```\n{nearby}\n```"
        return symbol, question, hint

    async def research_symbol(
        self, symbol: str, question: str, hint: str, progress: ProgressStream, show: bool
    ) -> dict[str, Any]:
        result = await self._research(question, progress, stream=False, context_hint=hint)
        result["symbol"] = symbol
        result["markdown"] = result["answer"]
        if show:
            heading = f"Swarm: Research `{symbol}`"
            result["shown"] = await self.show_markdown(
                "research", heading, f"# {heading}\n\n{result['answer']}\n"
            )
        return result

    async def index(self, progress: ProgressStream) -> dict[str, Any]:
        snapshot = await self._snapshot()
        try:
            outcome = await run_task(
                self.ls,
                self.bridge,
                "index",
                IndexPayload(root=self._root(), open_files=self._open_files()).to_json(),
                progress,
                priority="background",
                snapshot=snapshot,
            )
        except SwarmError as err:
            if "unknown task type 'index'" not in str(err):
                raise
            # A routing table without an ``index`` type: a research task brings the index up
            # to date before it answers, so one small question does the job.
            self.ls.log("swarm: the routing table has no 'index' type; indexing via research")
            outcome = await run_task(
                self.ls,
                self.bridge,
                "research",
                ResearchPayload(
                    question="What does this workspace contain?", top_k=1, root=self._root()
                ).to_json(),
                progress,
                priority="background",
                snapshot=snapshot,
            )
            outcome.data = {
                "summary": "indexed (through a research task: the routing table has no "
                "'index' task type)",
                "stats": {},
            }
        indexed = IndexResult.from_json(outcome.data)
        return {"summary": indexed.summary, "stats": indexed.stats}

    async def run_tests(self, progress: ProgressStream, show: bool) -> dict[str, Any]:
        result = await self.diagnostics.run_tests(progress=progress)
        if show:
            kind = types.MessageType.Info if result["passed"] else types.MessageType.Warning
            self.ls.window_show_message(
                types.ShowMessageParams(type=kind, message=f"Swarm: tests: {result['summary']}")
            )
        return result
