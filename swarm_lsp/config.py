"""Typed settings from swarm.toml, the environment and LSP initializationOptions.

Settings are frozen dataclasses, one per section. On the wire (LSP) names are camelCase; in
Python and in swarm.toml they are snake_case (camelCase is accepted there too). A bad value
never stops the server: it is reported in ``Settings.problems`` and the default is kept.

Order of precedence, lowest first: defaults, ``swarm.toml`` (workspace root, then
``$SWARM_LSP_CONFIG``), environment (``SWARM_LSP_<SECTION>__<KEY>``), initializationOptions,
then workspace/didChangeConfiguration.
"""

from __future__ import annotations

import dataclasses
import os
import re
import tomllib
import types
import typing
from collections.abc import Mapping
from pathlib import Path
from typing import Any


@dataclasses.dataclass(frozen=True, kw_only=True)
class ModelSettings:
    """Local model engine settings."""

    completion_model: str = ""  # GGUF path; empty means the packaged Gemma 3 270M
    chat_model: str = ""  # GGUF path; empty means the packaged SmolLM2-135M-Instruct
    n_ctx: int = 2048
    n_threads: int = 0  # 0: let llama.cpp choose
    completion_max_tokens: int = 48
    completion_max_lines: int = 4
    completion_timeout_ms: int = 3000
    # after a suggestion, compute the one after it (llama.vim does; measured: 1 answer in 5
    # acceptances came from it on a 2-core machine, for a second model run per suggestion)
    completion_speculate: bool = False
    chat_max_tokens: int = 256
    temperature: float = 0.0
    endpoint_url: str = ""  # self-hosted OpenAI-compatible endpoint for big-model work
    endpoint_model: str = ""


@dataclasses.dataclass(frozen=True, kw_only=True)
class ContextSettings:
    """Context engine settings."""

    completion_budget_tokens: int = 768
    # extra context: chunks of code from the files the user left or saved (llama.vim's ring),
    # sent before a completion's own context; it changes at stable moments only (file switch,
    # save, typing paused) and is evaluated in the background then. 0 chunks: off (measured:
    # no hidden-set lift on a 2-core machine, and a file switch's first prompt pays for it)
    ring_chunks: int = 0
    ring_chunk_lines: int = 32
    ring_tokens: int = 512  # the ring's whole budget, on top of completion_budget_tokens
    task_budget_tokens: int = 6000
    max_file_bytes: int = 1_000_000
    max_decompressed_bytes: int = 64 * 1024 * 1024
    index_on_start: bool = True


@dataclasses.dataclass(frozen=True, kw_only=True)
class SwarmSettings:
    """How the server reaches the swarm."""

    # host:port; several (a list, or comma separated): mesh peers, the server fails over between
    # them; empty: discover a mesh on the LAN (with TLS configured), else a local swarm of one
    coordinator: str = ""
    token: str = ""
    tls_ca: str = ""
    tls_cert: str = ""
    tls_key: str = ""
    allowed_hosts: tuple[str, ...] = ()
    peers: tuple[str, ...] = ()  # mesh seed peers HOST:PORT (other subnets); see docs/mesh.md
    # Where a swarm of one (`up`, or the one `serve` starts) listens, so mesh peers can join it:
    # an address of this machine or 0.0.0.0 (needs TLS); empty: 127.0.0.1, a mesh of one.
    listen: str = ""
    routing_table: str = ""  # path to a routing TOML; empty uses the shipped defaults
    autostart: bool = True
    wait_bound_ms: int = 15000  # ask the user when a task would wait longer than this
    sandbox: str = "strict"  # test runs: "strict" (bubblewrap or refuse) or "weak" (fallbacks)
    # codeAction/resolve waits this long for a refactor's edit, then lets it finish in the
    # background (Apply question); below eglot's 10 s request timeout.
    resolve_timeout_ms: int = 8000

    @property
    def coordinators(self) -> tuple[str, ...]:
        """``coordinator`` as a list: several mesh peers may be listed (docs/mesh.md); one
        listed twice is one peer (not a mesh of two)."""
        return tuple(dict.fromkeys(p for p in self.coordinator.replace(",", " ").split() if p))

    @property
    def first_coordinator(self) -> str:
        """The first listed coordinator ('' when none): what one-connection tools dial."""
        return next(iter(self.coordinators), "")


@dataclasses.dataclass(frozen=True, kw_only=True)
class ResearchSettings:
    """Vector store settings."""

    qdrant_url: str = ""  # empty: Qdrant Edge in process, under the workspace cache
    qdrant_path: str = ""
    collection: str = "swarm_code"


@dataclasses.dataclass(frozen=True, kw_only=True)
class Settings:
    """All settings; ``problems`` lists every bad value that was replaced by its default."""

    models: ModelSettings = dataclasses.field(default_factory=ModelSettings)
    context: ContextSettings = dataclasses.field(default_factory=ContextSettings)
    swarm: SwarmSettings = dataclasses.field(default_factory=SwarmSettings)
    research: ResearchSettings = dataclasses.field(default_factory=ResearchSettings)
    problems: tuple[str, ...] = ()


_SECTIONS: dict[str, type] = {
    "models": ModelSettings,
    "context": ContextSettings,
    "swarm": SwarmSettings,
    "research": ResearchSettings,
}


def snake_case(name: str) -> str:
    """``completionMaxTokens`` → ``completion_max_tokens``."""
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


def camel_case(name: str) -> str:
    """``completion_max_tokens`` → ``completionMaxTokens``."""
    head, *rest = name.split("_")
    return head + "".join(part.title() for part in rest)


def _coerce(value: Any, annotation: Any, where: str) -> Any:
    """Convert ``value`` to ``annotation`` or raise ValueError with a readable message."""
    origin = typing.get_origin(annotation)
    if annotation is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in {
            "1",
            "true",
            "yes",
            "on",
            "0",
            "false",
            "no",
            "off",
        }:
            return value.lower() in {"1", "true", "yes", "on"}
        raise ValueError(f"{where}: expected true or false, got {value!r}")
    if annotation is int:
        if isinstance(value, bool):
            raise ValueError(f"{where}: expected an integer, got {value!r}")
        try:
            number = int(value)
        except (TypeError, ValueError):
            raise ValueError(f"{where}: expected an integer, got {value!r}") from None
        if number < 0:
            raise ValueError(f"{where}: must not be negative, got {number}")
        return number
    if annotation is float:
        if isinstance(value, bool):
            raise ValueError(f"{where}: expected a number, got {value!r}")
        try:
            return float(value)
        except (TypeError, ValueError):
            raise ValueError(f"{where}: expected a number, got {value!r}") from None
    if annotation is str:
        if not isinstance(value, str):
            raise ValueError(f"{where}: expected a string, got {value!r}")
        return value
    if origin is tuple:
        if isinstance(value, str):
            value = [part.strip() for part in value.split(",") if part.strip()]
        if not isinstance(value, list | tuple) or not all(isinstance(v, str) for v in value):
            raise ValueError(f"{where}: expected a list of strings, got {value!r}")
        return tuple(value)
    if isinstance(annotation, types.UnionType):  # pragma: no cover - not used yet
        return value
    raise ValueError(f"{where}: unsupported setting type {annotation!r}")


def _merge_section(current: Any, raw: Any, section: str, problems: list[str]) -> Any:
    if not isinstance(raw, Mapping):
        problems.append(f"{section}: expected a table of settings, got {raw!r}")
        return current
    hints = typing.get_type_hints(type(current))
    known = {f.name for f in dataclasses.fields(current)}
    changes: dict[str, Any] = {}
    for key, value in raw.items():
        name = snake_case(str(key))
        where = f"{section}.{camel_case(name)}"
        if name not in known:
            problems.append(f"{where}: unknown setting (ignored)")
            continue
        if where == "swarm.coordinator" and isinstance(value, list | tuple):
            value = ",".join(str(v) for v in value)  # several mesh peers (docs/mesh.md)
        try:
            changes[name] = _coerce(value, hints[name], where)
        except ValueError as err:
            problems.append(f"{err}; using the default")
    return dataclasses.replace(current, **changes)


def merge(settings: Settings, raw: Mapping[str, Any] | None) -> Settings:
    """Apply a nested mapping (sections of keys) on top of ``settings``."""
    if not raw:
        return settings
    problems = list(settings.problems)
    sections: dict[str, Any] = {}
    if not isinstance(raw, Mapping):
        problems.append(f"settings: expected an object, got {raw!r}; using the defaults")
        return dataclasses.replace(settings, problems=tuple(problems))
    for key, value in raw.items():
        name = snake_case(str(key))
        if name not in _SECTIONS:
            problems.append(f"{key}: unknown settings section (ignored)")
            continue
        sections[name] = _merge_section(getattr(settings, name), value, name, problems)
    return dataclasses.replace(settings, **sections, problems=tuple(problems))


def from_environment(settings: Settings, environ: Mapping[str, str] | None = None) -> Settings:
    """Apply ``SWARM_LSP_<SECTION>__<KEY>=value`` variables."""
    environ = os.environ if environ is None else environ
    raw: dict[str, dict[str, str]] = {}
    for key, value in environ.items():
        if not key.startswith("SWARM_LSP_") or "__" not in key:
            continue
        section, _, name = key[len("SWARM_LSP_") :].partition("__")
        raw.setdefault(section.lower(), {})[name.lower()] = value
    return merge(settings, raw)


def from_toml(settings: Settings, path: Path) -> Settings:
    """Apply a swarm.toml file; a file that does not parse is a reported problem."""
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return settings
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as err:
        problem = f"{path}: cannot read settings ({err}); using the defaults"
        return dataclasses.replace(settings, problems=(*settings.problems, problem))
    return merge(settings, data)


def load(
    workspace_root: Path | None = None, init_options: Mapping[str, Any] | None = None
) -> Settings:
    """Build settings in precedence order: defaults, files, environment, client options."""
    settings = Settings()
    if workspace_root is not None:
        settings = from_toml(settings, workspace_root / "swarm.toml")
    extra = os.environ.get("SWARM_LSP_CONFIG")
    if extra:
        settings = from_toml(settings, Path(extra))
    settings = from_environment(settings)
    return merge(settings, init_options)


def to_wire(settings: Settings) -> dict[str, dict[str, Any]]:
    """Settings as camelCase JSON, as an editor would send them."""
    out: dict[str, dict[str, Any]] = {}
    for name in _SECTIONS:
        section = getattr(settings, name)
        out[camel_case(name)] = {
            camel_case(f.name): (list(v) if isinstance(v := getattr(section, f.name), tuple) else v)
            for f in dataclasses.fields(section)
        }
    return out
