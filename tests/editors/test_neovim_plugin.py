"""The Neovim plugin without a model: config, commands, options, :checkhealth, help tags."""

from __future__ import annotations

import shutil
from pathlib import Path

from tests.editors.nvim import PLUGIN, run_nvim

SWARM_COMMANDS = [
    "SwarmAsk",
    "SwarmChat",
    "SwarmChatClear",
    "SwarmExplain",
    "SwarmGenerateTests",
    "SwarmIndex",
    "SwarmRefactor",
    "SwarmResearch",
    "SwarmRestart",
    "SwarmReview",
    "SwarmRunTests",
    "SwarmStatus",
]


def test_config_commands_and_options(nvim: Path, tmp_path: Path) -> None:
    fixtures = Path(__file__).resolve().parents[1] / "fixtures" / "protocol"
    run = run_nvim(nvim, "config_and_commands", tmp_path, args={"fixtures": str(fixtures)})
    assert run.ok, run.describe()
    r = run.results
    # The test setup runs the server through this interpreter; settings go to the server twice.
    assert r["cmd"][1:] == ["-m", "swarm_lsp.cli", "serve"]
    assert r["init_options"]["models"]["completionMaxTokens"] == 16
    assert r["settings"]["swarm"]["swarm"]["autostart"] is False
    assert r["has_python_ft"] and r["inline_cap"]
    assert r["commands"] == SWARM_COMMANDS
    assert r["refactor_range"] == "."
    assert not r["bad_settings"]["ok"] and "unknown section" in r["bad_settings"]["err"]
    assert not r["bad_chat"]["ok"] and "chat.open" in r["bad_chat"]["err"]
    assert r["default_cmd"] == ["swarm-lsp", "serve"]
    assert r["args_cmd"] == ["swarm-lsp", "serve", "--log-level", "DEBUG"]
    assert r["explicit_cmd"] == ["/opt/swarm-lsp", "serve"]
    assert r["status_short"] == "Swarm ✓ 1/2 ⟳1 ≡2"
    assert "Coordinator: 127.0.0.1:50051" in r["status_lines"]
    assert any("✗ w2 on 10.0.0.2" in line for line in r["status_lines"])
    assert r["status_garbage"] == "Swarm ✗"
    assert not any("Mesh" in line for line in r["status_garbage_lines"])
    mesh = r["status_mesh_lines"]
    assert "Mesh peers: 2" in mesh
    assert "  * p1 10.0.0.1:50051  []  load 2/4, 3.3 ms" in mesh
    assert "    p3 10.0.0.3:50051  [echo]  unreachable: refused" in mesh
    assert "  research t-7: RUNNING on p2, owned by 10.0.0.1:50051" in mesh
    assert r["status_dispatch_shape"] == "Swarm ✓ 2/2 ⟳1 ≡4"
    # The server's shapes, from the shared fixtures.
    assert r["status_fixture"] == "Swarm ✓ 1/2 ⟳3 ≡1"
    assert r["started_is_started"] is True
    assert r["results_delivered"]["finished"]["result"]["markdown"].startswith("`perimeter`")
    assert r["results_delivered"]["failed"]["err"] == "cancelled"
    assert r["pending_left"] == 0
    assert r["visible_plain"] == "ea(self):"
    assert r["visible_ranged"] == "ea(self):"
    assert r["visible_mismatch"] is None
    assert r["snippet_text"] == "x()"
    assert r["status_event"]["client_id"] == 42
    assert r["status_event"]["status"]["state"] == "degraded"
    assert r["status_stored"] == "Swarm ! 0/0 ≡5"
    assert r["range_charwise"] == {
        "start": {"line": 1, "character": 3},
        "end": {"line": 2, "character": 7},
    }
    assert r["range_linewise"] == {
        "start": {"line": 0, "character": 0},
        "end": {"line": 1, "character": 13},
    }
    assert r["range_line"] == {
        "start": {"line": 2, "character": 0},
        "end": {"line": 2, "character": 16},
    }
    line3 = {"start": {"line": 2, "character": 0}, "end": {"line": 2, "character": 16}}
    assert r["args_by_command"] == {
        "swarm.refactor": ["URI", line3, "inline y"],
        "swarm.explain": ["URI", line3],
        "swarm.review": ["URI", line3],
        "swarm.generateTests": ["URI", line3],
        "swarm.research": ["URI", {"line": 1, "character": 4}],
        "swarm.runTests": ["URI"],
    }
    assert r["answer"] == "In geometry.py.\n\nSources:\n- shapes/geometry.py:19"
    assert [(q["lnum"], q["text"]) for q in r["qflist"]] == [(19, "swarm: cited")]
    assert r["answer_listing_sources"] == "See shapes/geometry.py:19."  # not listed twice
    assert r["describe"] == {
        "explain": "**x**",
        "refactor": "Refactor: applied",
        "research": "a\n\nSources:\n- p.py:2",
        "nothing": None,
    }


def test_checkhealth_and_help(nvim: Path, tmp_path: Path) -> None:
    doc = tmp_path / "docrt" / "doc"
    shutil.copytree(PLUGIN / "doc", doc)
    tags = [":SwarmChat", ":SwarmRefactor", "swarm_lsp-setup", "swarm_lsp-inline"]
    run = run_nvim(
        nvim, "health_and_help", tmp_path, args={"doc": str(doc), "tags": tags}, timeout=120
    )
    assert run.ok, run.describe()
    health = "\n".join(run.results["health"])
    assert "swarm_lsp: Neovim" in health
    assert "OK Neovim 0.1" in health
    assert "version: swarm-lsp" in health, health
    # `swarm-lsp doctor --json` checks, one line each.
    assert "swarm_lsp: swarm-lsp doctor" in health
    assert "OK completion model:" in health, health
    # No errors from the plugin's own checks (doctor's depend on the machine).
    own = health.split("swarm_lsp: swarm-lsp doctor")[0]
    assert "ERROR" not in own, health
    assert run.results["help_buffer"] == "swarm_lsp.txt"
    assert run.results["tags"] == dict.fromkeys(tags, True)


def test_inline_fallback_keeps_a_suggestion_the_user_types_into(nvim: Path, tmp_path: Path) -> None:
    run = run_nvim(nvim, "inline_typed_ahead", tmp_path)
    assert run.ok, run.describe()
    r = run.results
    assert r["typed_two"] == [3, 6, "ea(radius)"]
    assert r["typed_other"] is None
    assert r["typed_all"] is None  # all of it typed: nothing left to show
    assert r["other_row"] is None
    assert r["moved_back"] is None
    assert r["debounce_ms"] == 150  # llama.vscode's wait
