"""Headless Neovim against the real server with its local swarm of one: code actions that edit
the buffer, explanations in the chat buffer, test failures as diagnostics that clear when fixed.

Each test skips itself while the server it runs against does not offer the feature yet.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.editors.nvim import FAST_SETTINGS, run_nvim

pytestmark = pytest.mark.slow

# The local swarm of one starts with the server (its default); short generations.
SWARM_SETTINGS: dict[str, Any] = {**FAST_SETTINGS, "swarm": {"autostart": True}}

# `perimeter` in the sample project's shapes/geometry.py, 0-based, end exclusive.
PERIMETER = {"start": {"line": 21, "character": 0}, "end": {"line": 24, "character": 0}}
BUG = "return self.width + self.height"
FIX = "return 2 * (self.width + self.height)"

SWARM_TITLES = [
    "Swarm: Refactor…",
    "Swarm: Explain",
    "Swarm: Review",
    "Swarm: Generate tests",
    "Swarm: Research this symbol",
    "Swarm: Run tests",
]


def test_code_action_edits_buffer(nvim: Path, sample_project: Path) -> None:
    (sample_project / "swarm.toml").write_text("")  # the workspace root
    geometry = sample_project / "shapes" / "geometry.py"
    assert BUG in geometry.read_text().splitlines()[23]
    run = run_nvim(
        nvim,
        "code_action_edit",
        sample_project,
        args={
            "file": str(geometry),
            "range": PERIMETER,
            "choose": ["^Apply$", "^Wait$"],
            "timeout_ms": 100_000,
        },
        settings=SWARM_SETTINGS,
        timeout=260,
    )
    assert run.ok, run.describe()
    r = run.results
    if not r["code_action_provider"]:
        pytest.skip("the server offers no code actions yet")
    assert [a["title"] for a in r["actions"]] == SWARM_TITLES, run.describe()
    assert all(a["kind"].startswith("refactor") for a in r["actions"])
    assert r["edited"], run.describe()
    assert r["after"] != r["before"]
    # The edit stays inside the refactored method; the rest of the file is untouched.
    before, after = r["before"].split("\n"), r["after"].split("\n")
    assert before[:21] == after[:21]
    tail = len(before) - 24
    assert before[24:] == after[len(after) - tail :]
    assert r["explained"], run.describe()
    assert "## Explain" in r["chat"]


def test_run_tests_diagnostics_appear_and_clear(nvim: Path, sample_project: Path) -> None:
    (sample_project / "swarm.toml").write_text("")  # the workspace root
    run = run_nvim(
        nvim,
        "run_tests_diagnostics",
        sample_project,
        args={
            "file": str(sample_project / "shapes" / "geometry.py"),
            "bug": BUG,
            "fix": FIX,
            "choose": ["^Wait$"],
            "timeout_ms": 100_000,
        },
        settings=SWARM_SETTINGS,
        timeout=280,
    )
    assert run.ok, run.describe()
    r = run.results
    if "swarm.runTests" not in r["execute_commands"]:
        pytest.skip("the server has no swarm.runTests command yet")
    assert r["diagnostics_arrived"], run.describe()
    diagnostics = r["diagnostics"]
    assert any("perimeter" in d["message"] or d["file"] == "test_geometry.py" for d in diagnostics)
    assert r["cleared"], run.describe()
    assert r["diagnostics_after_fix"] == []
    status = next(n["message"] for n in r["notes"] if "Coordinator:" in n["message"])
    assert "Swarm: ready" in status, status
