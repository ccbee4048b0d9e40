"""The swarm's commands (``workspace/executeCommand``) and the work behind the code actions.

Commands and arguments (as the VS Code and Neovim clients send them)::

    swarm.ask           [question]                 → {"answer", "citations": [{"path", "line"}]}
    swarm.index         []                              → {"summary", "stats"}
    swarm.refactor      [uri, range, instruction]  → {"applied", "summary", "explanation", "diff"}
    swarm.explain       [uri, range, options?]          → {"markdown", "model"}
    swarm.review        [uri, range, options?]          → {"markdown", "model"}
    swarm.generateTests [uri, range]                    → {"applied", "summary", ...}
    swarm.research      [uri, position, options?]       → {"answer", "citations", "markdown"}
    swarm.runTests      [uri?]                          → {"summary", "passed", "diagnostics"}
    swarm.status        []                              → the ``swarm/status`` object

``options`` is ``{"show": true}`` when a code action runs the command: the Markdown result is
then also opened with ``window/showDocument`` (a code action's command result goes nowhere).
Long work reports ``$/progress`` on the request's workDoneToken (or one the server creates);
``swarm.ask`` streams its answer there as chat does. Edits are offered with
``window/showMessageRequest`` (Apply / Discard) and applied with ``workspace/applyEdit``.
"""

from __future__ import annotations

import contextvars
import dataclasses
import itertools
from collections.abc import Generator
from typing import Any

from lsprotocol import types
from pygls.exceptions import JsonRpcInvalidParams, JsonRpcServerError

from swarm_lsp import paths
from swarm_lsp.errors import SwarmError
from swarm_lsp.server.app import SwarmLanguageServer
from swarm_lsp.server.diagnostics import SwarmDiagnostics
from swarm_lsp.server.progress import ProgressStream
from swarm_lsp.server.swarm_bridge import SwarmBridge
from swarm_lsp.server.swarm_edits import ask_and_apply
from swarm_lsp.server.swarm_tasks import TaskOutcome, run_task
from swarm_lsp.server.task_payloads import (
    document_entry,
    packed_context,
    relative_path,
    selected_text,
    where_tests_go,
    word_at,
    workspace_snapshot,
)

ASK = "swarm.ask"
INDEX = "swarm.index"
REFACTOR = "swarm.refactor"
EXPLAIN = "swarm.explain"
REVIEW = "swarm.review"
GENERATE_TESTS = "swarm.generateTests"
RESEARCH = "swarm.research"
RUN_TESTS = "swarm.runTests"
STATUS = "swarm.status"
COMMANDS = (ASK, INDEX, REFACTOR, EXPLAIN, REVIEW, GENERATE_TESTS, RESEARCH, RUN_TESTS, STATUS)

SERVER_ERROR = -32001
MAX_QUESTION_CHARS = 8000

# The workDoneToken of the executeCommand request being handled (pygls passes commands only
# their arguments; see ``capture_work_done_tokens``).
_WORK_DONE_TOKEN: contextvars.ContextVar[Any] = contextvars.ContextVar(
    "swarm_work_done_token", default=None
)


# -- arguments ---------------------------------------------------------------------------------


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


def _get(value: Any, name: str) -> Any:
    if isinstance(value, dict):
        return value.get(name)
    return getattr(value, name, None)


def parse_uri(command: str, value: Any) -> str:
    if not isinstance(value, str) or ("://" not in value and not value.startswith("untitled:")):
        raise JsonRpcInvalidParams(
            f"{command}: the first argument must be a document URI, got {value!r}"
        )
    return value


def parse_position(command: str, value: Any) -> tuple[int, int]:
    line, character = _get(value, "line"), _get(value, "character")
    if not all(
        isinstance(v, int) and not isinstance(v, bool) and v >= 0 for v in (line, character)
    ):
        raise JsonRpcInvalidParams(
            f"{command}: a position must be {{line, character}} with integers >= 0, got {value!r}"
        )
    return line, character


def parse_range(command: str, value: Any) -> Span:
    start, end = _get(value, "start"), _get(value, "end")
    if start is None or end is None:
        raise JsonRpcInvalidParams(f"{command}: a range must be {{start, end}}, got {value!r}")
    (sl, sc), (el, ec) = parse_position(command, start), parse_position(command, end)
    if (el, ec) < (sl, sc):
        raise JsonRpcInvalidParams(f"{command}: the range ends before it starts: {value!r}")
    return Span(sl, sc, el, ec)


def _options(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _expect(command: str, args: tuple[Any, ...], low: int, high: int, usage: str) -> None:
    if not low <= len(args) <= high:
        raise JsonRpcInvalidParams(f"{command}: expected arguments {usage}, got {len(args)}")


def _fail(err: Exception) -> JsonRpcServerError:
    return JsonRpcServerError(str(err), SERVER_ERROR)


# -- the work ----------------------------------------------------------------------------------


class SwarmActions:
    """What each command and code action does; handlers only parse arguments and call these."""

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
    def _target(self, uri: str, span: Span) -> tuple[dict[str, Any], dict[str, Any]]:
        try:
            document = document_entry(self.ls, uri)
        except SwarmError as err:
            raise JsonRpcInvalidParams(str(err)) from err
        target = {"path": document["path"], "range": span.as_json()}
        return document, target

    def _root_payload(self) -> dict[str, Any]:
        return {"root": str(self.ls.workspace_root)} if self.ls.workspace_root else {}

    async def _snapshot(self) -> dict[str, bytes] | None:
        import asyncio

        from swarm_lsp.server.task_payloads import open_overlay

        root = self.ls.workspace_root
        if root is None:
            return None
        return await asyncio.to_thread(workspace_snapshot, root, open_overlay(self.ls))

    async def show_markdown(self, kind: str, text: str) -> None:
        """Open a Markdown result in the editor (``window/showDocument``)."""
        root = self.ls.workspace_root
        folder = (paths.workspace_cache_dir(root) if root else paths.user_cache_dir()) / "results"
        folder.mkdir(parents=True, exist_ok=True)
        file = folder / f"{kind}-{next(self._results)}.md"
        file.write_text(text, encoding="utf-8")
        try:
            await self.ls.window_show_document_async(
                types.ShowDocumentParams(uri=file.as_uri(), take_focus=True)
            )
        except Exception as err:  # older clients: the text still goes to the log
            self.ls.log(f"swarm: could not show {file}: {err!r}\n{text}")

    # Edits ---------------------------------------------------------------------------------
    async def compute_refactor(
        self,
        uri: str,
        span: Span,
        instruction: str,
        progress: ProgressStream,
        *,
        extra_docs: list[dict[str, Any]] | None = None,
    ) -> tuple[dict[str, Any], dict[str, tuple[str, int | None]]]:
        """Run a refactor task; (worker result, uri → (text, version) sent)."""
        document, target = self._target(uri, span)
        documents = [document, *(extra_docs or [])]
        lines = span.last_line - span.start_line + 1
        payload = {
            "instruction": instruction,
            "documents": documents,
            "target": target,
            "context": packed_context(self.ls, uri, span.start_line, span.start_character),
        }
        outcome = await run_task(
            self.ls,
            self.bridge,
            "refactor",
            payload,
            progress,
            priority="background",
            complexity="simple" if lines <= 40 else "complex",
        )
        sent = {d["uri"]: (d["text"], d["version"]) for d in documents}
        return outcome.data, sent

    async def refactor(
        self,
        uri: str,
        span: Span,
        instruction: str,
        token: Any,
        label: str = "Refactor",
        extra_docs: list[dict[str, Any]] | None = None,
    ) -> dict[str, Any]:
        progress = await ProgressStream.open(self.ls, token, f"Swarm: {label}")
        try:
            result, sent = await self.compute_refactor(
                uri, span, instruction, progress, extra_docs=extra_docs
            )
        except SwarmError as err:
            progress.end(f"failed: {err}")
            raise _fail(err) from err
        except BaseException:
            progress.end("stopped")
            raise
        progress.end("ready")
        explanation = str(result.get("explanation") or "")
        answer = await ask_and_apply(self.ls, result.get("edit") or {}, sent, label, explanation)
        return {**answer, "explanation": explanation, "diff": result.get("diff", "")}

    async def generate_tests(self, uri: str, span: Span, token: Any) -> dict[str, Any]:
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
        result = await self.refactor(uri, span, instruction, token, "Generate tests", extra)
        return {**result, "file": test_rel}

    # Answers -------------------------------------------------------------------------------
    async def explain(
        self, kind: str, uri: str, span: Span, token: Any, show: bool
    ) -> dict[str, Any]:
        document, target = self._target(uri, span)
        code = selected_text(document["text"], span.start_line, span.last_line)
        payload = {
            "documents": [document],
            "target": target,
            "context": packed_context(self.ls, uri, span.start_line, span.start_character),
        }
        title = "Explain" if kind == "explain" else "Review"
        progress = await ProgressStream.open(self.ls, token, f"Swarm: {title}")

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

        try:
            outcome = await run_task(self.ls, self.bridge, kind, payload, progress, local=local)
        except SwarmError as err:
            progress.end(f"failed: {err}")
            raise _fail(err) from err
        except BaseException:
            progress.end("stopped")
            raise
        progress.end("done")
        markdown = str(outcome.data.get("markdown") or "")
        result = {
            "markdown": markdown,
            "model": outcome.data.get("model", ""),
            "local": outcome.local,
        }
        if show:
            await self.show_markdown(kind, f"# Swarm: {title} — {document['path']}\n\n{markdown}\n")
        return result

    async def _research(
        self, question: str, token: Any, title: str, stream: bool, context_hint: str = ""
    ) -> tuple[dict[str, Any], TaskOutcome]:
        progress = await ProgressStream.open(self.ls, token, title)

        async def local(p: ProgressStream) -> dict[str, Any]:
            prompt = f"{context_hint}\n\n{question}".strip()
            return {
                "answer": await self._local_chat(prompt, p, stream),
                "citations": [],
                "model": self._model_name(),
            }

        try:
            outcome = await run_task(
                self.ls,
                self.bridge,
                "research",
                {"question": question, "top_k": 5, **self._root_payload()},
                progress,
                snapshot=await self._snapshot(),
                local=local,
                stream_partials=stream,
            )
        except SwarmError as err:
            progress.end(f"failed: {err}")
            raise _fail(err) from err
        except BaseException:
            progress.end("stopped")
            raise
        progress.loop.call_soon(progress.end)
        citations = [
            {"path": str(c.get("path")), "line": int(c.get("line") or 1)}
            for c in outcome.data.get("citations") or []
            if isinstance(c, dict) and c.get("path")
        ]
        answer = str(outcome.data.get("answer") or "")
        return {
            "answer": answer,
            "citations": citations,
            "model": outcome.data.get("model", ""),
            "local": outcome.local,
        }, outcome

    async def ask(self, question: str, token: Any) -> dict[str, Any]:
        result, _ = await self._research(question, token, "Swarm: Ask", stream=True)
        return result

    async def research_symbol(
        self, uri: str, line: int, character: int, token: Any, show: bool
    ) -> dict[str, Any]:
        try:
            document = document_entry(self.ls, uri)
        except SwarmError as err:
            raise JsonRpcInvalidParams(str(err)) from err
        symbol = word_at(document["text"], line, character)
        if not symbol:
            raise JsonRpcInvalidParams(
                f"{RESEARCH}: no symbol at line {line + 1}, column {character + 1}"
            )
        question = f"What is `{symbol}`, what does it do, and where is it defined and used?"
        nearby = selected_text(document["text"], max(line - 5, 0), line + 5)
        hint = f"In {document['path']} near line {line + 1}:\n```\n{nearby}\n```"
        result, _ = await self._research(
            question, token, f"Swarm: Research {symbol}", stream=False, context_hint=hint
        )
        result["symbol"] = symbol
        result["markdown"] = result["answer"]
        if show:
            await self.show_markdown(
                "research", f"# Swarm: Research `{symbol}`\n\n{result['answer']}\n"
            )
        return result

    async def index(self, token: Any) -> dict[str, Any]:
        progress = await ProgressStream.open(self.ls, token, "Swarm: indexing for research")
        try:
            snapshot = await self._snapshot()
            try:
                outcome = await run_task(
                    self.ls,
                    self.bridge,
                    "index",
                    self._root_payload(),
                    progress,
                    priority="background",
                    snapshot=snapshot,
                )
            except SwarmError as err:
                if "unknown task type 'index'" not in str(err):
                    raise
                # A routing table without an ``index`` type: a research task brings the
                # index up to date before it answers, so one small question does the job.
                self.ls.log("swarm: the routing table has no 'index' type; indexing via research")
                outcome = await run_task(
                    self.ls,
                    self.bridge,
                    "research",
                    {"question": "What does this workspace contain?", "top_k": 1}
                    | self._root_payload(),
                    progress,
                    priority="background",
                    snapshot=snapshot,
                )
                outcome.data = {
                    "summary": "indexed (through a research task: the routing table has no "
                    "'index' task type)",
                    "stats": {},
                }
        except SwarmError as err:
            progress.end(f"failed: {err}")
            raise _fail(err) from err
        except BaseException:
            progress.end("stopped")
            raise
        summary = str(outcome.data.get("summary") or "indexed")
        progress.end(summary)
        return {"summary": summary, "stats": outcome.data.get("stats", {})}

    async def run_tests(self, token: Any) -> dict[str, Any]:
        try:
            return await self.diagnostics.run_tests(token)
        except SwarmError as err:
            raise _fail(err) from err


# -- registration ------------------------------------------------------------------------------


def capture_work_done_tokens(server: SwarmLanguageServer) -> None:
    """Make the executeCommand request's workDoneToken visible to our command handlers.

    pygls hands command handlers only the arguments; this wraps its builtin executeCommand
    handler (a generator, so the wrapper is one too) to record the token in a context variable
    just before it calls the handler, whose task inherits that context.
    """
    features = server.protocol.fm.builtin_features
    original = features.get(types.WORKSPACE_EXECUTE_COMMAND)
    if original is None:  # pragma: no cover - pygls always has it
        return

    def execute_command(params: types.ExecuteCommandParams) -> Generator[Any, Any, Any]:
        _WORK_DONE_TOKEN.set(params.work_done_token)
        result = yield from original(params)
        return result

    features[types.WORKSPACE_EXECUTE_COMMAND] = execute_command


def register_commands(server: SwarmLanguageServer, actions: SwarmActions) -> None:
    capture_work_done_tokens(server)

    @server.command(ASK)
    async def ask(ls: SwarmLanguageServer, *args: Any) -> dict[str, Any]:
        _expect(ASK, args, 1, 1, "[question]")
        question = args[0]
        if not isinstance(question, str) or not question.strip():
            raise JsonRpcInvalidParams(f"{ASK}: the question must be a non-empty string")
        if len(question) > MAX_QUESTION_CHARS:
            raise JsonRpcInvalidParams(
                f"{ASK}: the question is over {MAX_QUESTION_CHARS} characters"
            )
        return await actions.ask(question.strip(), _WORK_DONE_TOKEN.get())

    @server.command(INDEX)
    async def index(ls: SwarmLanguageServer, *args: Any) -> dict[str, Any]:
        _expect(INDEX, args, 0, 1, "[]")
        return await actions.index(_WORK_DONE_TOKEN.get())

    @server.command(REFACTOR)
    async def refactor(ls: SwarmLanguageServer, *args: Any) -> dict[str, Any]:
        usage = "[uri, range, instruction]"
        _expect(REFACTOR, args, 3, 3, usage)
        uri, span = parse_uri(REFACTOR, args[0]), parse_range(REFACTOR, args[1])
        instruction = args[2]
        if not isinstance(instruction, str) or not instruction.strip():
            raise JsonRpcInvalidParams(f"{REFACTOR}: the instruction must be a non-empty string")
        return await actions.refactor(uri, span, instruction.strip(), _WORK_DONE_TOKEN.get())

    def explain_like(kind: str, command: str) -> Any:
        async def handler(ls: SwarmLanguageServer, *args: Any) -> dict[str, Any]:
            _expect(command, args, 2, 3, "[uri, range]")
            uri, span = parse_uri(command, args[0]), parse_range(command, args[1])
            show = bool(_options(args[2] if len(args) > 2 else None).get("show"))
            return await actions.explain(kind, uri, span, _WORK_DONE_TOKEN.get(), show)

        return handler

    server.command(EXPLAIN)(explain_like("explain", EXPLAIN))
    server.command(REVIEW)(explain_like("review", REVIEW))

    @server.command(GENERATE_TESTS)
    async def generate_tests(ls: SwarmLanguageServer, *args: Any) -> dict[str, Any]:
        _expect(GENERATE_TESTS, args, 2, 3, "[uri, range]")
        uri, span = parse_uri(GENERATE_TESTS, args[0]), parse_range(GENERATE_TESTS, args[1])
        return await actions.generate_tests(uri, span, _WORK_DONE_TOKEN.get())

    @server.command(RESEARCH)
    async def research(ls: SwarmLanguageServer, *args: Any) -> dict[str, Any]:
        _expect(RESEARCH, args, 2, 3, "[uri, position]")
        uri = parse_uri(RESEARCH, args[0])
        line, character = parse_position(RESEARCH, args[1])
        show = bool(_options(args[2] if len(args) > 2 else None).get("show"))
        return await actions.research_symbol(uri, line, character, _WORK_DONE_TOKEN.get(), show)

    @server.command(RUN_TESTS)
    async def run_tests(ls: SwarmLanguageServer, *args: Any) -> dict[str, Any]:
        _expect(RUN_TESTS, args, 0, 1, "[uri?]")
        if args and args[0] is not None:
            parse_uri(RUN_TESTS, args[0])
        return await actions.run_tests(_WORK_DONE_TOKEN.get())

    @server.command(STATUS)
    async def status(ls: SwarmLanguageServer, *args: Any) -> dict[str, Any]:
        _expect(STATUS, args, 0, 0, "[]")
        return await actions.bridge.refresh()
