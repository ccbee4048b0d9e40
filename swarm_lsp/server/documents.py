"""Document sync into the context engine: didOpen / didChange / didSave / didClose / watched files.

pygls keeps its own copy of each document (``ls.workspace``); the context engine keeps the
incrementally parsed tree-sitter trees. Both see every change.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from lsprotocol import types

from swarm_lsp import paths
from swarm_lsp.context.documents import uri_to_path
from swarm_lsp.server.app import SwarmLanguageServer

# Re-index an edited document's unsaved text once typing pauses, so its new definitions
# reach other files' context and workspace symbols before it is saved.
REFRESH_DELAY_S = 0.75


def schedule_refresh(ls: SwarmLanguageServer, uri: str) -> None:
    engine = ls.context
    if engine is None:
        return
    pending = ls.refresh_timers.pop(uri, None)
    if pending is not None:
        pending.cancel()

    def fire() -> None:
        ls.refresh_timers.pop(uri, None)
        ls.spawn(asyncio.to_thread(engine.refresh_document, uri))

    ls.refresh_timers[uri] = asyncio.get_running_loop().call_later(REFRESH_DELAY_S, fire)


def adopt_project_root(ls: SwarmLanguageServer, uri: str) -> None:
    """No workspace folder: the first opened file inside a project (found by its markers) makes
    that project the workspace, so tests, research and cross-file context have a root."""
    if ls.workspace_root is not None:
        return
    path = uri_to_path(uri)
    if path is None:
        return
    root = paths.project_root(Path(path).parent)
    if not paths.has_marker(root):
        return
    ls.workspace_root = root
    ls.log(f"swarm-lsp: no workspace folder; using the project {root} (found by its markers)")
    old = ls.context
    ls.start_context()
    engine = ls.context
    if old is not None and engine is not None:
        for open_uri, doc in list(ls.workspace.text_documents.items()):
            if open_uri != uri and open_uri in old.documents:
                engine.documents.open(open_uri, doc.source, doc.language_id or "", doc.version)
        old.close()
    if ls.settings.context.index_on_start:
        from swarm_lsp.server.lifecycle import index_workspace

        ls.spawn(index_workspace(ls))


def register(server: SwarmLanguageServer) -> None:
    @server.feature(types.TEXT_DOCUMENT_DID_OPEN)
    def did_open(ls: SwarmLanguageServer, params: types.DidOpenTextDocumentParams) -> None:
        doc = params.text_document
        adopt_project_root(ls, doc.uri)
        if ls.context is not None:
            ls.context.documents.open(doc.uri, doc.text, doc.language_id, doc.version)
        for hook in ls.on_did_open:
            hook(doc.uri)

    @server.feature(types.TEXT_DOCUMENT_DID_CHANGE)
    def did_change(ls: SwarmLanguageServer, params: types.DidChangeTextDocumentParams) -> None:
        uri, version = params.text_document.uri, params.text_document.version
        engine = ls.context
        if engine is not None:
            for change in params.content_changes:
                if isinstance(change, types.TextDocumentContentChangePartial):
                    r = change.range
                    engine.documents.apply_change(
                        uri,
                        r.start.line,
                        r.start.character,
                        r.end.line,
                        r.end.character,
                        change.text,
                        version,
                    )
                else:
                    engine.documents.replace(uri, change.text, version)
            schedule_refresh(ls, uri)
        for hook in ls.on_did_change:
            hook(uri, version)

    @server.feature(types.TEXT_DOCUMENT_DID_SAVE)
    async def did_save(ls: SwarmLanguageServer, params: types.DidSaveTextDocumentParams) -> None:
        uri = params.text_document.uri
        path = uri_to_path(uri)
        if ls.context is not None and path is not None:
            await asyncio.to_thread(ls.context.file_changed, path)
        for hook in ls.on_did_save:
            hook(uri)

    @server.feature(types.TEXT_DOCUMENT_DID_CLOSE)
    def did_close(ls: SwarmLanguageServer, params: types.DidCloseTextDocumentParams) -> None:
        uri = params.text_document.uri
        if ls.context is not None:
            ls.context.documents.close(uri)
            pending = ls.refresh_timers.pop(uri, None)
            if pending is not None:
                pending.cancel()
            path = uri_to_path(uri)
            if path is not None and path.is_file():
                # Back to what is on disk: the unsaved text the index held is gone.
                ls.spawn(asyncio.to_thread(ls.context.file_changed, path))
        for hook in ls.on_did_close:
            hook(uri)

    @server.feature(types.WORKSPACE_DID_CHANGE_WATCHED_FILES)
    async def did_change_watched_files(
        ls: SwarmLanguageServer, params: types.DidChangeWatchedFilesParams
    ) -> None:
        engine = ls.context
        if engine is None:
            return
        for event in params.changes:
            path = uri_to_path(event.uri)
            if path is None:
                continue
            if event.type == types.FileChangeType.Deleted:
                await asyncio.to_thread(engine.file_deleted, Path(path))
            else:
                await asyncio.to_thread(engine.file_changed, Path(path))
