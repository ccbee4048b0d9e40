"""The completion side of a session: reuse, stable prompts, and warming the model's cache.

Per request, in order: an answer that needs no model call (the user typed the start of the
suggestion on screen, or came back to a prefix answered a moment ago); else the document's
stable prompt window (:mod:`swarm_lsp.context.completion_window`) and the model, healing a
partial word. Between requests, at the moments a person pauses (document opened, typing
stopped, file saved, ``swarm/warm`` from a client that knows the cursor), the prompt at the
cursor is evaluated ahead so the next request only appends to it.

Extra context (:mod:`swarm_lsp.context.ring`): when the user leaves a document for another
(opens one, or asks in one), and when they save one, the lines around its cursor join the
ring. A document's prompt takes
the ring in when its window is first made and when typing pauses or it is saved; the warm at
that pause evaluates the new prompt head in the background (any real request pre-empts it).
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
from typing import Any

from lsprotocol import types

from swarm_lsp.context.completion_window import CompletionWindows
from swarm_lsp.context.ring import ContextRing
from swarm_lsp.errors import GenerationCancelled, ModelError, SwarmError
from swarm_lsp.models.reuse import CompletionCache
from swarm_lsp.server.app import SwarmLanguageServer
from swarm_lsp.server.text import Cursor, cursor_at

IDLE_WARM_S = 1.0  # typing paused this long: refresh the preamble and warm the cache


@dataclasses.dataclass(frozen=True)
class Answer:
    text: str  # to insert at the cursor
    word: str  # the partial word before the cursor
    model: str
    kind: str  # "model" | "typed-ahead" | "cached"
    names: tuple[str, ...] = ()  # known names the partial word may be the start of


@dataclasses.dataclass(frozen=True)
class Prompt:
    preamble: str
    prefix: str
    suffix: str
    names: tuple[str, ...]
    anchor_line: int = -1
    moved: bool = True
    ring_version: int = -1
    extra_chars: int = 0


Key = tuple[str, str, str]  # document, text before the cursor, rest of the line


@dataclasses.dataclass(eq=False)
class _Shared:
    """A model call in flight and how many requests wait for it."""

    task: asyncio.Future[Answer | None]
    waiters: int = 0


class CompletionSession:
    """Completion state for one server; see the module docstring."""

    def __init__(self, ls: SwarmLanguageServer) -> None:
        self.ls = ls
        self.cache = CompletionCache()
        self._windows: CompletionWindows | None = None
        self.ring = ContextRing(count=ls.models.count_tokens)
        self.active: str | None = None  # the document the user asked in last
        self.cursors: dict[str, types.Position] = {}
        self.timers: dict[str, asyncio.TimerHandle] = {}
        self.in_flight: dict[str, int] = {}  # requests (completions, asked-for warms) per document
        self.completing: dict[str, int] = {}  # completions in flight per document
        self._shared: dict[Key, _Shared] = {}  # model calls in flight, by cursor
        self.counts = {
            "model": 0,
            "typed-ahead": 0,
            "cached": 0,
            "warm": 0,
            "speculative": 0,
            "warmedTokens": 0,  # prompt tokens the warms evaluated
        }

    # -- prompt ------------------------------------------------------------------------------
    def windows(self) -> CompletionWindows | None:
        engine = self.ls.context
        if engine is None:
            return None
        settings = self.ls.settings.context
        ring = self.ring
        ring.max_chunks = settings.ring_chunks
        ring.chunk_lines = max(3, settings.ring_chunk_lines)
        ring.max_tokens = settings.ring_tokens
        if self._windows is None or self._windows.engine is not engine:
            self._windows = CompletionWindows(engine, ring)
        return self._windows

    def prompt(self, uri: str, position: types.Position, cursor: Cursor) -> Prompt:
        ls = self.ls
        windows = self.windows()
        if windows is None or ls.context is None or uri not in ls.context.documents:
            return Prompt("", cursor.prefix, cursor.suffix, ())
        engine = ls.models.completion.engine
        fim = engine.loaded and engine.fim is not None
        try:
            ctx = windows.context(
                uri,
                position.line,
                position.character,
                count_tokens=ls.models.count_tokens,
                suffix_in_prompt=fim,
            )
        except SwarmError as err:
            ls.log(f"context: {err}; using the text around the cursor", types.MessageType.Warning)
            return Prompt("", cursor.prefix, cursor.suffix, ())
        if ctx is None:
            return Prompt("", cursor.prefix, cursor.suffix, ())
        names = tuple(windows.names_for(cursor.word, ctx)) if cursor.word else ()
        return Prompt(
            ctx.head,
            ctx.prefix,
            ctx.suffix,
            names,
            ctx.anchor_line,
            ctx.moved,
            ctx.ring_version,
            len(ctx.extra),
        )

    # -- a request ---------------------------------------------------------------------------
    async def complete(self, uri: str, position: types.Position) -> Answer | None:
        """The text to insert at ``position``; None when there is nothing sensible."""
        ls = self.ls
        doc = ls.workspace.text_documents.get(uri)
        if doc is None:
            return None  # not open (or closed meanwhile)
        cursor = cursor_at(doc, position)
        if cursor is None:
            return None
        self.enter(uri)
        self.cursors[uri] = position
        if (timer := self.timers.pop(uri, None)) is not None:
            timer.cancel()  # this request warms the cache itself; a warm would supersede it
        started = time.perf_counter()
        line_rest = cursor.suffix.split("\n", 1)[0]
        hit = self.cache.lookup(uri, cursor.prefix, line_rest)
        if hit is not None:
            self.counts[hit.kind] += 1
            ls.last_completion_stats = {
                "reuse": hit.kind,
                "typed": hit.typed,
                "handlerMs": round((time.perf_counter() - started) * 1000, 3),
                "counts": dict(self.counts),
            }
            model = ls.last_completion.model if ls.last_completion is not None else ""
            return Answer(hit.text, cursor.word, model, hit.kind)

        # An inline request and an explicit one (Ctrl+Space) at the same cursor share one
        # model call: the newer must not supersede the older and leave it empty.
        key = (uri, cursor.prefix, line_rest)
        shared = self._shared.get(key)
        if shared is None:
            task = asyncio.ensure_future(
                self._from_model(uri, position, cursor, line_rest, started)
            )
            shared = self._shared[key] = _Shared(task)

            def finished(_task: asyncio.Future[Answer | None], key: Key = key) -> None:
                if (entry := self._shared.get(key)) is not None and entry.task is _task:
                    del self._shared[key]

            task.add_done_callback(finished)
        shared.waiters += 1
        try:
            return await asyncio.shield(shared.task)
        except asyncio.CancelledError:
            shared.waiters -= 1
            if shared.waiters == 0:
                shared.task.cancel()  # nobody waits any more: free the model at once
            raise

    async def _from_model(
        self,
        uri: str,
        position: types.Position,
        cursor: Cursor,
        line_rest: str,
        started: float,
    ) -> Answer | None:
        ls = self.ls
        self._request_started(uri)
        self.completing[uri] = self.completing.get(uri, 0) + 1
        try:
            # Windows fitted with estimated token counts would move once the tokenizer is
            # there: build the prompt with the model's own counts.
            await ls.models.ensure_loaded()
            prompt = self.prompt(uri, position, cursor)
            context_ms = (time.perf_counter() - started) * 1000
            result = await ls.models.complete(
                key=uri,
                preamble=prompt.preamble,
                prefix=prompt.prefix,
                suffix=prompt.suffix,
                names=prompt.names,
            )
        except GenerationCancelled:
            return None  # superseded by a newer keystroke
        except ModelError as err:
            ls.log(f"completion failed: {err}", types.MessageType.Error)
            raise
        finally:
            self._request_ended(uri)
            if (left := self.completing.pop(uri, 1) - 1) > 0:
                self.completing[uri] = left
        self.counts["model"] += 1
        ls.last_completion = result
        gen = result.generation
        ls.last_completion_stats = {
            "reuse": None,
            "contextMs": round(context_ms, 3),
            "promptMs": round(gen.prompt_ms, 3),
            "generationMs": round(gen.generation_ms, 3),
            "promptTokens": gen.prompt_tokens,
            "reusedTokens": gen.reused_tokens,
            "completionTokens": gen.completion_tokens,
            "stopReason": gen.stop_reason,
            "healed": gen.healed,
            "names": len(prompt.names),
            "restored": gen.restored,
            "anchorLine": prompt.anchor_line,
            "windowMoved": prompt.moved,
            "ringVersion": prompt.ring_version,
            "extraChars": prompt.extra_chars,
            "handlerMs": round((time.perf_counter() - started) * 1000, 3),
            "model": result.model,
            "threads": ls.models.completion.engine.budget.threads,
            "fim": result.used_fim,
            "counts": dict(self.counts),
        }
        if not result.text.strip():
            return None
        self.cache.put(uri, cursor.prefix, line_rest, result.text)
        if ls.models.settings.completion_speculate:
            ls.spawn(self.speculate(uri, cursor.prefix, line_rest, prompt, result.text))
        return Answer(result.text, cursor.word, result.model, "model", prompt.names)

    async def speculate(
        self, uri: str, prefix: str, line_rest: str, prompt: Prompt, shown: str
    ) -> str | None:
        """Compute the completion after ``shown`` is accepted (or typed), while nothing waits.

        llama.vim does the same: the next request, at the end of the suggestion, is then a
        cache hit. The model gives the job up for any real request.
        """
        after = prefix + shown
        if self.cache.lookup(uri, after, line_rest) is not None:
            return None
        try:
            result = await self.ls.models.complete(
                key=uri,
                preamble=prompt.preamble,
                prefix=prompt.prefix + shown,
                suffix=prompt.suffix,
                speculative=True,
            )
        except (GenerationCancelled, ModelError):
            return None  # a real request came: it has the model
        if not result.text.strip() or uri not in self.ls.workspace.text_documents:
            return None
        self.cache.put(uri, after, line_rest, result.text)
        self.counts["speculative"] += 1
        return result.text

    # -- warming between requests ------------------------------------------------------------
    def schedule_warm(self, uri: str, delay: float, *, stale: bool) -> None:
        """Warm the cache at the document's last cursor after ``delay`` seconds of quiet."""
        pending = self.timers.pop(uri, None)
        if pending is not None:
            pending.cancel()

        def fire() -> None:
            self.timers.pop(uri, None)
            windows = self.windows()
            if stale and windows is not None:
                windows.mark_stale(uri)
            self.ls.spawn(self.warm(uri, None, background=True))

        self.timers[uri] = asyncio.get_running_loop().call_later(delay, fire)

    # -- extra context -----------------------------------------------------------------------
    def enter(self, uri: str) -> None:
        """The user asks in ``uri``: when that is a switch, the document left joins the ring."""
        previous, self.active = self.active, uri
        if previous is not None and previous != uri:
            self.pick(previous)

    def pick(self, uri: str) -> bool:
        """The lines around ``uri``'s last cursor join the ring now (a stable moment)."""
        ring = self.ring
        windows = self.windows()
        position = self.cursors.get(uri)
        if windows is None or not ring.enabled or position is None:
            return False
        doc = windows.engine.document(uri)
        if doc is None:
            return False
        path = windows.engine.display_path(uri, doc)
        text = doc.source.decode("utf-8", "replace")
        ring.pick(path, text, position.line, doc.language)
        return ring.update()

    def ring_stats(self) -> dict[str, Any]:
        ring = self.ring
        return {
            "version": ring.version,
            "chunks": [f"{c.path}:{c.line + 1}" for c in ring.chunks],
            "queued": len(ring.queued),
            "tokens": ring.tokens,
            "evicted": ring.evicted,
            "counts": dict(self.counts),
        }

    def _request_started(self, uri: str) -> None:
        self.in_flight[uri] = self.in_flight.get(uri, 0) + 1

    def _request_ended(self, uri: str) -> None:
        if (left := self.in_flight.pop(uri, 1) - 1) > 0:
            self.in_flight[uri] = left

    async def warm(
        self, uri: str, position: types.Position | None, *, background: bool = False
    ) -> int:
        """Evaluate the prompt at ``position`` (default: the document's end) ahead of time.

        A background warm (document opened, typing paused) is at the last known cursor and
        never supersedes a request for the document: it is skipped while one is in flight. No
        warm supersedes a completion in flight (an editor's warm on CursorHold arrives while a
        slow completion runs): that completion warms the cache itself.
        """
        ls = self.ls
        if background:
            if self.in_flight.get(uri):
                return 0  # a request in flight warms the cache itself
            position = self.cursors.get(uri)
        else:
            self.enter(uri)  # an editor's warm on entering a buffer is a file switch
            if (timer := self.timers.pop(uri, None)) is not None:
                timer.cancel()  # asked for now: a background warm due later would supersede it
        doc = ls.workspace.text_documents.get(uri)
        if doc is None:
            return 0
        if position is None:
            lines = doc.lines
            last = max(0, len(lines) - 1)
            tail = lines[last].rstrip("\r\n") if lines else ""
            position = types.Position(last, len(tail))
        if not background:
            self._request_started(uri)
        try:
            await ls.models.ensure_loaded()  # prompt windows need the model's token counts
            if background:
                if self.in_flight.get(uri):
                    return 0  # a request came while the model loaded: it warms the cache
                position = self.cursors.get(uri, position)  # the cursor now, after the load
            if self.completing.get(uri):
                return 0  # it would cancel the completion; that warms the cache itself
            doc = ls.workspace.text_documents.get(uri)
            cursor = cursor_at(doc, position) if doc is not None else None
            if cursor is None:
                return 0
            prompt = self.prompt(uri, position, cursor)
            done = await ls.models.warm(
                key=uri,
                preamble=prompt.preamble,
                prefix=prompt.prefix,
                suffix=prompt.suffix,
                background=background,
            )
        except GenerationCancelled:
            return 0  # a real request came first: it does the work
        except ModelError as err:
            ls.log(f"warming the completion model failed: {err}", types.MessageType.Warning)
            return 0
        finally:
            if not background:
                self._request_ended(uri)
        self.counts["warm"] += 1
        self.counts["warmedTokens"] += done
        return done

    # -- document events ---------------------------------------------------------------------
    def opened(self, uri: str) -> None:
        if self.active is not None and self.active != uri:
            self.pick(self.active)  # opening a file leaves the one in use: before the warm
        self.schedule_warm(uri, 0.0, stale=False)

    def changed(self, uri: str, _version: int) -> None:
        if uri in self.cursors:
            self.schedule_warm(uri, IDLE_WARM_S, stale=True)

    def saved(self, uri: str) -> None:
        windows = self.windows()
        if windows is not None:
            windows.mark_stale(uri)
        self.pick(uri)  # what was just written joins the ring (other documents see it later)
        if uri in self.cursors:
            # A stable moment: the new prompt head is evaluated now, in the background.
            self.schedule_warm(uri, 0.0, stale=True)

    def closed(self, uri: str) -> None:
        if self.active == uri:
            self.pick(uri)
            self.active = None
        pending = self.timers.pop(uri, None)
        if pending is not None:
            pending.cancel()
        self.cursors.pop(uri, None)
        self.cache.forget(uri)
        windows = self.windows()
        if windows is not None:
            windows.forget(uri)
        self.ls.models.forget(uri)

    def stats(self) -> dict[str, Any]:
        return dict(self.counts)
