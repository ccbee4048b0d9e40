"""A small client for a self-hosted OpenAI-compatible endpoint (llama.cpp server, Ollama, vLLM).

Standard library only (``http.client``): no cloud SDK is ever installed. Every request first
passes the locality guard (:func:`swarm_lsp.dispatch.locality.check_peer`), so only hosts the
user owns are reached. ``chat`` and ``complete`` stream by default (server-sent events, one
``data: {...}`` line per chunk, ``data: [DONE]`` at the end), calling ``on_token`` for each
piece and stopping when ``cancel`` is set; ``stream=False`` reads one JSON body instead.

The result has the same shape as :class:`swarm_lsp.models.llama_engine.Generation` where it
matters to callers: ``.text`` and ``.stop_reason``.
"""

from __future__ import annotations

import dataclasses
import http.client
import json
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from typing import Any
from urllib.parse import urlsplit

from swarm_lsp.dispatch.locality import check_peer
from swarm_lsp.errors import ModelError

TokenCallback = Callable[[str], None]


@dataclasses.dataclass
class EndpointGeneration:
    """What the endpoint produced."""

    text: str
    stop_reason: str  # stop | length | cancelled | deadline
    completion_tokens: int
    total_ms: float


class OpenAIEndpoint:
    """Chat and completion requests to ``base_url`` (``http://host:port`` or ``.../v1``)."""

    def __init__(
        self,
        base_url: str,
        *,
        model: str = "",
        allowed_hosts: Iterable[str] = (),
        api_key: str = "",
        timeout_s: float = 300.0,
    ) -> None:
        parts = urlsplit(base_url.strip())
        if parts.scheme not in {"http", "https"} or not parts.hostname:
            raise ModelError(
                f"model endpoint {base_url!r} is not an http(s) URL such as http://127.0.0.1:8080"
            )
        self.base_url = base_url.strip()
        self.scheme = parts.scheme
        self.host = parts.hostname
        self.port = parts.port
        path = parts.path.rstrip("/")
        self.prefix = path if path.endswith("/v1") else f"{path}/v1"
        self.model = model
        self.allowed_hosts = tuple(allowed_hosts)
        self.api_key = api_key  # a self-hosted server's own key, if it wants one
        self.timeout_s = timeout_s

    @property
    def name(self) -> str:
        return f"{self.model or 'model'} at {self.base_url}"

    def _connect(self) -> http.client.HTTPConnection:
        # The guard runs on every request: DNS may have changed since the last one.
        check_peer(self.base_url, self.allowed_hosts)
        if self.scheme == "https":
            return http.client.HTTPSConnection(self.host, self.port, timeout=self.timeout_s)
        return http.client.HTTPConnection(self.host, self.port, timeout=self.timeout_s)

    def _headers(self, stream: bool) -> dict[str, str]:
        headers = {"Content-Type": "application/json", "Accept": "application/json"}
        if stream:
            headers["Accept"] = "text/event-stream"
        if self.api_key:
            headers["Authorization"] = f"Bearer {self.api_key}"
        return headers

    def _post(
        self,
        route: str,
        body: dict[str, Any],
        *,
        stream: bool,
        delta: Callable[[dict[str, Any]], str],
        cancel: threading.Event | None,
        on_token: TokenCallback | None,
        deadline: float | None,
    ) -> EndpointGeneration:
        start = time.perf_counter()
        if cancel is not None and cancel.is_set():
            return EndpointGeneration("", "cancelled", 0, 0.0)
        if self.model:
            body["model"] = self.model
        body["stream"] = stream
        connection = self._connect()
        try:
            try:
                connection.request(
                    "POST",
                    f"{self.prefix}{route}",
                    body=json.dumps(body).encode("utf-8"),
                    headers=self._headers(stream),
                )
                response = connection.getresponse()
            except (OSError, http.client.HTTPException) as err:
                raise ModelError(f"cannot reach the model endpoint {self.base_url}: {err}") from err
            if response.status != 200:
                detail = response.read(2000).decode("utf-8", "replace")
                raise ModelError(
                    f"model endpoint {self.base_url} answered HTTP {response.status}: {detail}"
                )
            pieces: list[str] = []
            stop_reason = "stop"
            count = 0
            chunks = (
                _sse_events(response)
                if stream
                else iter([_json(response.read().decode("utf-8", "replace"))])
            )
            try:
                for event in chunks:
                    choices = event.get("choices") or [{}]
                    piece = delta(choices[0])
                    if piece:
                        pieces.append(piece)
                        count += 1
                        if on_token is not None:
                            on_token(piece)
                    if choices[0].get("finish_reason") == "length":
                        stop_reason = "length"
                    if cancel is not None and cancel.is_set():
                        stop_reason = "cancelled"
                        break
                    if deadline is not None and time.monotonic() >= deadline:
                        stop_reason = "deadline"
                        break
            except (OSError, http.client.HTTPException) as err:
                raise ModelError(f"the model endpoint {self.base_url} broke off: {err}") from err
        finally:
            connection.close()
        return EndpointGeneration(
            "".join(pieces), stop_reason, count, (time.perf_counter() - start) * 1000
        )

    def chat(
        self,
        messages: list[dict[str, str]],
        *,
        max_tokens: int,
        temperature: float = 0.2,
        cancel: threading.Event | None = None,
        on_token: TokenCallback | None = None,
        deadline: float | None = None,
        stream: bool = True,
    ) -> EndpointGeneration:
        """``POST /v1/chat/completions``."""

        def delta(choice: dict[str, Any]) -> str:
            part = choice.get("delta") if stream else choice.get("message")
            return str((part or {}).get("content") or "")

        return self._post(
            "/chat/completions",
            {"messages": messages, "max_tokens": max_tokens, "temperature": temperature},
            stream=stream,
            delta=delta,
            cancel=cancel,
            on_token=on_token,
            deadline=deadline,
        )

    def complete(
        self,
        prompt: str,
        *,
        max_tokens: int,
        stop: list[str] | None = None,
        temperature: float = 0.0,
        cancel: threading.Event | None = None,
        on_token: TokenCallback | None = None,
        deadline: float | None = None,
        stream: bool = True,
    ) -> EndpointGeneration:
        """``POST /v1/completions``."""
        body: dict[str, Any] = {
            "prompt": prompt,
            "max_tokens": max_tokens,
            "temperature": temperature,
        }
        if stop:
            body["stop"] = stop
        return self._post(
            "/completions",
            body,
            stream=stream,
            delta=lambda choice: str(choice.get("text") or ""),
            cancel=cancel,
            on_token=on_token,
            deadline=deadline,
        )


def _json(text: str) -> dict[str, Any]:
    try:
        data = json.loads(text)
    except ValueError as err:
        raise ModelError(
            f"the model endpoint sent something that is not JSON: {text[:200]!r}"
        ) from err
    if not isinstance(data, dict):
        raise ModelError(f"the model endpoint sent an unexpected reply: {text[:200]!r}")
    if "error" in data and not data.get("choices"):
        raise ModelError(f"the model endpoint reported an error: {data['error']}")
    return data


def _sse_events(response: http.client.HTTPResponse) -> Iterator[dict[str, Any]]:
    """Parse server-sent events: ``data:`` lines, events separated by blank lines."""
    data_lines: list[str] = []
    while True:
        raw = response.readline()
        if not raw:
            break
        line = raw.decode("utf-8", "replace").rstrip("\r\n")
        if line.startswith(":"):
            continue  # comment / keep-alive
        if line.startswith("data:"):
            data_lines.append(line[5:].lstrip())
            continue
        if line == "" and data_lines:
            payload = "\n".join(data_lines)
            data_lines = []
            if payload.strip() == "[DONE]":
                return
            yield _json(payload)
    if data_lines:
        payload = "\n".join(data_lines)
        if payload.strip() != "[DONE]":
            yield _json(payload)
