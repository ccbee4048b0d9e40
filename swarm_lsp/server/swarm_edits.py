"""Turn a worker's WorkspaceEdit into one that is safe to apply to the documents as they are now.

Each TextDocumentEdit names the version its edits were made against. If the document is still
at that version the edit goes as is; if it moved on, the edits are rebased over the user's
changes (:mod:`staleness`) or, when they touch changed lines, the whole edit is dropped with a
message. A file the edit creates (a new test file) gets a CreateFile operation first.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

from lsprotocol import converters, types

from swarm_lsp.context.documents import uri_to_path
from swarm_lsp.server.app import SwarmLanguageServer
from swarm_lsp.server.staleness import settle_document_edit
from swarm_lsp.server.task_payloads import current_document

_CONVERTER = converters.get_converter()  # lsprotocol's own (LSP JSON ⇄ lsprotocol types)

APPLY = "Apply"
DISCARD = "Discard"


@dataclasses.dataclass
class SettledEdit:
    edit: dict[str, Any] | None  # WorkspaceEdit JSON, or None when stale
    rebased: list[str]  # uris whose edits were moved over later changes
    stale: list[str]  # uris whose edits no longer apply
    message: str


def _exists(uri: str) -> bool:
    path = uri_to_path(uri)
    return path is not None and Path(path).exists()


def settle(
    ls: SwarmLanguageServer, edit: dict[str, Any], sent: dict[str, tuple[str, int | None]]
) -> SettledEdit:
    """``edit`` checked against the documents now; ``sent`` is uri → (text, version) sent."""
    changes: list[dict[str, Any]] = []
    rebased: list[str] = []
    stale: list[str] = []
    for change in edit.get("documentChanges") or []:
        if "textDocument" not in change:
            changes.append(change)
            continue
        uri = change["textDocument"]["uri"]
        edits = change.get("edits") or []
        base_text, base_version = sent.get(uri, ("", change["textDocument"].get("version")))
        found = current_document(ls, uri)
        if found is None:
            if base_text == "" and not _exists(uri):
                changes.append({"kind": "create", "uri": uri, "options": {"ignoreIfExists": True}})
                changes.append({"textDocument": {"uri": uri, "version": None}, "edits": edits})
                continue
            stale.append(uri)
            continue
        current_text, current_version = found
        outcome = settle_document_edit(
            uri, base_version, base_text, current_version, current_text, edits
        )
        if outcome.state == "stale" or outcome.edits is None:
            stale.append(uri)
            continue
        if outcome.state == "rebased":
            rebased.append(uri)
        changes.append(
            {"textDocument": {"uri": uri, "version": current_version}, "edits": outcome.edits}
        )
    if stale:
        names = ", ".join(uri.rsplit("/", 1)[-1] for uri in stale)
        return SettledEdit(
            None,
            rebased,
            stale,
            f"the result is stale: {names} changed where the edit applies since the task was "
            "sent; dropped it (run the action again)",
        )
    message = ""
    if rebased:
        names = ", ".join(uri.rsplit("/", 1)[-1] for uri in rebased)
        message = f"moved the edit over your later changes in {names}"
    return SettledEdit({"documentChanges": changes}, rebased, [], message)


def to_workspace_edit(ls: SwarmLanguageServer, edit: dict[str, Any]) -> types.WorkspaceEdit:
    converted: types.WorkspaceEdit = _CONVERTER.structure(edit, types.WorkspaceEdit)
    return converted


async def ask_and_apply(
    ls: SwarmLanguageServer,
    worker_edit: dict[str, Any],
    sent: dict[str, tuple[str, int | None]],
    label: str,
    explanation: str,
) -> dict[str, Any]:
    """Ask Apply / Discard; on Apply settle the edit against the documents now and apply it."""
    question = f"Swarm: {label} is ready. {explanation}".strip()
    choice = await ls.window_show_message_request_async(
        types.ShowMessageRequestParams(
            type=types.MessageType.Info,
            message=question[:2000],
            actions=[types.MessageActionItem(title=APPLY), types.MessageActionItem(title=DISCARD)],
        )
    )
    if choice is None or choice.title != APPLY:
        return {"applied": False, "summary": f"{label}: discarded"}
    settled = settle(ls, worker_edit, sent)
    if settled.edit is None:
        ls.notify_user(f"Swarm: {label}: {settled.message}", types.MessageType.Warning)
        return {"applied": False, "stale": True, "summary": f"{label}: {settled.message}"}
    result = await ls.workspace_apply_edit_async(
        types.ApplyWorkspaceEditParams(
            edit=to_workspace_edit(ls, settled.edit), label=f"Swarm: {label}"
        )
    )
    if not result.applied:
        why = result.failure_reason or "the editor refused it"
        ls.notify_user(
            f"Swarm: {label}: the edit was not applied ({why})", types.MessageType.Warning
        )
        return {"applied": False, "summary": f"{label}: not applied ({why})"}
    summary = f"{label}: applied"
    if settled.message:
        summary += f" ({settled.message})"
        ls.log(f"swarm: {settled.message}")
    return {"applied": True, "rebased": bool(settled.rebased), "summary": summary}
