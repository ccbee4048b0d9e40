"""Chat: the custom request ``swarm/chat`` and the command ``swarm.chat``.

Tokens stream as ``$/progress`` reports whose ``message`` is the new piece of text (clients
append them); the response carries the whole answer.
"""

from __future__ import annotations

import time
from typing import Any

from pygls.exceptions import JsonRpcInvalidParams

from swarm_lsp.server.app import SwarmLanguageServer
from swarm_lsp.server.progress import ProgressStream

CHAT_METHOD = "swarm/chat"
CHAT_COMMAND = "swarm.chat"
MAX_PROMPT_CHARS = 32_000


def _field(params: Any, name: str, default: Any = None) -> Any:
    if isinstance(params, dict):
        return params.get(name, default)
    return getattr(params, name, default)


def parse_chat_params(params: Any) -> tuple[str, list[dict[str, str]], Any]:
    """(prompt, history, workDoneToken) or JsonRpcInvalidParams with what is wrong."""
    prompt = _field(params, "prompt")
    if not isinstance(prompt, str) or not prompt.strip():
        raise JsonRpcInvalidParams("swarm/chat: 'prompt' must be a non-empty string")
    if len(prompt) > MAX_PROMPT_CHARS:
        raise JsonRpcInvalidParams(f"swarm/chat: 'prompt' is over {MAX_PROMPT_CHARS} characters")
    history_raw = _field(params, "history") or []
    history: list[dict[str, str]] = []
    if not isinstance(history_raw, list):
        raise JsonRpcInvalidParams("swarm/chat: 'history' must be a list of {role, content}")
    for turn in history_raw:
        role, content = _field(turn, "role"), _field(turn, "content")
        if role not in ("user", "assistant") or not isinstance(content, str):
            raise JsonRpcInvalidParams(
                "swarm/chat: each history turn needs role user|assistant and content"
            )
        history.append({"role": role, "content": content})
    return prompt, history, _field(params, "workDoneToken")


async def run_chat(
    ls: SwarmLanguageServer, prompt: str, history: list[dict[str, str]], token: Any
) -> dict[str, Any]:
    start = time.perf_counter()
    progress = await ProgressStream.open(ls, token, "Swarm chat")
    try:
        generation = await ls.models.chat(
            [*history, {"role": "user", "content": prompt}], on_token=progress.report_threadsafe
        )
    finally:
        # Let queued token reports go out before the end notification.
        progress.loop.call_soon(progress.end)
    return {
        "text": generation.text,
        "model": ls.models.chat_scheduler.engine.name,
        "elapsedMs": round((time.perf_counter() - start) * 1000),
        "stopReason": generation.stop_reason,
    }


def register(server: SwarmLanguageServer) -> None:
    @server.feature(CHAT_METHOD)
    async def chat(ls: SwarmLanguageServer, params: Any) -> dict[str, Any]:
        prompt, history, token = parse_chat_params(params)
        return await run_chat(ls, prompt, history, token)

    @server.command(CHAT_COMMAND)
    async def chat_command(ls: SwarmLanguageServer, *args: Any) -> dict[str, Any]:
        if not args or not isinstance(args[0], str):
            raise JsonRpcInvalidParams("swarm.chat: expected arguments [prompt]")
        prompt, history, token = parse_chat_params({"prompt": args[0]})
        return await run_chat(ls, prompt, history, token)
