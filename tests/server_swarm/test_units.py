"""Plain pieces of the swarm features: settings for the local swarm's children, status params,
diagnostics grouping, snapshots, argument parsing and code-action kinds."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from pygls.exceptions import JsonRpcInvalidParams

from swarm_lsp.config import Settings, merge
from swarm_lsp.dispatch.client import Machine, SwarmStatus, TaskSummary
from swarm_lsp.server.codeactions import KINDS, wanted
from swarm_lsp.server.diagnostics import group_by_file
from swarm_lsp.server.swarm_commands import Span, parse_position, parse_range, parse_uri
from swarm_lsp.server.swarm_local import child_environment
from swarm_lsp.server.swarm_status import roles_available, status_params
from swarm_lsp.server.task_payloads import (
    symbol_at,
    where_tests_go,
    word_at,
    workspace_snapshot,
)


def test_child_environment_passes_only_changed_settings() -> None:
    settings = merge(
        Settings(),
        {
            "models": {"endpointUrl": "http://127.0.0.1:8080", "chatMaxTokens": 64},
            "swarm": {"coordinator": "10.0.0.2:1", "token": "secret", "routingTable": "/r.toml"},
            "research": {"collection": "mine"},
        },
    )
    env = child_environment(settings)
    assert env == {
        "SWARM_LSP_MODELS__ENDPOINT_URL": "http://127.0.0.1:8080",
        "SWARM_LSP_MODELS__CHAT_MAX_TOKENS": "64",
        "SWARM_LSP_SWARM__ROUTING_TABLE": "/r.toml",
        "SWARM_LSP_RESEARCH__COLLECTION": "mine",
    }
    assert child_environment(Settings()) == {}


def _status() -> SwarmStatus:
    def machine(name: str, roles: tuple[str, ...], running: int, draining: bool) -> Machine:
        return Machine(
            worker_id=f"id-{name}",
            name=name,
            host="127.0.0.1",
            roles=roles,
            model_sizes=(),
            capacity=2,
            running=running,
            load=0.5,
            last_heartbeat_ms_ago=10,
            draining=draining,
            peer="ipv4:127.0.0.1:5",
            completed=3,
        )

    return SwarmStatus(
        coordinator="127.0.0.1:7000",
        machines=(machine("a", ("refactor",), 1, False), machine("b", ("test",), 2, True)),
        queues={"refactor": 1},
        queue_depth=1,
        recent=(
            TaskSummary(
                task_id="t1",
                type="refactor",
                state="SUCCEEDED",
                worker="a",
                submitted_ms=1,
                duration_ms=2,
                fallback="",
            ),
        ),
        counts={},
        local_roles=("echo",),
        uptime_ms=5,
    )


PROTOCOL_FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "protocol"


def test_status_shape_is_the_fixture_the_editor_tests_read() -> None:
    # tests/fixtures/protocol/status.json is read by the Lua and TypeScript tests as well.
    fixture = json.loads((PROTOCOL_FIXTURES / "status.json").read_text())
    assert status_params("ready", "127.0.0.1:7000", _status()) == fixture


def test_status_params_match_what_the_clients_parse() -> None:
    params = status_params("ready", "127.0.0.1:7000", _status())
    assert params["state"] == "ready"
    assert params["machines"][0] == {
        "id": "a",
        "host": "127.0.0.1",
        "roles": ["refactor"],
        "load": 1,
        "capacity": 2,
        "alive": True,
    }
    assert params["machines"][1]["alive"] is False
    assert params["running"] == 3 and params["queueDepth"] == 1
    assert params["recent"] == [{"id": "t1", "type": "refactor", "state": "SUCCEEDED"}]
    assert roles_available(params) == {"refactor", "echo"}
    down = status_params("down", "127.0.0.1:9", None, "no coordinator")
    assert down["machines"] == [] and down["message"] == "no coordinator"
    assert roles_available(down) == set()


def test_diagnostics_group_per_file_and_never_escape_the_workspace(tmp_path: Path) -> None:
    found: list[dict[str, Any]] = [
        {"path": "tests/test_a.py", "line": 3, "message": "boom", "severity": "error", "code": "x"},
        {"path": "tests/test_a.py", "line": 7, "end_line": 9, "severity": "warning"},
        {"path": "../outside.py", "line": 1, "message": "no"},
        {"path": 5},
    ]
    grouped = group_by_file(tmp_path, found)
    (uri,) = grouped
    assert uri.endswith("/tests/test_a.py")
    first, second = grouped[uri]
    assert (first.range.start.line, first.source, first.code) == (3, "swarm", "x")
    assert second.range.end.line == 9 and second.message == "(no message)"


def test_snapshot_honours_gitignore_and_overlays_unsaved_text(tmp_path: Path) -> None:
    (tmp_path / ".gitignore").write_text("build_out/\n*.log\n")
    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "a.py").write_text("x = 1\n")
    (tmp_path / "app.log").write_text("noise")
    (tmp_path / "build_out").mkdir()
    (tmp_path / "build_out" / "b.py").write_text("y")
    (tmp_path / ".git").mkdir()
    (tmp_path / ".git" / "HEAD").write_text("ref")
    (tmp_path / "node_modules").mkdir()
    (tmp_path / "node_modules" / "m.js").write_text("m")
    files = workspace_snapshot(tmp_path, {"pkg/a.py": "x = 2\n"})
    assert files == {".gitignore": b"build_out/\n*.log\n", "pkg/a.py": b"x = 2\n"}


def test_word_at_and_test_file_for(tmp_path: Path) -> None:
    assert word_at("class Rectangle:\n", 0, 8) == "Rectangle"
    assert word_at("a = foo_bar(1)\n", 0, 11) == "foo_bar"
    assert word_at("   \n", 0, 1) == ""
    assert word_at("x\n", 5, 0) == ""
    # A selection that starts at the indentation or on a keyword names the symbol after it.
    assert symbol_at("    def perimeter(self):\n", 0, 0) == "perimeter"
    assert symbol_at("class Rectangle:\n", 0, 2) == "Rectangle"
    assert symbol_at("a = foo_bar(1)\n", 0, 5) == "foo_bar"
    assert symbol_at("    return\n", 0, 0) == ""
    assert where_tests_go(None, "shapes/geometry.py") == "tests/test_geometry.py"
    (tmp_path / "shapes").mkdir()
    (tmp_path / "shapes" / "test_geometry.py").write_text("")
    assert where_tests_go(tmp_path, "shapes/geometry.py") == "shapes/test_geometry.py"
    assert where_tests_go(tmp_path, "tests/test_x.py") == "tests/test_x.py"


def test_argument_parsing() -> None:
    assert parse_uri("c", "file:///a.py") == "file:///a.py"
    assert parse_position("c", {"line": 1, "character": 2}) == (1, 2)
    span = parse_range(
        "c", {"start": {"line": 1, "character": 0}, "end": {"line": 3, "character": 0}}
    )
    assert span == Span(1, 0, 3, 0) and span.last_line == 2
    for bad in (None, "x.py", 3):
        with pytest.raises(JsonRpcInvalidParams):
            parse_uri("c", bad)
    for bad_position in ({"line": True, "character": 0}, {"line": 1}, [1, 2]):
        with pytest.raises(JsonRpcInvalidParams):
            parse_position("c", bad_position)
    with pytest.raises(JsonRpcInvalidParams, match="ends before it starts"):
        parse_range("c", {"start": {"line": 3, "character": 0}, "end": {"line": 1, "character": 0}})


def test_code_action_kinds_are_standard_and_filter_by_prefix() -> None:
    assert set(KINDS) == {"refactor", "refactor.rewrite"}  # what exact-match clients ask for
    assert all(wanted(k, None) for k in KINDS)
    assert [k for k in KINDS if wanted(k, ["refactor.rewrite"])] == ["refactor.rewrite"]
    assert len([k for k in KINDS if wanted(k, ["refactor"])]) == len(KINDS)
    assert not any(wanted(k, ["quickfix", "source"]) for k in KINDS)
    assert not wanted("refactor.rewrites", ["refactor.rewrite"])


def test_worker_related_locations_become_related_information(tmp_path: Path) -> None:
    (tmp_path / "pkg").mkdir()
    found = [
        {
            "path": "tests/test_x.py",
            "line": 3,
            "message": "test_x failed",
            "code": "test-failed",
            "related": [
                {"path": "pkg/x.py", "line": 7, "message": "failure in x()"},
                {"path": "../outside.py", "line": 1, "message": "never shown"},
            ],
        }
    ]
    (diag,) = group_by_file(tmp_path, found)[(tmp_path / "tests/test_x.py").as_uri()]
    (related,) = diag.related_information or []
    assert related.location.uri == (tmp_path / "pkg/x.py").as_uri()
    assert related.location.range.start.line == 7 and related.message == "failure in x()"


def test_a_failure_cause_ignores_worker_folder_and_ids() -> None:
    from swarm_lsp.server.diagnostics import _cause

    one = "test task failed on tester: WorkerError: no test runner found in task-3f9a2b1c: looked"
    two = "test task failed on box-2: WorkerError: no test runner found in task-77aa01ff: looked"
    assert _cause(one) == _cause(two)
    assert _cause(one) != _cause("dispatch failed: coordinator 127.0.0.1:7000 is unreachable")
