"""Headless Neovim, the real server and a real swarm: code actions that edit the buffer,
explanations in the chat buffer, test failures as diagnostics that clear when fixed.

The refactor role's big model is the scripted OpenAI-compatible endpoint on 127.0.0.1 that the
worker tests use (the tiny local models cannot write a valid diff); everything else is real.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.dispatch.conftest import Swarm
from tests.editors.nvim import FAST_SETTINGS, run_nvim
from tests.server_swarm.conftest import SWARM_ACTIONS
from tests.workers.scripted_endpoint import ScriptedEndpoint

pytestmark = pytest.mark.slow

# `perimeter` in the sample project's shapes/geometry.py, 0-based, end exclusive.
PERIMETER = {"start": {"line": 21, "character": 0}, "end": {"line": 24, "character": 0}}
BUG = "return self.width + self.height"
FIX = "return 2 * (self.width + self.height)"


def _on_swarm(swarm: Swarm, endpoint: ScriptedEndpoint) -> dict[str, Any]:
    """Fast settings on the test swarm, with the scripted endpoint as the big model."""
    return {
        **FAST_SETTINGS,
        "models": {**FAST_SETTINGS["models"], "endpointUrl": endpoint.url},
        "swarm": {"coordinator": swarm.address, "autostart": False},
    }


def test_code_action_edits_buffer(
    nvim: Path, sample_project: Path, swarm: Swarm, endpoint: ScriptedEndpoint
) -> None:
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
            "instruction": "count each side twice",
            "choose": ["^Apply$", "^Wait$"],
            "timeout_ms": 90_000,
        },
        settings=_on_swarm(swarm, endpoint),
        timeout=300,
    )
    assert run.ok, run.describe()
    r = run.results
    assert r["code_action_provider"], run.describe()
    assert [a["title"] for a in r["actions"]] == SWARM_ACTIONS, run.describe()
    assert all(a["kind"].startswith("refactor") for a in r["actions"])
    # Refactor… as a code action: resolved into an edit that Neovim applied.
    assert r["code_action_edited"], run.describe()
    before = r["before"].split("\n")
    after = r["after_code_action"].split("\n")
    assert FIX in after[23] and BUG not in r["after_code_action"]
    assert [line for i, line in enumerate(after) if i not in (22, 23)] == [
        line for i, line in enumerate(before) if i not in (22, 23)
    ]
    # :SwarmRefactor after undo: "Apply?" answered, the edit applied through applyEdit.
    assert r["undone"]
    assert r["command_edited"], run.describe()
    assert r["after_command"] == r["after_code_action"]
    assert any("Apply" in q["items"] for q in r["questions"]), r["questions"]
    # :SwarmExplain: the explanation in the chat buffer.
    assert r["explained"], run.describe()
    assert "## Explain" in r["chat"]


def test_run_tests_diagnostics_appear_and_clear(nvim: Path, sample_project: Path) -> None:
    """With no coordinator configured the server starts a swarm of one, as a new user gets."""
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
        settings={**FAST_SETTINGS, "swarm": {"autostart": True}},
        timeout=280,
    )
    assert run.ok, run.describe()
    r = run.results
    assert "swarm.runTests" in r["execute_commands"], run.describe()
    assert r["diagnostics_arrived"], run.describe()
    diagnostics = r["diagnostics"]
    assert any("perimeter" in d["message"] or d["file"] == "test_geometry.py" for d in diagnostics)
    assert r["cleared"], run.describe()
    assert r["diagnostics_after_fix"] == []
    status = next(n["message"] for n in r["notes"] if "Coordinator:" in n["message"])
    assert "Swarm: ready" in status, status


def test_index_then_ask(
    nvim: Path, sample_project: Path, swarm: Swarm, endpoint: ScriptedEndpoint
) -> None:
    (sample_project / "swarm.toml").write_text("")  # the workspace root
    run = run_nvim(
        nvim,
        "index_and_ask",
        sample_project,
        args={
            "file": str(sample_project / "shapes" / "geometry.py"),
            "question": "Where is the perimeter of a rectangle computed?",
            "choose": ["^Wait$"],
            "timeout_ms": 120_000,
        },
        settings=_on_swarm(swarm, endpoint),
        timeout=300,
    )
    assert run.ok, run.describe()
    r = run.results
    assert "swarm.ask" in r["execute_commands"], run.describe()
    assert r["indexed"], run.describe()
    assert r["done"]["error"] is None, run.describe()
    assert r["done"]["text"].strip()
    assert "## Swarm (ask)" in r["chat"]
    assert r["chat"].count("Sources:") == 1, run.describe()
    assert any(item["file"].endswith(".py") for item in r["quickfix"]), r["quickfix"]
