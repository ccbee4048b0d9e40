"""``SwarmLanguageServer``: the state every handler needs, and the factory that wires features.

Handlers live in their own modules (completion, chat, lifecycle, ...) and receive the server as
their first argument; none reaches for a global.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lsprotocol import types
from pygls.lsp.server import LanguageServer
from pygls.uris import to_fs_path
from pygls.workspace import TextDocument

from swarm_lsp import __version__, config, paths
from swarm_lsp.config import Settings
from swarm_lsp.context.engine import ContextEngine
from swarm_lsp.errors import SwarmError
from swarm_lsp.models.local import Completion, LocalModels
from swarm_lsp.server.protocol import SwarmProtocol
from swarm_lsp.server.text import Cursor

if TYPE_CHECKING:
    from swarm_lsp.server.swarm_parts import SwarmParts

log = logging.getLogger(__name__)


class SwarmLanguageServer(LanguageServer):
    """The LSP server: settings, local models, context engine and swarm client."""

    def __init__(self) -> None:
        super().__init__(
            name="swarm-lsp",
            version=__version__,
            text_document_sync_kind=types.TextDocumentSyncKind.Incremental,
            protocol_cls=SwarmProtocol,
        )
        self.settings: Settings = Settings()
        self.models = LocalModels(self.settings.models)
        self.workspace_root: Path | None = None
        self.background: set[asyncio.Task[Any]] = set()
        self.last_completion: Completion | None = None
        self.last_completion_stats: dict[str, Any] | None = None
        self.context: ContextEngine | None = None
        self.refresh_timers: dict[str, asyncio.TimerHandle] = {}
        # Extension points for feature modules that need lifecycle or document events
        # (one pygls handler per method, so modules subscribe here instead).
        self.on_initialized: list[Callable[[], Awaitable[None]]] = []
        self.on_shutdown: list[Callable[[], Awaitable[None]]] = []
        self.on_did_open: list[Callable[[str], None]] = []
        self.on_did_save: list[Callable[[str], None]] = []
        self.on_did_change: list[Callable[[str, int], None]] = []
        self.on_did_close: list[Callable[[str], None]] = []
        self.on_settings_changed: list[Callable[[Settings], None]] = []
        # The swarm features' state (bridge, diagnostics, actions, jobs: a ``SwarmParts``), set
        # when they are registered (swarm_features.register).
        self.swarm: SwarmParts | None = None
        self.shutdown_requested = False  # ``exit`` after ``shutdown`` exits with 0

    # -- context ------------------------------------------------------------------------
    def start_context(self) -> None:
        """Create the context engine for the workspace (open documents only without one)."""
        root = self.workspace_root
        cache = paths.workspace_cache_dir(root) if root else paths.user_cache_dir() / "no-workspace"
        self.context = ContextEngine(root, self.settings.context, cache)

    def completion_context(
        self, uri: str, doc: TextDocument, position: types.Position, cursor: Cursor
    ) -> tuple[str, str, str]:
        """(preamble, prefix, suffix) for a completion at ``cursor``.

        The context engine adds imports and the signatures of symbols used near the cursor
        that are defined in other files; without it, the text around the cursor is used.
        """
        engine = self.context
        if engine is None or uri not in engine.documents:
            return "", cursor.prefix, cursor.suffix
        try:
            ctx = engine.completion_context(
                uri,
                position.line,
                position.character,
                count_tokens=self.models.count_tokens,
            )
        except SwarmError as err:
            self.log(f"context: {err}; using the text around the cursor", types.MessageType.Warning)
            return "", cursor.prefix, cursor.suffix
        return ctx.preamble, ctx.prefix, ctx.suffix

    def report_server_error(self, error: Exception, source: Any) -> None:
        """Errors pygls could not pin on a request go to the log (SwarmProtocol answers)."""
        log.error("%s", error)

    # -- settings -----------------------------------------------------------------------
    def apply_settings(self, settings: Settings) -> None:
        """Use ``settings`` from now on and tell the user about every value that was bad."""
        old_problems = set(self.settings.problems)
        self.settings = settings
        self.models.update(settings.models)
        for hook in self.on_settings_changed:
            hook(settings)
        for problem in settings.problems:
            if problem in old_problems:
                continue
            self.notify_user(f"swarm-lsp settings: {problem}", types.MessageType.Warning)

    def load_settings(self, init_options: Any) -> None:
        root = self.workspace_root
        self.apply_settings(
            config.load(root, init_options if isinstance(init_options, dict) else None)
        )
        if init_options is not None and not isinstance(init_options, dict):
            self.notify_user(
                "swarm-lsp settings: initializationOptions must be an object, "
                f"got {init_options!r}",
                types.MessageType.Warning,
            )

    # -- messages -----------------------------------------------------------------------
    def notify_user(self, message: str, kind: types.MessageType = types.MessageType.Info) -> None:
        """showMessage for the user plus logMessage for the record."""
        log.info(message)
        self.window_log_message(types.LogMessageParams(type=kind, message=message))
        self.window_show_message(types.ShowMessageParams(type=kind, message=message))

    def log(self, message: str, kind: types.MessageType = types.MessageType.Log) -> None:
        log.info(message)
        self.window_log_message(types.LogMessageParams(type=kind, message=message))

    def spawn(self, coro: Any) -> asyncio.Task[Any]:
        """Run ``coro`` in the background, keeping a reference and logging its failure."""
        task = asyncio.ensure_future(coro)
        self.background.add(task)

        def done(t: asyncio.Task[Any]) -> None:
            self.background.discard(t)
            if not t.cancelled() and (err := t.exception()) is not None:
                self.log(f"background work failed: {err}", types.MessageType.Error)

        task.add_done_callback(done)
        return task

    async def stop_everything(self) -> None:
        """Run shutdown hooks, cancel background work, free the models and the index."""
        for hook in self.on_shutdown:
            try:
                await asyncio.wait_for(hook(), timeout=10)
            except Exception as err:  # shutdown goes on whatever one hook does
                log.warning("shutdown hook failed: %s", err)
        for task in list(self.background):
            task.cancel()
        self.models.close()
        if self.context is not None:
            self.context.close()

    def root_from_params(self, params: types.InitializeParams) -> Path | None:
        """The project root: the editor's folder, or the project it sits in (by markers)."""
        given: Path | None = None
        if params.workspace_folders:
            path = to_fs_path(params.workspace_folders[0].uri)
            given = Path(path) if path else None
        elif params.root_uri:
            path = to_fs_path(params.root_uri)
            given = Path(path) if path else None
        elif params.root_path:
            given = Path(params.root_path)
        if given is None or not given.is_dir():
            return given
        root = paths.project_root(given)
        if root != given.resolve():
            log.info("workspace %s is inside the project %s; using the project root", given, root)
        return root


def create_server() -> SwarmLanguageServer:
    """A server with every feature registered."""
    from swarm_lsp.server import chat, completion, documents, lifecycle, swarm_features, symbols

    server = SwarmLanguageServer()
    lifecycle.register(server)
    documents.register(server)
    completion.register(server)
    chat.register(server)
    symbols.register(server)
    swarm_features.register(server)
    return server
