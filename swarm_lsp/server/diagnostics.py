"""Diagnostics from test and quality runs: published per file with source ``swarm``.

We own every diagnostic we publish and merge them with nothing: each run replaces the last
for every file it or the previous run mentioned, so a fixed failure disappears (its file gets
an empty list). Runs start on save (debounced, only when a test worker or the coordinator's
local fallback can run tests) and on demand (``swarm.runTests``).
"""

from __future__ import annotations

import asyncio
import contextlib
import re
from pathlib import Path
from typing import Any

from lsprotocol import types

from swarm_lsp.context.documents import path_to_uri, uri_to_path
from swarm_lsp.errors import SwarmError
from swarm_lsp.server.app import SwarmLanguageServer
from swarm_lsp.server.progress import ProgressStream
from swarm_lsp.server.swarm_bridge import SwarmBridge
from swarm_lsp.server.swarm_tasks import run_task
from swarm_lsp.server.task_payloads import open_overlay, workspace_snapshot
from swarm_lsp.tasks import TestPayload

SOURCE = "swarm"
SAVE_DEBOUNCE_S = 1.5
_SEVERITY = {
    "error": types.DiagnosticSeverity.Error,
    "warning": types.DiagnosticSeverity.Warning,
    "information": types.DiagnosticSeverity.Information,
    "info": types.DiagnosticSeverity.Information,
    "hint": types.DiagnosticSeverity.Hint,
}


def group_by_file(root: Path, found: list[dict[str, Any]]) -> dict[str, list[types.Diagnostic]]:
    """Worker diagnostics (relative paths, 0-based lines) as LSP diagnostics per file URI."""
    by_uri: dict[str, list[types.Diagnostic]] = {}
    for item in found:
        if not isinstance(item, dict) or not isinstance(item.get("path"), str):
            continue
        file = (root / item["path"]).resolve()
        if not file.is_relative_to(root.resolve()):
            continue  # a path that escapes the workspace is never shown
        line = max(int(item.get("line") or 0), 0)
        end_line = max(int(item.get("end_line") or line), line)
        character = max(int(item.get("character") or 0), 0)
        end_character = 0 if end_line > line else 10_000  # to the end of the line
        code = item.get("code")
        related = [r for r in _related(root, item.get("related")) if r is not None]
        by_uri.setdefault(path_to_uri(file), []).append(
            types.Diagnostic(
                range=types.Range(
                    start=types.Position(line=line, character=character),
                    end=types.Position(line=end_line, character=end_character),
                ),
                message=str(item.get("message") or "(no message)"),
                severity=_SEVERITY.get(str(item.get("severity")), types.DiagnosticSeverity.Error),
                source=SOURCE,
                code=str(code) if code else None,
                related_information=related or None,
            )
        )
    return by_uri


def _related(root: Path, found: Any) -> list[types.DiagnosticRelatedInformation | None]:
    """A worker diagnostic's ``related`` entries ({path, line, message}) as LSP related info."""
    if not isinstance(found, list):
        return []
    out: list[types.DiagnosticRelatedInformation | None] = []
    for item in found:
        if not isinstance(item, dict) or not isinstance(item.get("path"), str):
            continue
        file = (root / item["path"]).resolve()
        if not file.is_relative_to(root.resolve()):
            continue
        line = max(int(item.get("line") or 0), 0)
        out.append(
            types.DiagnosticRelatedInformation(
                location=types.Location(
                    uri=path_to_uri(file),
                    range=types.Range(
                        start=types.Position(line=line, character=0),
                        end=types.Position(line=line, character=10_000),
                    ),
                ),
                message=str(item.get("message") or "related"),
            )
        )
    return out


def _cause(message: str) -> str:
    """A failure message without what changes from run to run (worker, ids, folders, numbers)."""
    text = re.sub(r"^\w+ task failed on [^:]+: ", "", message)
    text = re.sub(r"\bin \S+?:", "in …:", text)
    return re.sub(r"[0-9a-f]{6,}|\d+", "#", text)


class SwarmDiagnostics:
    """Test runs and the diagnostics they publish."""

    def __init__(self, ls: SwarmLanguageServer, bridge: SwarmBridge) -> None:
        self.ls = ls
        self.bridge = bridge
        self.published: set[str] = set()
        self._debounce: asyncio.TimerHandle | None = None
        self._running: asyncio.Task[dict[str, Any]] | None = None
        self._again = False
        self._told: set[str] = set()  # causes of failed save-time runs the user has been shown

    def publish(self, result: dict[str, Any]) -> int:
        """Replace our diagnostics with ``result``'s; the number published."""
        root = self.ls.workspace_root
        found = result.get("diagnostics") or []
        by_uri = group_by_file(root, found) if root is not None else {}
        for uri in self.published - set(by_uri):
            self.ls.text_document_publish_diagnostics(
                types.PublishDiagnosticsParams(uri=uri, diagnostics=[])
            )
        for uri, diagnostics in by_uri.items():
            version = None
            doc = self.ls.workspace.text_documents.get(uri)
            if doc is not None:
                version = doc.version
            self.ls.text_document_publish_diagnostics(
                types.PublishDiagnosticsParams(uri=uri, diagnostics=diagnostics, version=version)
            )
        self.published = set(by_uri)
        return sum(len(d) for d in by_uri.values())

    async def run_tests(
        self, token: Any = None, kind: str = "test", progress: ProgressStream | None = None
    ) -> dict[str, Any]:
        """One test run over a snapshot of the workspace (with unsaved text), then publish.

        With ``progress`` the caller owns the progress (and ends it); otherwise the run opens
        its own on ``token`` (or one it creates).
        """
        root = self.ls.workspace_root
        if root is None:
            raise SwarmError("running tests needs a workspace folder")
        own = progress is None
        if progress is None:
            progress = await ProgressStream.open(self.ls, token, "Swarm: running tests")
        try:
            files = await asyncio.to_thread(workspace_snapshot, root, open_overlay(self.ls))

            async def run(which: str) -> Any:
                return await run_task(
                    self.ls,
                    self.bridge,
                    "test",
                    TestPayload(kind=which, root=str(root)).to_json(),
                    progress,
                    priority="background",
                    snapshot=files,
                )

            outcome: Any
            quality: Any
            if kind == "test":
                # Quality findings (ruff, tree-sitter metrics) ride along with every test run,
                # so one publish carries both and neither clears the other's diagnostics.
                outcome, quality = await asyncio.gather(
                    run("test"), run("quality"), return_exceptions=True
                )
                if isinstance(outcome, BaseException):
                    raise outcome
            else:
                outcome, quality = await run(kind), None
        except BaseException:
            if own:
                progress.end("test run failed")
            raise
        result = dict(outcome.data)
        if quality is not None and not isinstance(quality, BaseException):
            found = list(quality.data.get("diagnostics") or [])
            result["diagnostics"] = [*(result.get("diagnostics") or []), *found]
            result["quality"] = str(quality.data.get("summary") or f"{len(found)} findings")
        elif isinstance(quality, BaseException):
            self.ls.log(f"swarm: quality run failed: {quality}", types.MessageType.Warning)
        count = self.publish(result)
        summary = str(result.get("summary") or ("passed" if result.get("passed") else "failed"))
        if own:
            progress.end(summary)
        else:
            progress.report(summary)
        return {
            "summary": summary,
            "passed": bool(result.get("passed")),
            "diagnostics": count,
            "files": sorted(self.published),
            "taskId": outcome.task_id,
            "quality": result.get("quality"),
        }

    # -- on save ---------------------------------------------------------------------------
    def can_run_tests(self) -> bool:
        return "test" in self.bridge.roles()

    def on_save(self, uri: str) -> None:
        root = self.ls.workspace_root
        path = uri_to_path(uri)
        if root is None or path is None:
            return
        with contextlib.suppress(ValueError):
            Path(path).resolve().relative_to(root.resolve())
            if not self.can_run_tests():
                return
            if self._debounce is not None:
                self._debounce.cancel()
            loop = asyncio.get_running_loop()
            self._debounce = loop.call_later(SAVE_DEBOUNCE_S, self._start_saved_run)

    def _start_saved_run(self) -> None:
        self._debounce = None
        if self._running is not None and not self._running.done():
            self._again = True  # one more run after this one, with the newest files
            return
        self._running = self.ls.spawn(self._saved_run())

    async def _saved_run(self) -> dict[str, Any]:
        try:
            result = await self.run_tests()
            self.ls.log(f"swarm: tests after save: {result['summary']}")
            return result
        except SwarmError as err:
            self.ls.log(f"swarm: tests after save failed: {err}", types.MessageType.Warning)
            self._tell_once(err)
            return {}
        finally:
            if self._again:
                self._again = False
                self._running = None
                self._start_saved_run()

    def _tell_once(self, err: SwarmError) -> None:
        """Show why a save-time run could not run, once per cause per session.

        Nobody asked for that run, so its failure would otherwise reach only the log; the same
        cause after every save would be noise, so each is shown once.
        """
        cause = _cause(str(err))
        if cause in self._told:
            return
        self._told.add(cause)
        self.ls.window_show_message(
            types.ShowMessageParams(
                type=types.MessageType.Warning,
                message=f"Swarm: the tests after saving could not run: {err}",
            )
        )

    def cancel(self) -> None:
        if self._debounce is not None:
            self._debounce.cancel()
