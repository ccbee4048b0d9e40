"""The CLI entry point and `swarm-lsp doctor` on this machine's real install."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from swarm_lsp import cli


def test_every_command_has_help() -> None:
    parser = cli.build_parser()
    for name in cli.COMMANDS:
        sub = subprocess.run(
            [sys.executable, "-m", "swarm_lsp.cli", name, "--help"], capture_output=True, text=True
        )
        assert sub.returncode == 0, (name, sub.stderr)
    assert parser.parse_args(["serve", "--tcp"]).tcp is True


def _doctor(workspace: Path) -> tuple[dict[str, Any], dict[str, dict[str, Any]], int]:
    """``swarm-lsp doctor --json`` on ``workspace``: the report, its checks by name, exit code."""
    out = subprocess.run(
        [sys.executable, "-m", "swarm_lsp.cli", "doctor", "--json", "--workspace", str(workspace)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    report: dict[str, Any] = json.loads(out.stdout)
    return report, {c["name"]: c for c in report["checks"]}, out.returncode


def test_doctor_json_reports_checks(tmp_path: Path) -> None:
    report, names, returncode = _doctor(tmp_path)
    for expected in ("python", "llama.cpp", "completion model", "chat model", "grammars", "config"):
        assert names[expected]["status"] == "ok", names[expected]
    assert report["ok"] is True and returncode == 0


def test_doctor_flags_a_public_coordinator_and_a_bad_model(tmp_path: Path) -> None:
    (tmp_path / "swarm.toml").write_text(
        '[swarm]\ncoordinator = "8.8.8.8:50051"\n[models]\ncompletion_max_tokens = "lots"\n'
    )
    _, names, returncode = _doctor(tmp_path)
    assert names["coordinator"]["status"] == "error"
    assert "not an address you own" in names["coordinator"]["detail"]
    assert (
        names["config"]["status"] == "warn" and "completionMaxTokens" in names["config"]["detail"]
    )
    assert returncode == 1
