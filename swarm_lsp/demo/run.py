"""``swarm-lsp demo``: a real LSP session against the bundled sample project.

It starts ``swarm-lsp serve`` exactly as an editor would (a child process speaking LSP over
stdio), opens a copy of ``sample_project``, types like a person, and prints what an editor
would show: a completion, an inline completion and a streamed chat answer, with timings, then
the swarm's work (see ``swarm_steps``).
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

SAMPLE = Path(__file__).resolve().parent / "sample_project"

TYPED = (
    "\n\ndef total_area(radii: list[float]) -> float:\n"
    '    """Sum the areas of circles with the given radii."""\n'
    "    total = 0.0\n"
    "    for radius in radii:\n"
    "        total += "
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--project", default="", help="a project folder to use instead of the sample"
    )
    parser.add_argument("--no-swarm", action="store_true", help="local core only: no swarm steps")
    parser.add_argument("--max-tokens", type=int, default=32, help="completion length (tokens)")


class Printer:
    """Plain, readable output; streamed text goes out as it arrives."""

    def __init__(self) -> None:
        self.start = time.perf_counter()

    def section(self, title: str) -> None:
        print(f"\n── {title} " + "─" * max(0, 66 - len(title)), flush=True)

    def line(self, text: str = "") -> None:
        print(text, flush=True)

    def stream(self, text: str) -> None:
        sys.stdout.write(text)
        sys.stdout.flush()

    def block(self, text: str, indent: str = "    │ ") -> None:
        for row in text.splitlines() or [""]:
            print(indent + row, flush=True)


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:,.0f} ms"


def _field(value: Any, name: str) -> Any:
    """A field of a JSON object as pygls hands it over (a dict or an attribute object)."""
    if isinstance(value, dict):
        return value.get(name)
    return getattr(value, name, None)


class DemoSession:
    """An LSP client session against ``swarm-lsp serve``, with the handlers an editor has."""

    def __init__(self, root: Path, out: Printer, options: dict[str, Any]) -> None:
        from lsprotocol import types
        from pygls.lsp.client import LanguageClient

        self.root = root
        self.out = out
        self.options = options
        self.client = LanguageClient("swarm-lsp-demo", "0.1")
        self.streams: dict[Any, list[str]] = {}
        self.streaming_to_stdout: set[Any] = set()
        self.diagnostics: dict[str, list[types.Diagnostic]] = {}
        self.status: dict[str, Any] = {}
        self.log: list[str] = []
        self.answers: dict[str, str] = {}  # showMessageRequest title → the action to pick
        self.results: dict[str, Any] = {}  # swarm/result params by task id
        self._register()

    def _register(self) -> None:
        from lsprotocol import types

        client = self.client

        @client.feature(types.WINDOW_WORK_DONE_PROGRESS_CREATE)
        def create(params: types.WorkDoneProgressCreateParams) -> None:
            self.streams.setdefault(params.token, [])

        @client.feature(types.PROGRESS)
        def progress(params: types.ProgressParams) -> None:
            value = params.value
            kind = value.get("kind") if isinstance(value, dict) else getattr(value, "kind", None)
            message = value.get("message") if isinstance(value, dict) else None
            if kind == "report" and message:
                self.streams.setdefault(params.token, []).append(message)
                if params.token in self.streaming_to_stdout:
                    self.out.stream(message)

        @client.feature(types.WINDOW_LOG_MESSAGE)
        def log_message(params: types.LogMessageParams) -> None:
            self.log.append(params.message)

        @client.feature(types.WINDOW_SHOW_MESSAGE)
        def show_message(params: types.ShowMessageParams) -> None:
            self.out.line(f"    [editor message] {params.message}")

        @client.feature(types.WINDOW_SHOW_MESSAGE_REQUEST)
        def show_message_request(
            params: types.ShowMessageRequestParams,
        ) -> types.MessageActionItem | None:
            titles = [a.title for a in params.actions or []]
            pick = next(
                (t for t in titles if t in self.answers.values()), titles[0] if titles else None
            )
            self.out.line(f"    [editor asks] {params.message} {titles} → {pick}")
            return types.MessageActionItem(title=pick) if pick else None

        @client.feature(types.WORKSPACE_APPLY_EDIT)
        def apply_edit(params: types.ApplyWorkspaceEditParams) -> types.ApplyWorkspaceEditResult:
            self.out.line("    [editor] workspace/applyEdit received: applying")
            return types.ApplyWorkspaceEditResult(applied=True)

        @client.feature(types.TEXT_DOCUMENT_PUBLISH_DIAGNOSTICS)
        def diagnostics(params: types.PublishDiagnosticsParams) -> None:
            self.diagnostics[params.uri] = list(params.diagnostics)

        @client.feature("swarm/status")
        def swarm_status(params: Any) -> None:
            self.status = params if isinstance(params, dict) else getattr(params, "__dict__", {})

        @client.feature("swarm/result")
        def swarm_result(params: Any) -> None:
            self.results[_field(params, "taskId")] = params

    async def run_command(self, command: str, *arguments: Any, timeout: float = 900) -> Any:
        """A swarm command to its end: it answers at once, its result comes as swarm/result."""
        import asyncio

        from lsprotocol import types

        answer = await self.client.workspace_execute_command_async(
            types.ExecuteCommandParams(command=command, arguments=list(arguments))
        )
        task_id = _field(answer, "taskId")
        if task_id is None:
            return answer
        deadline = time.monotonic() + timeout
        while task_id not in self.results:
            if time.monotonic() > deadline:
                raise TimeoutError(f"{command}: no result within {timeout:g}s")
            await asyncio.sleep(0.05)
        done = self.results.pop(task_id)
        if not _field(done, "ok"):
            raise RuntimeError(str(_field(done, "error")))
        return _field(done, "result")

    async def start(self) -> types.InitializeResult:  # type: ignore[name-defined]  # noqa: F821
        from lsprotocol import types

        await self.client.start_io(sys.executable, "-m", "swarm_lsp.cli", "serve")
        result = await self.client.initialize_async(
            types.InitializeParams(
                capabilities=types.ClientCapabilities(
                    window=types.WindowClientCapabilities(work_done_progress=True),
                    workspace=types.WorkspaceClientCapabilities(apply_edit=True),
                    text_document=types.TextDocumentClientCapabilities(
                        code_action=types.CodeActionClientCapabilities(
                            resolve_support=types.ClientCodeActionResolveOptions(
                                properties=["edit"]
                            ),
                            data_support=True,
                        ),
                        inline_completion=types.InlineCompletionClientCapabilities(),
                        publish_diagnostics=types.PublishDiagnosticsClientCapabilities(),
                    ),
                ),
                root_uri=self.root.as_uri(),
                workspace_folders=[
                    types.WorkspaceFolder(uri=self.root.as_uri(), name=self.root.name)
                ],
                initialization_options=self.options,
            )
        )
        self.client.initialized(types.InitializedParams())
        return result

    def open(self, rel: str) -> tuple[str, str]:
        from lsprotocol import types

        path = self.root / rel
        text = path.read_text(encoding="utf-8")
        uri = path.as_uri()
        self.client.text_document_did_open(
            types.DidOpenTextDocumentParams(
                text_document=types.TextDocumentItem(
                    uri=uri, language_id="python", version=1, text=text
                )
            )
        )
        return uri, text

    def type_text(self, uri: str, at: tuple[int, int], text: str, version: int) -> None:
        from lsprotocol import types

        pos = types.Position(*at)
        self.client.text_document_did_change(
            types.DidChangeTextDocumentParams(
                text_document=types.VersionedTextDocumentIdentifier(uri=uri, version=version),
                content_changes=[
                    types.TextDocumentContentChangePartial(range=types.Range(pos, pos), text=text)
                ],
            )
        )

    async def stop(self) -> None:
        try:
            await asyncio.wait_for(self.client.shutdown_async(None), timeout=30)
            self.client.exit(None)
        except Exception:  # the server may already be gone; stop() cleans up either way
            pass
        await self.client.stop()


def _end_of(text: str) -> tuple[int, int]:
    lines = text.split("\n")
    return len(lines) - 1, len(lines[-1])


async def local_steps(session: DemoSession, out: Printer) -> None:
    from lsprotocol import types

    uri, text = session.open("shapes/report.py")
    line, _col = _end_of(text.rstrip("\n") + "\n")
    session.type_text(uri, (line, 0), TYPED.lstrip("\n"), 2)
    cursor = _end_of(text.rstrip("\n") + "\n" + TYPED.lstrip("\n"))

    out.section("1. Completion (textDocument/completion)")
    out.line("  typed into shapes/report.py:")
    out.block(TYPED.strip("\n") + "▌")
    params = types.CompletionParams(
        text_document=types.TextDocumentIdentifier(uri=uri), position=types.Position(*cursor)
    )
    start = time.perf_counter()
    completion = await session.client.text_document_completion_async(params)
    took = time.perf_counter() - start
    items = completion.items if isinstance(completion, types.CompletionList) else completion or []
    if items:
        item = items[0]
        new_text = item.text_edit.new_text if item.text_edit else item.insert_text or item.label
        out.line(f"  suggestion ({item.detail}), round trip {_ms(took)}:")
        out.block(new_text)
    else:
        out.line(f"  (no suggestion at this cursor; round trip {_ms(took)})")

    out.section("2. Inline completion (textDocument/inlineCompletion, ghost text)")
    session.type_text(uri, cursor, "area", 3)
    cursor = (cursor[0], cursor[1] + 4)
    out.line("  typed `area` (the KV cache of the previous prompt is reused; the signature of")
    out.line("  area_of_circle from shapes/geometry.py is in the context the server packed)")
    inline = types.InlineCompletionParams(
        text_document=types.TextDocumentIdentifier(uri=uri),
        position=types.Position(*cursor),
        context=types.InlineCompletionContext(
            trigger_kind=types.InlineCompletionTriggerKind.Automatic
        ),
    )
    start = time.perf_counter()
    result = await session.client.text_document_inline_completion_async(inline)
    took = time.perf_counter() - start
    ghost = result.items if isinstance(result, types.InlineCompletionList) else result or []
    if ghost:
        insert = ghost[0].insert_text
        shown = insert if isinstance(insert, str) else insert.value
        out.line(f"  ghost text after `total += area`, round trip {_ms(took)}:")
        out.block(shown)
    else:
        out.line(f"  (no ghost text; round trip {_ms(took)})")

    out.section("3. Chat (swarm/chat, tokens streamed as $/progress)")
    prompt = "In one or two sentences: what does a function that sums circle areas need?"
    out.line(f"  you: {prompt}")
    token = "demo-chat"
    session.streams[token] = []
    session.streaming_to_stdout.add(token)
    out.stream("  swarm-lsp: ")
    start = time.perf_counter()
    answer = await session.client.protocol.send_request_async(
        "swarm/chat", {"prompt": prompt, "workDoneToken": token}
    )
    took = time.perf_counter() - start
    pieces = len(session.streams[token])
    model = getattr(answer, "model", None) or (
        answer.get("model") if isinstance(answer, dict) else "?"
    )
    out.line("")
    out.line(f"  ({pieces} streamed pieces from {model}, {_ms(took)})")


async def swarm_steps(session: DemoSession, out: Printer) -> None:
    """Refactor, research and test work through the local swarm (when the server has them)."""
    from swarm_lsp.demo import swarm_demo

    await swarm_demo.run(session, out)


async def main_async(args: argparse.Namespace) -> int:
    out = Printer()
    source = Path(args.project).resolve() if args.project else SAMPLE
    if not source.is_dir():
        from swarm_lsp.errors import SwarmError

        raise SwarmError(f"project folder {source} does not exist")
    with tempfile.TemporaryDirectory(prefix="swarm-demo-") as tmp:
        root = Path(tmp) / source.name
        shutil.copytree(source, root, ignore=shutil.ignore_patterns(".git", "__pycache__", ".venv"))
        options: dict[str, Any] = {
            "models": {"completionMaxTokens": args.max_tokens, "chatMaxTokens": 96},
            # The demo waits for the refactor's edit however long the local model takes.
            "swarm": {"autostart": not args.no_swarm, "resolveTimeoutMs": 900_000},
        }
        out.line("swarm-lsp demo: a real LSP session, everything on this machine")
        out.line(f"  project: a copy of {source.name} at {root}")
        session = DemoSession(root, out, options)
        start = time.perf_counter()
        init = await session.start()
        info = init.server_info
        out.line(
            f"  server: {info.name if info else '?'} {info.version if info else ''} over stdio, "
            f"initialized in {_ms(time.perf_counter() - start)}"
        )
        try:
            await local_steps(session, out)
            if not args.no_swarm:
                await swarm_steps(session, out)
        finally:
            await session.stop()
        out.section("done")
        out.line(f"  whole session: {_ms(time.perf_counter() - out.start)}")
    return 0


def run(args: argparse.Namespace) -> int:
    return asyncio.run(main_async(args))
