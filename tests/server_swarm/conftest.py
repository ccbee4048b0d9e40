"""The real ``swarm-lsp serve`` over stdio, connected to a real swarm on loopback.

One swarm per test module (a coordinator, a ``thinker`` worker with the refactor and research
roles and a ``tester`` worker with the test role, as real processes); each test gets a fresh
server and a fresh copy of the sample project. The refactor role's big model is the scripted
OpenAI-compatible endpoint on 127.0.0.1 (the tiny local models cannot write a valid diff);
everything else is real, including the server's own tiny chat model for the local fallback.
"""

from __future__ import annotations

import asyncio
import json
import sys
import typing
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import pytest_lsp
from lsprotocol import types
from pytest_lsp import ClientServerConfig, LanguageClient

from tests.dispatch.conftest import Swarm
from tests.server.conftest import open_doc
from tests.workers.roles_swarm import ROLE_ROUTES, roles_swarm
from tests.workers.scripted_endpoint import ScriptedEndpoint, serve
from tests.workers.test_refactor import GOOD_DIFF

__all__ = ["open_doc"]  # the server tests' helper, re-exported for this package's tests

SERVER_CMD = [sys.executable, "-m", "swarm_lsp.cli", "serve"]

# The swarm's code actions on a selection, in the order the server offers them.
SWARM_ACTIONS = [
    "Swarm: Refactor…",
    "Swarm: Explain",
    "Swarm: Review",
    "Swarm: Generate tests",
    "Swarm: Research this symbol",
    "Swarm: Run tests",
]

# ``review`` goes to a role no worker has: the receipt says it would wait forever, so the
# server asks "Wait" or "Use fast local model".
ROUTING = (
    """
[types]
refactor = "refactor"
explain = "refactor"
review = "gpu-review"
research = "research"
index = "research"
test = "test"

[waitBounds]
immediate = 2000
background = 60000
batch = 0

[[route]]
taskType = "explain"
machine = "any"
modelSize = "7B"
timeout = 60000

[[route]]
taskType = "review"
machine = "any"
modelSize = "70B"
timeout = 60000

"""
    + ROLE_ROUTES
)


@pytest.fixture(scope="module")
def endpoint() -> Iterator[ScriptedEndpoint]:
    with serve(ScriptedEndpoint([GOOD_DIFF])) as scripted:
        yield scripted


@pytest.fixture(scope="module")
def swarm(tmp_path_factory: pytest.TempPathFactory, endpoint: ScriptedEndpoint) -> Iterator[Swarm]:
    with roles_swarm(tmp_path_factory.mktemp("server-swarm"), ROUTING, endpoint, 32) as swarm:
        yield swarm


class Editor:
    """What the test client saw and how it answers the server's requests."""

    def __init__(self) -> None:
        self.questions: list[types.ShowMessageRequestParams] = []
        self.answers: list[str | None] = []
        self.before_answer: Callable[[types.ShowMessageRequestParams], None] | None = None
        self.applied: list[types.ApplyWorkspaceEditParams] = []
        self.statuses: list[dict[str, Any]] = []
        self.results: dict[str, dict[str, Any]] = {}  # swarm/result params by task id
        self.answered_in: list[float] = []  # seconds each started command took to answer

    def answer(self, *titles: str | None) -> None:
        self.answers = list(titles)


def _code_action_or_command(converter: Any) -> Callable[[Any, Any], Any]:
    def structure(obj: Any, _: Any) -> Any:
        if isinstance(obj, dict) and isinstance(obj.get("command"), str):
            return converter.structure(obj, types.Command)
        return converter.structure(obj, types.CodeAction)

    return structure


def install_handlers(client: LanguageClient, editor: Editor) -> None:
    """``editor`` answers the server's requests to ``client`` (and is ``client.editor``)."""
    client.editor = editor  # type: ignore[attr-defined]
    # lsprotocol's converter reads a CodeAction whose ``command`` is a Command object as a
    # Command (stringifying the object); editors tell them apart by the type of ``command``.
    converter = client.protocol._converter
    converter.register_structure_hook(
        types.Command | types.CodeAction, _code_action_or_command(converter)
    )
    converter.register_structure_hook(
        typing.Union[types.Command, types.CodeAction],  # noqa: UP007 - the exact type lsprotocol uses
        _code_action_or_command(converter),
    )

    @client.feature(types.WINDOW_SHOW_MESSAGE_REQUEST)
    def show_message_request(
        params: types.ShowMessageRequestParams,
    ) -> types.MessageActionItem | None:
        editor.questions.append(params)
        if editor.before_answer is not None:
            editor.before_answer(params)
        title = editor.answers.pop(0) if editor.answers else None
        return types.MessageActionItem(title=title) if title else None

    @client.feature(types.WORKSPACE_APPLY_EDIT)
    def apply_edit(params: types.ApplyWorkspaceEditParams) -> types.ApplyWorkspaceEditResult:
        editor.applied.append(params)
        return types.ApplyWorkspaceEditResult(applied=True)

    @client.feature("swarm/status")
    def status(params: Any) -> None:
        editor.statuses.append(params if isinstance(params, dict) else _plain(params))

    @client.feature("swarm/result")
    def result(params: Any) -> None:
        plain = params if isinstance(params, dict) else _plain(params)
        editor.results[plain["taskId"]] = plain


def _plain(value: Any) -> Any:
    """pygls hands custom notification params over as namedtuple-like objects."""
    if hasattr(value, "_asdict"):
        return {k: _plain(v) for k, v in value._asdict().items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


def capabilities() -> types.ClientCapabilities:
    return types.ClientCapabilities(
        window=types.WindowClientCapabilities(
            work_done_progress=True,
            show_document=types.ShowDocumentClientCapabilities(support=True),
        ),
        workspace=types.WorkspaceClientCapabilities(
            apply_edit=True,
            workspace_edit=types.WorkspaceEditClientCapabilities(
                document_changes=True,
                resource_operations=[types.ResourceOperationKind.Create],
            ),
        ),
        text_document=types.TextDocumentClientCapabilities(
            code_action=types.CodeActionClientCapabilities(
                resolve_support=types.ClientCodeActionResolveOptions(properties=["edit"]),
                data_support=True,
            ),
        ),
    )


def server_options(swarm: Swarm, endpoint: ScriptedEndpoint) -> dict[str, Any]:
    return {
        "models": {"chatMaxTokens": 24, "endpointUrl": endpoint.url},
        "swarm": {"coordinator": swarm.address, "autostart": False},
        "context": {"indexOnStart": False},
    }


async def initialize(
    client: LanguageClient, root: Path, options: dict[str, Any], *, folder: bool = False
) -> types.InitializeResult:
    """The session on ``root`` with these initializationOptions (``folder``: and ``root`` as
    the one workspace folder)."""
    folders = [types.WorkspaceFolder(uri=root.as_uri(), name=root.name)] if folder else None
    return await client.initialize_session(
        types.InitializeParams(
            capabilities=capabilities(),
            root_uri=root.as_uri(),
            workspace_folders=folders,
            initialization_options=options,
        )
    )


@pytest_lsp.fixture(config=ClientServerConfig(server_command=SERVER_CMD))
async def client(
    lsp_client: LanguageClient, sample_project: Path, swarm: Swarm, endpoint: ScriptedEndpoint
) -> AsyncIterator[LanguageClient]:
    editor = Editor()
    install_handlers(lsp_client, editor)
    lsp_client.root = sample_project  # type: ignore[attr-defined]
    lsp_client.init_result = await initialize(  # type: ignore[attr-defined]
        lsp_client, sample_project, server_options(swarm, endpoint), folder=True
    )
    yield lsp_client
    await lsp_client.shutdown_session()


def edits_for(edit: types.WorkspaceEdit, uri: str) -> tuple[int | None, list[dict[str, object]]]:
    """The document version and the text edits (as LSP JSON) ``edit`` makes to ``uri``."""
    for change in edit.document_changes or []:
        if isinstance(change, types.TextDocumentEdit) and change.text_document.uri == uri:
            edits: list[dict[str, object]] = [
                {
                    "range": {
                        "start": {"line": e.range.start.line, "character": e.range.start.character},
                        "end": {"line": e.range.end.line, "character": e.range.end.character},
                    },
                    "newText": e.new_text,
                }
                for e in change.edits
                if not isinstance(e, types.SnippetTextEdit)
            ]
            assert len(edits) == len(change.edits), "the server sent a snippet edit"
            return change.text_document.version, edits
    raise AssertionError(f"no edit for {uri} in {edit}")


async def wait_for(predicate: Callable[[], Any], timeout: float = 60.0, what: str = "") -> Any:
    deadline = asyncio.get_running_loop().time() + timeout
    while not (value := predicate()):
        if asyncio.get_running_loop().time() > deadline:
            raise TimeoutError(f"timed out waiting for {what or predicate}")
        await asyncio.sleep(0.05)
    return value


async def ready(client: LanguageClient, timeout: float = 60.0) -> dict[str, Any]:
    """The first ``swarm/status`` that says ready (both workers connected)."""
    editor: Editor = client.editor  # type: ignore[attr-defined]

    def seen() -> dict[str, Any] | None:
        for status in editor.statuses:
            if status.get("state") == "ready" and len(status.get("machines") or []) >= 2:
                return status
        return None

    result: dict[str, Any] = await wait_for(seen, timeout, "a ready swarm/status")
    return result


# A command that starts swarm work answers with what it started at once (well under eglot's
# 10 s request timeout); on this shared 2-core machine "at once" is given 2 s.
STARTED_WITHIN_S = 2.0


# The shapes of a started command's answer and of swarm/result, shared with the editor tests.
RESULT_SHAPES = json.loads(
    (Path(__file__).resolve().parents[1] / "fixtures" / "protocol" / "result.json").read_text()
)


class CommandFailed(Exception):
    """The background work of a command ended with an error (its ``swarm/result``)."""


async def start(client: LanguageClient, name: str, *args: Any) -> dict[str, Any]:
    """Send a command that starts background work; its immediate answer (checked)."""
    editor: Editor = client.editor  # type: ignore[attr-defined]
    loop = asyncio.get_running_loop()
    began = loop.time()
    answer = await asyncio.wait_for(
        client.workspace_execute_command_async(
            types.ExecuteCommandParams(command=name, arguments=list(args))
        ),
        timeout=10,
    )
    elapsed = loop.time() - began
    assert isinstance(answer, dict) and answer.get("status") == "started", answer
    assert set(answer) == set(RESULT_SHAPES["started"]), answer
    assert answer["taskId"] and answer["command"] == name
    assert elapsed < STARTED_WITHIN_S, f"{name} took {elapsed:.2f}s to answer"
    editor.answered_in.append(elapsed)
    return answer


async def finished(client: LanguageClient, task_id: str, timeout: float = 120.0) -> Any:
    """The result of the background work ``task_id`` (its ``swarm/result``)."""
    editor: Editor = client.editor  # type: ignore[attr-defined]
    done = await wait_for(lambda: editor.results.get(task_id), timeout, f"swarm/result {task_id}")
    assert set(done) == set(RESULT_SHAPES["finished" if done["ok"] else "failed"]), done
    if not done["ok"]:
        raise CommandFailed(done["error"])
    return done["result"]


async def command(client: LanguageClient, name: str, *args: Any, timeout: float = 120.0) -> Any:
    """Run a command to its end: ``swarm.status`` answers directly, the others start work."""
    if name in ("swarm.status", "swarm.cancel"):
        return await asyncio.wait_for(
            client.workspace_execute_command_async(
                types.ExecuteCommandParams(command=name, arguments=list(args))
            ),
            timeout=timeout,
        )
    answer = await start(client, name, *args)
    return await finished(client, answer["taskId"], timeout)
