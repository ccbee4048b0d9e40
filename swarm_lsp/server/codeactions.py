"""``textDocument/codeAction`` and ``codeAction/resolve``: the swarm's actions in the light bulb.

Offered on any range (a selection, or the cursor at a symbol), each under a standard kind so
clients that match kinds exactly (eglot 1.9's ``eglot-code-action-rewrite``) or by prefix
(VS Code's light bulb and ``context.only``) find them:

===========================  =================  ==============================================
title                        kind               how it runs
===========================  =================  ==============================================
Swarm: Refactor…             refactor.rewrite   resolved into an edit (bounded), or a command
Swarm: Generate tests        refactor.rewrite   command → Apply? → applyEdit
Swarm: Explain               refactor           command → Markdown document or message
Swarm: Review                refactor           command → Markdown document or message
Swarm: Research this symbol  refactor           command → Markdown document or message
Swarm: Run tests             refactor           command → diagnostics and a message
===========================  =================  ==============================================

Commands start background work and answer at once (:mod:`swarm_lsp.server.jobs`).
"Refactor…" resolves (``codeAction/resolve``) into the refactor worker's WorkspaceEdit with a
default instruction, checked against the document as it is then (rebased or refused when
stale). The resolve waits at most ``swarm.resolveTimeoutMs``: past that it says so and lets the
work finish in the background, which then asks Apply / Discard like the command. A client
without resolve support gets the ``swarm.refactor`` command instead.
"""

from __future__ import annotations

import asyncio
import dataclasses
from typing import Any

from lsprotocol import types
from pygls.exceptions import JsonRpcInvalidParams, JsonRpcServerError

from swarm_lsp.errors import SwarmError
from swarm_lsp.server.app import SwarmLanguageServer
from swarm_lsp.server.jobs import Jobs
from swarm_lsp.server.progress import ProgressStream
from swarm_lsp.server.swarm_commands import (
    EXPLAIN,
    GENERATE_TESTS,
    REFACTOR,
    RESEARCH,
    REVIEW,
    RUN_TESTS,
    SERVER_ERROR,
    SwarmActions,
    parse_range,
    parse_uri,
)
from swarm_lsp.server.swarm_edits import settle, to_workspace_edit
from swarm_lsp.server.swarm_parts import swarm_of
from swarm_lsp.tasks import RefactorResult

KIND_REFACTOR = types.CodeActionKind.RefactorRewrite.value
KIND_GENERATE_TESTS = types.CodeActionKind.RefactorRewrite.value
KIND_EXPLAIN = types.CodeActionKind.Refactor.value
KIND_REVIEW = types.CodeActionKind.Refactor.value
KIND_RESEARCH = types.CodeActionKind.Refactor.value
KIND_RUN_TESTS = types.CodeActionKind.Refactor.value
KINDS = (types.CodeActionKind.Refactor.value, types.CodeActionKind.RefactorRewrite.value)

DEFAULT_REFACTOR_INSTRUCTION = (
    "Improve this code: fix any bug you find, keep its behaviour otherwise, "
    "and keep the change small."
)


def wanted(kind: str, only: list[str] | None) -> bool:
    """Whether ``kind`` matches the client's ``context.only`` (hierarchical prefix match)."""
    if not only:
        return True
    return any(kind == o or kind.startswith(o + ".") for o in only)


def _resolve_supported(ls: SwarmLanguageServer) -> bool:
    text = ls.client_capabilities.text_document
    action = text.code_action if text else None
    support = action.resolve_support if action else None
    return bool(support and "edit" in support.properties)


def code_actions(ls: SwarmLanguageServer, params: types.CodeActionParams) -> list[types.CodeAction]:
    uri = params.text_document.uri
    span = params.range
    only = [str(k) for k in params.context.only] if params.context.only else None
    span_json = {
        "start": {"line": span.start.line, "character": span.start.character},
        "end": {"line": span.end.line, "character": span.end.character},
    }
    position = {"line": span.start.line, "character": span.start.character}
    actions: list[types.CodeAction] = []

    def add(
        title: str, kind: str, command: str | None, arguments: list[Any], data: Any = None
    ) -> None:
        if not wanted(kind, only):
            return
        actions.append(
            types.CodeAction(
                title=title,
                kind=kind,
                command=types.Command(title=title, command=command, arguments=arguments)
                if command
                else None,
                data=data,
            )
        )

    if _resolve_supported(ls):
        add(
            "Swarm: Refactor…",
            KIND_REFACTOR,
            None,
            [],
            {
                "swarm": "refactor",
                "uri": uri,
                "range": span_json,
                "instruction": DEFAULT_REFACTOR_INSTRUCTION,
            },
        )
    else:
        add(
            "Swarm: Refactor…",
            KIND_REFACTOR,
            REFACTOR,
            [uri, span_json, DEFAULT_REFACTOR_INSTRUCTION],
        )
    add("Swarm: Explain", KIND_EXPLAIN, EXPLAIN, [uri, span_json, {"show": True}])
    add("Swarm: Review", KIND_REVIEW, REVIEW, [uri, span_json, {"show": True}])
    add(
        "Swarm: Generate tests",
        KIND_GENERATE_TESTS,
        GENERATE_TESTS,
        [uri, span_json, {"show": True}],
    )
    add("Swarm: Research this symbol", KIND_RESEARCH, RESEARCH, [uri, position, {"show": True}])
    add("Swarm: Run tests", KIND_RUN_TESTS, RUN_TESTS, [uri, {"show": True}])
    return actions


@dataclasses.dataclass
class _Handover:
    """Whether a resolve still waits for the edit, or gave the work to the background."""

    computed: asyncio.Future[tuple[RefactorResult, dict[str, tuple[str, int | None]]]]
    background: bool = False


async def resolve(
    ls: SwarmLanguageServer, actions: SwarmActions, jobs: Jobs, action: types.CodeAction
) -> types.CodeAction:
    """Fill in a "Refactor…" action's edit from the refactor worker, within the bound."""
    data = action.data if isinstance(action.data, dict) else None
    if data is None or data.get("swarm") != "refactor":
        return action
    uri = parse_uri("codeAction/resolve", data.get("uri"))
    span = parse_range("codeAction/resolve", data.get("range"))
    instruction = data.get("instruction")
    if not isinstance(instruction, str) or not instruction.strip():
        raise JsonRpcInvalidParams("codeAction/resolve: the action's data has no instruction")
    actions.target(uri, span)
    handover = _Handover(asyncio.get_running_loop().create_future())

    async def work(progress: ProgressStream) -> dict[str, Any]:
        try:
            result, sent = await actions.compute_refactor(uri, span, instruction, progress)
        except BaseException as err:
            if not handover.computed.done():
                handover.computed.set_exception(err)
                handover.computed.exception()  # retrieved: the resolve below reports it
            raise
        if not handover.background:
            handover.computed.set_result((result, sent))
            return {"summary": "Refactor: the edit went to the code action"}
        return await actions.apply_refactor(result, sent, "Refactor", progress)

    started = jobs.start("codeAction/resolve", "Swarm: Refactor", work)
    bound_s = max(ls.settings.swarm.resolve_timeout_ms, 0) / 1000
    try:
        result, sent = await asyncio.wait_for(asyncio.shield(handover.computed), bound_s)
    except TimeoutError:
        handover.background = True
        ls.notify_user(
            f"Swarm: Refactor is taking longer than {bound_s:g}s (swarm.resolveTimeoutMs); it "
            "goes on in the background and asks to Apply when it is ready.",
            types.MessageType.Info,
        )
        return action
    except asyncio.CancelledError:
        jobs.cancel(started["taskId"])
        raise
    except SwarmError as err:
        raise JsonRpcServerError(f"Swarm: Refactor failed: {err}", SERVER_ERROR) from err
    settled = settle(ls, result.edit, sent)
    if settled.edit is None:
        ls.notify_user(f"Swarm: Refactor: {settled.message}", types.MessageType.Warning)
        raise JsonRpcServerError(f"Swarm: Refactor: {settled.message}", SERVER_ERROR)
    if settled.message:
        ls.log(f"swarm: {settled.message}")
    action.edit = to_workspace_edit(ls, settled.edit)
    return action


def register_code_actions(server: SwarmLanguageServer) -> None:
    @server.feature(
        types.TEXT_DOCUMENT_CODE_ACTION,
        types.CodeActionOptions(
            code_action_kinds=[types.CodeActionKind(k) for k in KINDS],
            resolve_provider=True,
        ),
    )
    def code_action(
        ls: SwarmLanguageServer, params: types.CodeActionParams
    ) -> list[types.CodeAction]:
        return code_actions(ls, params)

    @server.feature(types.CODE_ACTION_RESOLVE)
    async def code_action_resolve(
        ls: SwarmLanguageServer, params: types.CodeAction
    ) -> types.CodeAction:
        parts = swarm_of(ls)
        return await resolve(ls, parts.actions, parts.jobs, params)
