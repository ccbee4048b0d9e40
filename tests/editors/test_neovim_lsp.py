"""Headless Neovim 0.11 with the plugin against the real ``swarm-lsp serve`` and tiny models."""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest

from tests.editors.nvim import FAST_SETTINGS, run_nvim

pytestmark = pytest.mark.slow


def test_attach_completion_and_inline(nvim: Path, sample_project: Path) -> None:
    (sample_project / "swarm.toml").write_text("# marks the project root for Neovim\n")
    target = sample_project / "shapes" / "new_code.py"
    target.write_text("import math\n\n\ndef circumference(radius: float) -> float:\n    return \n")
    run = run_nvim(
        nvim, "attach_completion_inline", sample_project, args={"file": str(target)}, timeout=120
    )
    assert run.ok, run.describe()
    r = run.results
    assert r["root_dir"] == str(sample_project)
    assert r["caps"] == {"completion": True, "inline": True}
    assert r["sent_inline_capability"] is True
    assert r["completion_error"] is None
    assert r["completion_items"] >= 1, run.describe()
    assert r["completion_label"]
    # Neovim 0.11 has no inline completion of its own: the plugin's virtual text shows it.
    assert r["native_inline"] is False
    assert r["mode_while_suggesting"] == "i"
    assert r["suggestion"]
    assert r["extmarks"] == 1
    assert r["suggestion"].startswith(r["virt_text"])
    typed = "    return 2 * math."
    assert r["line_before_accept"] == typed
    assert r["text_after_accept"].startswith(typed + r["suggestion"].split("\n")[0])
    assert r["extmarks_after"] == 0


def test_chat_streams_into_scratch_buffer(nvim: Path, sample_project: Path) -> None:
    prompt = "What does the area method return? One sentence."
    run = run_nvim(
        nvim,
        "chat_streams",
        sample_project,
        args={
            "file": str(sample_project / "shapes" / "geometry.py"),
            "prompt": prompt,
            "second_prompt": "Now explain it in great detail.",
            "third_prompt": "Say ok.",
        },
        settings={
            **FAST_SETTINGS,
            "models": {**FAST_SETTINGS["models"], "chatMaxTokens": 12, "completionMaxTokens": 4},
        },
        timeout=120,
    )
    assert run.ok, run.describe()
    r = run.results
    done = r["done"]
    assert done["error"] is None, run.describe()
    assert done["text"].strip()
    assert str(done["model"]).lower().startswith("smollm2")
    assert r["chat_window_open"] and r["current_buffer_kept"]
    # It streamed: several deltas, each in the buffer as it arrived, the text only growing.
    snapshots = r["snapshots"]
    assert done["deltas"] >= 2 and len(snapshots) == done["deltas"], run.describe()
    texts = [s["text"] for s in snapshots]
    assert all(b.startswith(a) for a, b in itertools.pairwise(texts))
    for snap in snapshots:
        assert snap["text"] in snap["buffer"]
    assert texts[-1] == done["text"]
    buffer = "\n".join(r["buffer"])
    assert buffer.startswith(f"## You\n{prompt}\n\n## Swarm\n")
    assert done["text"] in buffer
    assert r["buffer_name"] == "swarm://chat" and r["buftype"] == "nofile"
    assert [turn["role"] for turn in r["history"]] == ["user", "assistant"]
    # <C-c> stopped the second answer: marked in the buffer, not added to the history...
    assert r["after_cancel"][-2:] == ["_cancelled_", ""]
    assert r["active_after_cancel"] and r["history_after_cancel"] == 2
    # ...and the server answered the next prompt.
    assert r["third"]["error"] is None and r["third"]["text"].strip()
    assert r["history_after_third"] == 4


def test_restart_reattaches(nvim: Path, sample_project: Path) -> None:
    (sample_project / "swarm.toml").write_text("")
    run = run_nvim(
        nvim,
        "restart",
        sample_project,
        args={"file": str(sample_project / "shapes" / "geometry.py")},
        timeout=90,
    )
    assert run.ok, run.describe()
    r = run.results
    assert r["first_stopped"] is True
    assert r["first_root"] == r["second_root"] == str(sample_project)
    assert r["clients"] == 1
