"""``textDocument/codeAction`` and ``codeAction/resolve``: the swarm's actions in the light bulb.

Offered on any range (a selection, or the cursor at a symbol):

===========================  =====================================  ===========================
title                        kind                                   how it runs
===========================  =====================================  ===========================
Swarm: Refactor…             refactor.rewrite.swarm                 resolved lazily into an edit
Swarm: Explain               refactor.swarm.explain                 command → Markdown document
Swarm: Review                refactor.swarm.review                  command → Markdown document
Swarm: Generate tests        refactor.swarm.generateTests           command → Apply? → applyEdit
Swarm: Research this symbol  refactor.swarm.research                command → Markdown document
Swarm: Run tests             refactor.swarm.runTests                command → diagnostics
===========================  =====================================  ===========================

All kinds sit under ``refactor`` so VS Code shows them in the light bulb (it hides ``source``
kinds there); ``context.only`` filters them by prefix as the spec says. "Refactor…" resolves
(``codeAction/resolve``) into the refactor worker's WorkspaceEdit with a default instruction,
checked against the document as it is then (rebased or refused when stale); a client without
resolve support gets the ``swarm.refactor`` command instead.
"""

from __future__ import annotations

from typing import Any

from lsprotocol import types
from pygls.exceptions import JsonRpcInvalidParams, JsonRpcServerError

from swarm_lsp.errors import SwarmError
from swarm_lsp.server.app import SwarmLanguageServer
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

KIND_REFACTOR = "refactor.rewrite.swarm"
KIND_EXPLAIN = "refactor.swarm.explain"
KIND_REVIEW = "refactor.swarm.review"
KIND_GENERATE_TESTS = "refactor.swarm.generateTests"
KIND_RESEARCH = "refactor.swarm.research"
KIND_RUN_TESTS = "refactor.swarm.runTests"
KINDS = (
    KIND_REFACTOR,
    KIND_EXPLAIN,
    KIND_REVIEW,
    KIND_GENERATE_TESTS,
    KIND_RESEARCH,
    KIND_RUN_TESTS,
)

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
    add("Swarm: Generate tests", KIND_GENERATE_TESTS, GENERATE_TESTS, [uri, span_json])
    add("Swarm: Research this symbol", KIND_RESEARCH, RESEARCH, [uri, position, {"show": True}])
    add("Swarm: Run tests", KIND_RUN_TESTS, RUN_TESTS, [uri])
    return actions


async def resolve(
    ls: SwarmLanguageServer, actions: SwarmActions, action: types.CodeAction
) -> types.CodeAction:
    """Fill in a "Refactor…" action's edit from the refactor worker."""
    data = action.data if isinstance(action.data, dict) else None
    if data is None or data.get("swarm") != "refactor":
        return action
    uri = parse_uri("codeAction/resolve", data.get("uri"))
    span = parse_range("codeAction/resolve", data.get("range"))
    instruction = data.get("instruction")
    if not isinstance(instruction, str) or not instruction.strip():
        raise JsonRpcInvalidParams("codeAction/resolve: the action's data has no instruction")
    progress = await ProgressStream.open(ls, None, "Swarm: Refactor")
    try:
        result, sent = await actions.compute_refactor(uri, span, instruction, progress)
    except SwarmError as err:
        progress.end(f"failed: {err}")
        raise JsonRpcServerError(f"Swarm: Refactor failed: {err}", SERVER_ERROR) from err
    except BaseException:
        progress.end("stopped")
        raise
    progress.end("ready")
    settled = settle(ls, result.get("edit") or {}, sent)
    if settled.edit is None:
        ls.notify_user(f"Swarm: Refactor: {settled.message}", types.MessageType.Warning)
        raise JsonRpcServerError(f"Swarm: Refactor: {settled.message}", SERVER_ERROR)
    if settled.message:
        ls.log(f"swarm: {settled.message}")
    action.edit = to_workspace_edit(ls, settled.edit)
    return action


def register_code_actions(server: SwarmLanguageServer, actions: SwarmActions) -> None:
    @server.feature(
        types.TEXT_DOCUMENT_CODE_ACTION,
        types.CodeActionOptions(
            code_action_kinds=list(KINDS),
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
        return await resolve(ls, actions, params)
