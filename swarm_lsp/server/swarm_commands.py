"""The swarm's commands (``workspace/executeCommand``): arguments checked, work started.

Commands and arguments (as the VS Code, Neovim and Emacs clients send them)::

    swarm.ask           [question]                      → answer, citations
    swarm.index         []                              → summary, stats
    swarm.refactor      [uri, range, instruction]       → applied, summary, explanation, diff
    swarm.explain       [uri, range, options?]          → markdown, model
    swarm.review        [uri, range, options?]          → markdown, model
    swarm.generateTests [uri, range, options?]          → applied, summary, file
    swarm.research      [uri, position, options?]       → answer, citations, markdown, symbol
    swarm.runTests      [uri?, options?]                → summary, passed, diagnostics
    swarm.status        []                              → the ``swarm/status`` object (at once)
                                                          (also the ``swarm/status`` request)
    swarm.cancel        [taskId]                        → {"cancelled": bool} (at once)

Every command but status and cancel starts its work in the background and answers at once
with ``{"status": "started", "taskId", "token"?, "command", "title"}``; what is listed after
the arrow arrives later as the ``result`` of a ``swarm/result`` notification (see
:mod:`swarm_lsp.server.jobs`), progress goes on the server-created ``token``. Bad arguments
are still refused at once with InvalidParams. ``options`` is ``{"show": true}`` when a code
action runs the command: the result is then also put in front of the user (a Markdown
document, or a message for clients without ``window/showDocument``).
"""

from __future__ import annotations

from typing import Any

from lsprotocol import types
from pygls.exceptions import JsonRpcInvalidParams, JsonRpcServerError

from swarm_lsp.server.app import SwarmLanguageServer
from swarm_lsp.server.jobs import Jobs
from swarm_lsp.server.swarm_actions import Span, SwarmActions
from swarm_lsp.server.swarm_parts import swarm_of
from swarm_lsp.server.swarm_status import STATUS_NOTIFICATION

ASK = "swarm.ask"
INDEX = "swarm.index"
REFACTOR = "swarm.refactor"
EXPLAIN = "swarm.explain"
REVIEW = "swarm.review"
GENERATE_TESTS = "swarm.generateTests"
RESEARCH = "swarm.research"
RUN_TESTS = "swarm.runTests"
STATUS = "swarm.status"
CANCEL = "swarm.cancel"
COMMANDS = (
    ASK,
    INDEX,
    REFACTOR,
    EXPLAIN,
    REVIEW,
    GENERATE_TESTS,
    RESEARCH,
    RUN_TESTS,
    STATUS,
    CANCEL,
)

SERVER_ERROR = -32001
MAX_QUESTION_CHARS = 8000

__all__ = ["COMMANDS", "Span", "SwarmActions", "parse_position", "parse_range", "parse_uri"]


# -- arguments ---------------------------------------------------------------------------------


def _get(value: Any, name: str) -> Any:
    if isinstance(value, dict):
        return value.get(name)
    return getattr(value, name, None)


def parse_uri(command: str, value: Any) -> str:
    if not isinstance(value, str) or ("://" not in value and not value.startswith("untitled:")):
        raise JsonRpcInvalidParams(
            f"{command}: the first argument must be a document URI, got {value!r}"
        )
    return value


def parse_position(command: str, value: Any) -> tuple[int, int]:
    line, character = _get(value, "line"), _get(value, "character")
    if not all(
        isinstance(v, int) and not isinstance(v, bool) and v >= 0 for v in (line, character)
    ):
        raise JsonRpcInvalidParams(
            f"{command}: a position must be {{line, character}} with integers >= 0, got {value!r}"
        )
    return line, character


def parse_range(command: str, value: Any) -> Span:
    start, end = _get(value, "start"), _get(value, "end")
    if start is None or end is None:
        raise JsonRpcInvalidParams(f"{command}: a range must be {{start, end}}, got {value!r}")
    (sl, sc), (el, ec) = parse_position(command, start), parse_position(command, end)
    if (el, ec) < (sl, sc):
        raise JsonRpcInvalidParams(f"{command}: the range ends before it starts: {value!r}")
    return Span(sl, sc, el, ec)


def _options(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _expect(command: str, args: tuple[Any, ...], low: int, high: int, usage: str) -> None:
    if not low <= len(args) <= high:
        raise JsonRpcInvalidParams(f"{command}: expected arguments {usage}, got {len(args)}")


# -- registration ------------------------------------------------------------------------------


def _work(ls: SwarmLanguageServer) -> tuple[SwarmActions, Jobs]:
    parts = swarm_of(ls)
    return parts.actions, parts.jobs


def _show(args: tuple[Any, ...], index: int) -> bool:
    return bool(_options(args[index] if len(args) > index else None).get("show"))


def register_commands(server: SwarmLanguageServer) -> None:
    """The commands; each handler finds the swarm's state on ``ls`` (``swarm_of``)."""

    @server.command(ASK)
    def ask(ls: SwarmLanguageServer, *args: Any) -> dict[str, Any]:
        _expect(ASK, args, 1, 1, "[question]")
        actions, jobs = _work(ls)
        question = args[0]
        if not isinstance(question, str) or not question.strip():
            raise JsonRpcInvalidParams(f"{ASK}: the question must be a non-empty string")
        if len(question) > MAX_QUESTION_CHARS:
            raise JsonRpcInvalidParams(
                f"{ASK}: the question is over {MAX_QUESTION_CHARS} characters"
            )
        asked = question.strip()
        return jobs.start(ASK, "Swarm: Ask", lambda p: actions.ask(asked, p))

    @server.command(INDEX)
    def index(ls: SwarmLanguageServer, *args: Any) -> dict[str, Any]:
        _expect(INDEX, args, 0, 1, "[]")
        actions, jobs = _work(ls)
        return jobs.start(INDEX, "Swarm: indexing for research", actions.index)

    @server.command(REFACTOR)
    def refactor(ls: SwarmLanguageServer, *args: Any) -> dict[str, Any]:
        _expect(REFACTOR, args, 3, 3, "[uri, range, instruction]")
        actions, jobs = _work(ls)
        uri, span = parse_uri(REFACTOR, args[0]), parse_range(REFACTOR, args[1])
        instruction = args[2]
        if not isinstance(instruction, str) or not instruction.strip():
            raise JsonRpcInvalidParams(f"{REFACTOR}: the instruction must be a non-empty string")
        actions.target(uri, span)  # an unreadable document is refused now, not later
        wanted = instruction.strip()
        return jobs.start(
            REFACTOR, "Swarm: Refactor", lambda p: actions.refactor(uri, span, wanted, p)
        )

    def explain_like(kind: str, command: str, title: str) -> Any:
        def handler(ls: SwarmLanguageServer, *args: Any) -> dict[str, Any]:
            _expect(command, args, 2, 3, "[uri, range, options?]")
            actions, jobs = _work(ls)
            uri, span = parse_uri(command, args[0]), parse_range(command, args[1])
            actions.target(uri, span)
            show = _show(args, 2)
            return jobs.start(command, title, lambda p: actions.explain(kind, uri, span, p, show))

        return handler

    server.command(EXPLAIN)(explain_like("explain", EXPLAIN, "Swarm: Explain"))
    server.command(REVIEW)(explain_like("review", REVIEW, "Swarm: Review"))

    @server.command(GENERATE_TESTS)
    def generate_tests(ls: SwarmLanguageServer, *args: Any) -> dict[str, Any]:
        _expect(GENERATE_TESTS, args, 2, 3, "[uri, range, options?]")
        actions, jobs = _work(ls)
        uri, span = parse_uri(GENERATE_TESTS, args[0]), parse_range(GENERATE_TESTS, args[1])
        actions.target(uri, span)
        return jobs.start(
            GENERATE_TESTS, "Swarm: Generate tests", lambda p: actions.generate_tests(uri, span, p)
        )

    @server.command(RESEARCH)
    def research(ls: SwarmLanguageServer, *args: Any) -> dict[str, Any]:
        _expect(RESEARCH, args, 2, 3, "[uri, position, options?]")
        actions, jobs = _work(ls)
        uri = parse_uri(RESEARCH, args[0])
        line, character = parse_position(RESEARCH, args[1])
        symbol, question, hint = actions.symbol_question(uri, line, character)
        show = _show(args, 2)
        return jobs.start(
            RESEARCH,
            f"Swarm: Research {symbol}",
            lambda p: actions.research_symbol(symbol, question, hint, p, show),
        )

    @server.command(RUN_TESTS)
    def run_tests(ls: SwarmLanguageServer, *args: Any) -> dict[str, Any]:
        _expect(RUN_TESTS, args, 0, 2, "[uri?, options?]")
        actions, jobs = _work(ls)
        if args and args[0] is not None:
            parse_uri(RUN_TESTS, args[0])
        if ls.workspace_root is None:
            raise JsonRpcServerError("running tests needs a workspace folder", SERVER_ERROR)
        show = _show(args, 1)
        return jobs.start(RUN_TESTS, "Swarm: running tests", lambda p: actions.run_tests(p, show))

    @server.command(STATUS)
    async def status(ls: SwarmLanguageServer, *args: Any) -> dict[str, Any]:
        _expect(STATUS, args, 0, 0, "[]")
        return await swarm_of(ls).bridge.refresh()

    @server.feature(STATUS_NOTIFICATION)
    async def status_request(ls: SwarmLanguageServer, *args: Any) -> dict[str, Any]:
        """``swarm/status`` as a request: the same object, asked now (peers, task owners)."""
        return await swarm_of(ls).bridge.refresh()

    @server.command(CANCEL)
    def cancel(ls: SwarmLanguageServer, *args: Any) -> dict[str, Any]:
        _expect(CANCEL, args, 1, 1, "[taskId]")
        if not isinstance(args[0], str):
            raise JsonRpcInvalidParams(f"{CANCEL}: the task id must be a string")
        return {"cancelled": swarm_of(ls).jobs.cancel(args[0])}

    @server.feature(types.WINDOW_WORK_DONE_PROGRESS_CANCEL)
    def progress_cancelled(
        ls: SwarmLanguageServer, params: types.WorkDoneProgressCancelParams
    ) -> None:
        swarm_of(ls).jobs.cancel_token(params.token)
