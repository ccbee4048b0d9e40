"""The refactor role: a big model proposes a unified diff, we validate it, the editor gets a
versioned WorkspaceEdit; plus ``explain`` and ``review`` that answer in Markdown.

Task types ``refactor``, ``explain`` and ``review``. Payload (JSON)::

    {
      "instruction": "extract the loop into a helper",
      "documents": [{"path": "pkg/mod.py", "uri": "file:///…/pkg/mod.py", "version": 7,
                     "text": "…exact text of that version…"}],
      "target": {"path": "pkg/mod.py",
                 "range": {"start": {"line": 3, "character": 0},
                           "end": {"line": 9, "character": 0}}},   # 0-based, LSP
      "context": "packed context from the context engine (optional)",
      "max_tokens": 2048,  # optional cap on the model's reply (at most 8192)
      "verify": true       # optional: test the patched snapshot (see below)
    }

When ``documents`` is missing, the target file is read from ``task.snapshot_dir``.

``refactor`` result::

    {"diff": unified diff, "edit": {"documentChanges": [{"textDocument": {"uri", "version"},
     "edits": [TextEdit…]}]}, "explanation": str, "verified": null | {"passed", "summary"},
     "attempts": 1 | 2, "model": name, "files": [paths changed]}

A document sent with ``"version": null`` and empty text is a file that may not exist yet (a test
file to write): the diff may create it (``--- /dev/null``), and the edit starts with a
CreateFile (``ignoreIfExists``) for it.

A diff that fails validation (does not apply to the version sent, adds syntax errors, touches
files out of scope) is sent back to the model once with the error; a second failure raises
:class:`~swarm_lsp.errors.DiffValidationError` with both reasons. When the role was given a
``verify`` callback (the runtime provides one when a test worker is live), the patched files
go through it and ``verified`` says whether the tests still pass. Without a callback, a task
with ``"verify": true`` and a snapshot runs the test role's sandboxed test run on the snapshot
with the patch applied, on this worker.

With no big-model endpoint (``models.endpointUrl`` empty) the in-process model is a small one
that cannot write a diff whose context lines match the file; when the task has a selection it
is asked to rewrite just that selection instead, and the role builds the diff itself. Either
way the diff goes through the same validation. ``"mode": "diff"`` forces the diff prompt.

``explain`` / ``review`` result: ``{"markdown": "… path:line references …", "model": name}``.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from swarm_lsp.config import Settings
from swarm_lsp.errors import DiffValidationError, SwarmError, WorkerError
from swarm_lsp.workers import diffs
from swarm_lsp.workers.base import TaskReporter, TaskRequest
from swarm_lsp.workers.refactor import backend
from swarm_lsp.workers.refactor.validate import Document, validate

Verify = Callable[[dict[str, str]], Awaitable[dict[str, Any]]]

REFACTOR_SYSTEM = (
    "You are a careful senior engineer. You change code by replying with ONE unified diff in a "
    "```diff fenced block, with '--- a/PATH' and '+++ b/PATH' headers and '@@ -l,n +l,n @@' "
    "hunks with three lines of unchanged context. Context and removed lines must match the "
    "file exactly. Change only the files shown. After the diff, explain the change in one or "
    "two sentences."
)
REWRITE_SYSTEM = (
    "You are a careful senior engineer. Rewrite the code you are given as the instruction asks. "
    "Reply with the complete new version of that code only, in one fenced code block, keeping "
    "its indentation. Then explain the change in one sentence."
)
EXPLAIN_SYSTEM = (
    "You explain code to a colleague. Answer in Markdown. Refer to code as PATH:LINE using the "
    "line numbers shown."
)
REVIEW_SYSTEM = (
    "You review code. List concrete problems and suggestions as Markdown bullets, each starting "
    "with PATH:LINE using the line numbers shown. Say so when the code looks fine."
)
DEFAULT_REFACTOR_TOKENS = 2048
# The in-process fallback is a tiny model: a long reply costs minutes and is no better.
LOCAL_REFACTOR_TOKENS = 512
MAX_REFACTOR_TOKENS = 8192


def _documents(task: TaskRequest) -> dict[str, Document]:
    payload = task.payload
    raw = payload.get("documents")
    documents: dict[str, Document] = {}
    if raw is not None:
        if not isinstance(raw, list):
            raise WorkerError("documents must be a list of {path, uri, version, text}")
        for item in raw:
            if (
                not isinstance(item, dict)
                or not isinstance(item.get("path"), str)
                or not isinstance(item.get("text"), str)
            ):
                raise WorkerError(f"each document needs a path and a text, got {str(item)[:120]!r}")
            path = item["path"].replace("\\", "/").lstrip("/")
            version = item.get("version")
            documents[path] = Document(
                path=path,
                uri=str(item.get("uri") or f"file:///{path}"),
                version=version if isinstance(version, int) else None,
                text=item["text"],
            )
    target = _target(payload)
    if target and target[0] not in documents and task.snapshot_dir is not None:
        root = task.snapshot_dir.resolve()
        file = (root / target[0]).resolve()
        if not file.is_relative_to(root) or not file.is_file():
            raise WorkerError(f"target {target[0]} is not a file in the snapshot")
        documents[target[0]] = Document(
            target[0], file.as_uri(), None, file.read_text(encoding="utf-8")
        )
    if not documents:
        raise WorkerError("a refactor task needs documents (or a target file in the snapshot)")
    return documents


def _target(payload: dict[str, Any]) -> tuple[str, int, int] | None:
    """(path, first line, last line), 0-based inclusive, of the selection, if any."""
    target = payload.get("target")
    if not isinstance(target, dict) or not isinstance(target.get("path"), str):
        return None
    path = target["path"].replace("\\", "/").lstrip("/")
    span = target.get("range") or {}
    try:
        start = int(span["start"]["line"])
        end = int(span["end"]["line"])
        if span["end"].get("character", 0) == 0 and end > start:
            end -= 1
    except (KeyError, TypeError, ValueError):
        return path, 0, -1
    return path, start, end


_FENCE = re.compile(r"```[^\n]*\n(.*?)(?:```|\Z)", re.DOTALL)


def extract_code(reply: str) -> tuple[str, str]:
    """(the first fenced code block, the prose after it); the whole reply when unfenced."""
    match = _FENCE.search(reply)
    if match is None:
        return reply.strip("\n"), ""
    return match.group(1).rstrip("\n"), reply[match.end() :].strip()


def splice_selection(text: str, first: int, last: int, code: str) -> str:
    """``text`` with lines ``first..last`` replaced by ``code``, re-indented to the selection.

    Small models often drop the indentation of a method they rewrite; the selection's own
    indentation is put back when the new code starts at a shallower one.
    """
    lines = text.splitlines(keepends=True)
    old = lines[first : last + 1]
    old_indent = next((len(x) - len(x.lstrip()) for x in old if x.strip()), 0)
    new = code.splitlines()
    new_indent = next((len(x) - len(x.lstrip()) for x in new if x.strip()), 0)
    if new_indent < old_indent:
        pad = " " * (old_indent - new_indent)
        new = [pad + x if x.strip() else x for x in new]
    eol = "\r\n" if old and old[-1].endswith("\r\n") else "\n"
    body = "".join(x + eol for x in new)
    return "".join(lines[:first]) + body + "".join(lines[last + 1 :])


def _numbered(text: str, first: int = 0, last: int | None = None) -> str:
    lines = text.splitlines()
    last = len(lines) - 1 if last is None or last < 0 else min(last, len(lines) - 1)
    return "\n".join(f"{n + 1:>5}| {lines[n]}" for n in range(max(first, 0), last + 1))


class RefactorRole:
    """Runs ``refactor``, ``explain`` and ``review`` tasks with one chat model."""

    role = "refactor"
    task_types: tuple[str, ...] = ("refactor", "explain", "review")

    def __init__(
        self,
        settings: Settings,
        *,
        model: backend.ChatModel | None = None,
        verify: Verify | None = None,
    ) -> None:
        self.settings = settings
        self._model = model
        self.verify = verify

    @property
    def model(self) -> backend.ChatModel:
        if self._model is None:
            self._model = backend.chat_model_for(self.settings)
        return self._model

    async def run(self, task: TaskRequest, reporter: TaskReporter) -> dict[str, Any]:
        if task.type not in self.task_types:
            raise WorkerError(f"the refactor role does not run {task.type!r} tasks")
        documents = _documents(task)
        if task.type == "refactor":
            return await self._refactor(task, reporter, documents)
        return await self._explain(task, reporter, documents)

    async def _ask(
        self,
        task: TaskRequest,
        reporter: TaskReporter,
        messages: list[dict[str, str]],
        max_tokens: int,
    ) -> str:
        text = await backend.run_chat(
            self.model,
            messages,
            max_tokens=max_tokens,
            temperature=0.0,
            cancel_event=task.cancel_event,
            on_token=reporter.partial,
        )
        if task.cancelled:
            raise WorkerError("cancelled")
        return text

    def _refactor_prompt(
        self, task: TaskRequest, documents: dict[str, Document]
    ) -> list[dict[str, str]]:
        payload = task.payload
        instruction = str(payload.get("instruction") or "").strip()
        if not instruction:
            raise WorkerError("a refactor task needs an instruction")
        parts = []
        context = str(payload.get("context") or "").strip()
        if context:
            parts.append(f"Related code from the workspace (read only):\n{context}")
        for document in documents.values():
            parts.append(f"File {document.path}:\n```\n{document.text}\n```")
        target = _target(payload)
        if target is not None and target[0] in documents:
            path, first, last = target
            selected = "\n".join(
                documents[path].text.splitlines()[first : last + 1] if last >= 0 else []
            )
            parts.append(
                f"The change concerns {path} lines {first + 1}-{last + 1}:\n```\n{selected}\n```"
            )
        parts.append(f"Instruction: {instruction}")
        return [
            {"role": "system", "content": REFACTOR_SYSTEM},
            {"role": "user", "content": "\n\n".join(parts)},
        ]

    def _rewrite_prompt(
        self, task: TaskRequest, documents: dict[str, Document], target: tuple[str, int, int]
    ) -> list[dict[str, str]]:
        instruction = str(task.payload.get("instruction") or "").strip()
        if not instruction:
            raise WorkerError("a refactor task needs an instruction")
        path, first, last = target
        selected = "\n".join(documents[path].text.splitlines()[first : last + 1])
        parts = []
        context = str(task.payload.get("context") or "").strip()
        if context:
            parts.append(f"Related code from the workspace (read only):\n{context[:4000]}")
        language = Path(path).suffix.lstrip(".") or "text"
        parts.append(
            f"Code from {path} lines {first + 1}-{last + 1}:\n```{language}\n{selected}\n```"
        )
        parts.append(f"Instruction: {instruction}")
        # Small models follow the last thing they read: end on the shape of the answer.
        parts.append(f"Answer with the rewritten code in one ```{language} block.")
        return [
            {"role": "system", "content": REWRITE_SYSTEM},
            {"role": "user", "content": "\n\n".join(parts)},
        ]

    def _rewrite_target(self, payload: dict[str, Any], documents: dict[str, Document]) -> Any:
        """The selection to rewrite when the model is the small in-process one, else None.

        A small model cannot write a unified diff whose context lines match the file; it can
        rewrite a selection. The role makes the diff itself and validates it the same way.
        """
        if self.settings.models.endpoint_url or payload.get("mode") == "diff":
            return None
        target = _target(payload)
        if target is None or target[0] not in documents or target[2] < target[1]:
            return None
        return target

    async def _refactor(
        self, task: TaskRequest, reporter: TaskReporter, documents: dict[str, Document]
    ) -> dict[str, Any]:
        rewrite = self._rewrite_target(task.payload, documents)
        if rewrite is not None:
            messages = self._rewrite_prompt(task, documents, rewrite)
        else:
            messages = self._refactor_prompt(task, documents)
        default_tokens = (
            DEFAULT_REFACTOR_TOKENS if self.settings.models.endpoint_url else LOCAL_REFACTOR_TOKENS
        )
        max_tokens = task.payload.get("max_tokens", default_tokens)
        if isinstance(max_tokens, bool) or not isinstance(max_tokens, int) or max_tokens < 16:
            raise WorkerError(f"max_tokens must be an integer of at least 16, got {max_tokens!r}")
        max_tokens = min(max_tokens, MAX_REFACTOR_TOKENS)
        errors: list[str] = []
        for attempt in (1, 2):
            what = "a rewrite of the selection" if rewrite is not None else "a diff"
            await reporter.progress(
                f"asking {self.model.name} for {what} (attempt {attempt})", 10 * attempt
            )
            reply = await self._ask(task, reporter, messages, max_tokens)
            if rewrite is not None:
                path, first, last = rewrite
                code, explanation = extract_code(reply)
                old_text = documents[path].text
                diff_text = diffs.unified_diff(
                    path, old_text, splice_selection(old_text, first, last, code)
                )
            else:
                diff_text, explanation = diffs.extract_diff(reply)
            try:
                patched = validate(diff_text, documents)
                if not patched:
                    raise DiffValidationError("the diff changes nothing")
            except DiffValidationError as err:
                errors.append(str(err))
                await reporter.partial("", {"validation_error": str(err), "attempt": attempt})
                messages = [
                    *messages,
                    {"role": "assistant", "content": reply},
                    {
                        "role": "user",
                        "content": (
                            f"Your change was rejected: {err}\n"
                            + (
                                "Reply with the corrected code only, in one fenced block."
                                if rewrite is not None
                                else "Reply with a corrected unified diff against the files "
                                "exactly as shown above, in a ```diff block."
                            )
                        ),
                    },
                ]
                continue
            await reporter.progress("diff validated", 80)
            changes = [
                (documents[path].uri, documents[path].version, documents[path].text, text)
                for path, text in patched.items()
            ]
            result: dict[str, Any] = {
                "diff": "".join(
                    diffs.unified_diff(path, documents[path].text, text)
                    for path, text in patched.items()
                ),
                "edit": diffs.workspace_edit(changes),
                "explanation": explanation or "(the model gave no explanation)",
                "verified": None,
                "attempts": attempt,
                "model": self.model.name,
                "files": sorted(patched),
            }
            verify = self.verify
            if verify is None and task.payload.get("verify") and task.snapshot_dir is not None:
                # No hook from the runtime: run the tests here, sandboxed, on the snapshot.
                from swarm_lsp.workers.testing.role import TestRole

                verify = snapshot_verifier(TestRole(self.settings), task.snapshot_dir)
            if verify is not None:
                await reporter.progress("running the tests on the patched files", 90)
                try:
                    outcome = await verify(patched)
                    result["verified"] = {
                        "passed": bool(outcome.get("passed")),
                        "summary": str(outcome.get("summary", "")),
                    }
                except SwarmError as err:
                    result["verify_error"] = f"could not verify: {err}"
            return result
        raise DiffValidationError(
            f"the model's diff failed validation twice: (1) {errors[0]}; (2) {errors[1]}"
        )

    async def _explain(
        self, task: TaskRequest, reporter: TaskReporter, documents: dict[str, Document]
    ) -> dict[str, Any]:
        payload = task.payload
        target = _target(payload)
        if target is not None and target[0] in documents:
            path, first, last = target
        else:
            path, first, last = next(iter(documents)), 0, -1
        document = documents[path]
        numbered = _numbered(document.text, first, last)
        question = str(payload.get("instruction") or "").strip()
        kind = task.type
        lead = "Explain what this code does and why." if kind == "explain" else "Review this code."
        user = f"{lead} {question}".strip() + f"\n\n{path}:\n```\n{numbered}\n```"
        context = str(payload.get("context") or "").strip()
        if context:
            user = f"Related code (read only):\n{context}\n\n{user}"
        system = EXPLAIN_SYSTEM if kind == "explain" else REVIEW_SYSTEM
        await reporter.progress(f"asking {self.model.name} to {kind}", 10)
        text = (
            await self._ask(
                task,
                reporter,
                [{"role": "system", "content": system}, {"role": "user", "content": user}],
                self.settings.models.chat_max_tokens * 2,
            )
        ).strip()
        last_line = len(document.text.splitlines()) if last < 0 else last + 1
        reference = (
            f"{path}:{first + 1}" if last_line <= first + 1 else f"{path}:{first + 1}-{last_line}"
        )
        if f"{path}:" not in text:
            text += f"\n\nReferences: {reference}"
        return {"markdown": text or f"(no answer) {reference}", "model": self.model.name}


def create(settings: Settings) -> RefactorRole:
    """The registry's entry point: ``swarm_lsp.workers.refactor.role:create``."""
    return RefactorRole(settings)


def snapshot_verifier(test_role: Any, snapshot_dir: Path) -> Verify:
    """A ``verify`` callback that runs the test role on ``snapshot_dir`` with patched files.

    The snapshot is copied by the test role anyway; the patched files are written into a
    temporary overlay of it so the snapshot itself never changes.
    """
    import asyncio
    import shutil
    import tempfile

    from swarm_lsp.workers.testing.sandbox import copy_workspace

    async def verify(files: dict[str, str]) -> dict[str, Any]:
        workdir = Path(await asyncio.to_thread(tempfile.mkdtemp, prefix="swarm-verify-"))
        try:
            root = workdir / "project"
            await asyncio.to_thread(copy_workspace, snapshot_dir, root)
            for rel, text in files.items():
                target = (root / rel).resolve()
                if not target.is_relative_to(root.resolve()):
                    raise WorkerError(f"{rel} is outside the snapshot")
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_text(text, encoding="utf-8")
            from swarm_lsp.workers.base import TaskRequest as Request

            class _Quiet:
                async def partial(self, text: str, data: dict[str, Any] | None = None) -> None:
                    return None

                async def progress(self, message: str, percentage: int | None = None) -> None:
                    return None

            result: dict[str, Any] = await test_role.run(
                Request(id="verify", type="test", payload={"kind": "test"}, snapshot_dir=root),
                _Quiet(),
            )
            return result
        finally:
            await asyncio.to_thread(shutil.rmtree, workdir, True)

    return verify
