"""The routing table: task type, priority and complexity → role, machine, model size, timeout.

A TOML file (defaults shipped as ``routing_default.toml``). ``[types]`` maps task types to
worker roles; each ``[[route]]`` has the seed's fields (``taskType``, ``priority``,
``complexity``, ``machine``, ``modelSize``, ``timeout`` in ms); the first matching route wins
and a missing priority or complexity matches any. A table that does not parse or has a bad
value is refused with :class:`RoutingTableError` naming the line at fault.
"""

from __future__ import annotations

import dataclasses
import re
import tomllib
from importlib import resources
from pathlib import Path
from typing import Any

from swarm_lsp.errors import RoutingTableError, UnknownTaskTypeError

PRIORITIES = ("immediate", "background", "batch")
COMPLEXITIES = ("simple", "moderate", "complex")
MODEL_SIZES = ("7B", "13B", "70B", "180B")
DEFAULT_PRIORITY = "background"
DEFAULT_COMPLEXITY = "simple"
_ROUTE_KEYS = {"taskType", "priority", "complexity", "machine", "modelSize", "timeout"}
_ROLE_NAME = re.compile(r"^[a-z][a-z0-9_-]{0,31}$")


def model_size_rank(size: str) -> int:
    """``"13B"`` → 13 (for comparing what a worker can run with what a route needs)."""
    return int(size[:-1]) if size.endswith("B") and size[:-1].isdigit() else 0


@dataclasses.dataclass(frozen=True, kw_only=True)
class Route:
    task_type: str
    role: str
    priority: str | None  # None: any
    complexity: str | None
    machine: str
    model_size: str
    timeout_ms: int

    def matches(self, task_type: str, priority: str, complexity: str) -> bool:
        return (
            self.task_type == task_type
            and (self.priority is None or self.priority == priority)
            and (self.complexity is None or self.complexity == complexity)
        )


@dataclasses.dataclass(frozen=True)
class RoutingTable:
    types: dict[str, str]  # task type -> role
    routes: tuple[Route, ...]
    wait_bounds: dict[str, int]  # priority -> ms (0: never ask)
    source: str = "<defaults>"

    @property
    def task_types(self) -> tuple[str, ...]:
        return tuple(sorted(self.types))

    def route(self, task_type: str, priority: str = "", complexity: str = "") -> Route:
        """The first route that matches; UnknownTaskTypeError / ValueError on bad input."""
        if task_type not in self.types:
            known = ", ".join(self.task_types)
            raise UnknownTaskTypeError(f"unknown task type {task_type!r}; known types: {known}")
        priority = priority or DEFAULT_PRIORITY
        complexity = complexity or DEFAULT_COMPLEXITY
        if priority not in PRIORITIES:
            raise ValueError(f"unknown priority {priority!r}; use one of {', '.join(PRIORITIES)}")
        if complexity not in COMPLEXITIES:
            raise ValueError(
                f"unknown complexity {complexity!r}; use one of {', '.join(COMPLEXITIES)}"
            )
        for route in self.routes:
            if route.matches(task_type, priority, complexity):
                return route
        # Every type has a route: load() adds a catch-all for types without one.
        raise UnknownTaskTypeError(f"no route for task type {task_type!r}")  # pragma: no cover

    def wait_bound_ms(self, priority: str) -> int:
        return self.wait_bounds.get(priority or DEFAULT_PRIORITY, 0)


def _line_of(lines: list[str], pattern: str, start: int = 0, stop: int | None = None) -> int:
    """1-based line of the first line from ``start`` matching ``pattern`` (0 if none)."""
    regex = re.compile(pattern)
    for index in range(start, len(lines) if stop is None else min(stop, len(lines))):
        if regex.search(lines[index]):
            return index + 1
    return 0


class _Locator:
    """Finds source lines for entries of a parsed table, for error messages."""

    def __init__(self, text: str, source: str) -> None:
        self.lines = text.splitlines()
        self.source = source
        self.route_starts = [
            i for i, line in enumerate(self.lines) if re.match(r"^\s*\[\[\s*route\s*\]\]", line)
        ]

    def route_key(self, index: int, key: str) -> int:
        if index < len(self.route_starts):
            start = self.route_starts[index]
            stop = self.route_starts[index + 1] if index + 1 < len(self.route_starts) else None
            found = _line_of(self.lines, rf"^\s*{re.escape(key)}\s*=", start, stop)
            return found or start + 1
        return _line_of(self.lines, r"^\s*route\s*=")

    def table_key(self, table: str, key: str) -> int:
        start = _line_of(self.lines, rf"^\s*\[\s*{re.escape(table)}\s*\]")
        if not start:
            return 0
        return _line_of(self.lines, rf"^\s*\"?{re.escape(key)}\"?\s*=", start) or start

    def error(self, line: int, message: str) -> RoutingTableError:
        where = f"{self.source}, line {line}" if line else self.source
        return RoutingTableError(f"routing table {where}: {message}")


def parse(text: str, source: str = "<string>") -> RoutingTable:
    """Parse and check a routing table; RoutingTableError names the line at fault."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as err:
        match = re.search(r"line (\d+)", str(err))
        line = int(match.group(1)) if match else 0
        raise _Locator(text, source).error(line, f"not valid TOML ({err})") from err
    where = _Locator(text, source)
    unknown = set(data) - {"types", "route", "waitBounds", "wait_bounds"}
    if unknown:
        name = sorted(unknown)[0]
        line = _line_of(where.lines, rf"^\s*\[*\s*{re.escape(name)}\b")
        raise where.error(line, f"unknown section {name!r} (expected types, route, waitBounds)")

    types_raw = data.get("types", {})
    if not isinstance(types_raw, dict) or not types_raw:
        raise where.error(
            _line_of(where.lines, r"^\s*\[\s*types\s*\]"), "[types] must map task types to roles"
        )
    types: dict[str, str] = {}
    for task_type, role in types_raw.items():
        if not isinstance(role, str) or not _ROLE_NAME.match(role):
            raise where.error(
                where.table_key("types", task_type),
                f"task type {task_type!r} needs a role name (lowercase word), got {role!r}",
            )
        if not _ROLE_NAME.match(task_type):
            raise where.error(
                where.table_key("types", task_type), f"bad task type name {task_type!r}"
            )
        types[task_type] = role

    bounds_raw = data.get("waitBounds", data.get("wait_bounds", {}))
    wait_bounds = {"immediate": 2000, "background": 15000, "batch": 0}
    if not isinstance(bounds_raw, dict):
        raise where.error(0, "[waitBounds] must be a table")
    for priority, bound in bounds_raw.items():
        line = where.table_key("waitBounds", priority) or where.table_key("wait_bounds", priority)
        if priority not in PRIORITIES:
            raise where.error(line, f"waitBounds: unknown priority {priority!r}")
        if isinstance(bound, bool) or not isinstance(bound, int) or bound < 0:
            raise where.error(line, f"waitBounds.{priority} must be a whole number of ms >= 0")
        wait_bounds[priority] = bound

    routes_raw = data.get("route", [])
    if not isinstance(routes_raw, list):
        raise where.error(
            _line_of(where.lines, r"^\s*route\s*="), "route must be [[route]] entries"
        )
    routes: list[Route] = []
    for index, raw in enumerate(routes_raw):
        routes.append(_parse_route(raw, index, types, where))
    for task_type, role in types.items():
        if not any(r.task_type == task_type for r in routes):
            routes.append(
                Route(
                    task_type=task_type,
                    role=role,
                    priority=None,
                    complexity=None,
                    machine="any",
                    model_size="7B",
                    timeout_ms=60_000,
                )
            )
    return RoutingTable(types, tuple(routes), wait_bounds, source)


def _parse_route(raw: Any, index: int, types: dict[str, str], where: _Locator) -> Route:
    if not isinstance(raw, dict):
        raise where.error(where.route_key(index, "taskType"), f"route {index + 1} is not a table")

    def fail(key: str, message: str) -> RoutingTableError:
        return where.error(where.route_key(index, key), f"route {index + 1}: {message}")

    for key in raw:
        if key not in _ROUTE_KEYS:
            raise fail(key, f"unknown field {key!r} (fields: {', '.join(sorted(_ROUTE_KEYS))})")
    task_type = raw.get("taskType")
    if not isinstance(task_type, str):
        raise fail("taskType", "taskType is required")
    if task_type not in types:
        raise fail("taskType", f"taskType {task_type!r} is not listed in [types]")
    priority = raw.get("priority")
    if priority is not None and priority not in PRIORITIES:
        raise fail("priority", f"priority {priority!r} is not one of {', '.join(PRIORITIES)}")
    complexity = raw.get("complexity")
    if complexity is not None and complexity not in COMPLEXITIES:
        raise fail(
            "complexity", f"complexity {complexity!r} is not one of {', '.join(COMPLEXITIES)}"
        )
    machine = raw.get("machine", "any")
    if not isinstance(machine, str) or not machine.strip():
        raise fail("machine", "machine must be a name, 'any' or 'local'")
    model_size = raw.get("modelSize", "7B")
    if model_size not in MODEL_SIZES:
        raise fail("modelSize", f"modelSize {model_size!r} is not one of {', '.join(MODEL_SIZES)}")
    timeout = raw.get("timeout", 60_000)
    if isinstance(timeout, bool) or not isinstance(timeout, int) or timeout <= 0:
        raise fail("timeout", f"timeout must be a positive number of ms, got {timeout!r}")
    return Route(
        task_type=task_type,
        role=types[task_type],
        priority=priority,
        complexity=complexity,
        machine=machine.strip(),
        model_size=model_size,
        timeout_ms=timeout,
    )


def default_table_text() -> str:
    return resources.files("swarm_lsp.dispatch").joinpath("routing_default.toml").read_text("utf-8")


def load(path: str | Path | None = None) -> RoutingTable:
    """The table at ``path``, or the shipped defaults when ``path`` is empty."""
    if not path:
        return parse(default_table_text(), "<defaults>")
    file = Path(path)
    try:
        text = file.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as err:
        raise RoutingTableError(f"cannot read routing table {file}: {err}") from err
    return parse(text, str(file))
