"""The real Emacs (Debian's emacs-nox + elpa-eglot 1.9, batch mode) against the real server.

One Emacs session drives a project that has a pyproject.toml but no .git, the way a new user
would: eglot starts one server for shapes/ and another for tests/ (no VCS root), both find the
project root by its marker and share one local swarm of one (started by the first server,
real child processes). Then: imenu, completion, xref across files, diagnostics through flymake
after a save (on the test and on the code under test), chat, every Swarm code action run to its
end without "Timed out" under eglot's default 10 s request timeout (Explain's result reaching
the user as a message, since eglot 1.9 has no window/showDocument), and a shutdown with an
action in flight. The refactor role's big model is the scripted OpenAI-compatible endpoint on
127.0.0.1 (the tiny local models cannot write a valid diff); everything else is real.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.server_swarm.conftest import SWARM_ACTIONS
from tests.server_swarm.test_code_actions import TESTS_DIFF
from tests.workers.scripted_endpoint import ScriptedEndpoint, serve
from tests.workers.test_refactor import GOOD_DIFF

pytestmark = pytest.mark.slow

DRIVER = Path(__file__).resolve().parent / "emacs" / "swarm-eglot-test.el"
EGLOT_REQUEST_TIMEOUT_S = 10.0  # jsonrpc-default-request-timeout, left as it is
REVIEW = "- `perimeter` adds width and height once (shapes/geometry.py:22)."
EXPLAIN = "`perimeter` returns width + height; a perimeter counts each side twice."
RESEARCH = "`Rectangle` is a dataclass in shapes/geometry.py:15 with area and perimeter."


class ContentEndpoint(ScriptedEndpoint):
    """Answers by what is asked (the actions run in the background, in any order), slowly
    for prompts marked SLOW (the action that is in flight at shutdown)."""

    def next_reply(self) -> str:
        asked = json.dumps(self.requests[-1]) if self.requests else ""
        self.delay_s = 0.5 if "SLOW" in asked else 0.0
        if "Write focused pytest unit tests" in asked:
            return TESTS_DIFF
        if "You review code" in asked or "Review this code" in asked:
            return REVIEW
        if "Explain what this code does" in asked:
            return EXPLAIN
        if "What is `" in asked or "research" in asked.lower():
            return RESEARCH
        return GOOD_DIFF


def find_emacs() -> str | None:
    emacs = shutil.which("emacs")
    if emacs is None:
        return None
    probe = subprocess.run(
        [emacs, "--batch", "--eval", "(progn (package-initialize) (require 'eglot))"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    return emacs if probe.returncode == 0 else None


@pytest.fixture(scope="module")
def emacs() -> str:
    found = find_emacs()
    if found is None:
        pytest.skip("Emacs with eglot is not installed (apt-get install emacs-nox elpa-eglot)")
    return found


@pytest.fixture(scope="module")
def endpoint() -> Iterator[ScriptedEndpoint]:
    with serve(ContentEndpoint([GOOD_DIFF])) as scripted:
        yield scripted


def run_emacs(emacs: str, project: Path, cache: Path, out: Path, env: dict[str, str]) -> str:
    server = [sys.executable, "-m", "swarm_lsp.cli", "serve"]
    full_env = {
        **env,
        "HOME": str(project.parent / "home"),  # no user init, no real ~/.emacs.d
        "SWARM_TEST_PROJECT": str(project),
        "SWARM_TEST_SERVER": json.dumps(server),
        "SWARM_TEST_OUT": str(out),
        "SWARM_TEST_CACHE": str(cache),
    }
    (project.parent / "home").mkdir(exist_ok=True)
    try:
        proc = subprocess.run(
            [emacs, "--batch", "-l", str(DRIVER)],
            cwd=project,
            env=full_env,
            capture_output=True,
            text=True,
            timeout=1500,
            stdin=subprocess.DEVNULL,
        )
        return proc.stderr
    except subprocess.TimeoutExpired as err:
        raw = err.stderr or b""
        return (raw.decode(errors="replace") if isinstance(raw, bytes) else raw) + "\n(killed)"


def test_eglot_uses_every_feature_without_timing_out(
    emacs: str, sample_project: Path, endpoint: ScriptedEndpoint, tmp_path: Path
) -> None:
    (sample_project / "pyproject.toml").write_text('[project]\nname = "shapes"\nversion = "0"\n')
    assert not (sample_project / ".git").exists()
    cache = Path(os.environ["SWARM_LSP_CACHE"])
    out = tmp_path / "emacs-results.json"
    env = {
        **os.environ,
        "SWARM_LSP_MODELS__ENDPOINT_URL": endpoint.url,
        "SWARM_LSP_MODELS__ENDPOINT_MODEL": "scripted-big-coder",
        "SWARM_LSP_MODELS__CHAT_MAX_TOKENS": "24",
        "SWARM_LSP_MODELS__COMPLETION_MAX_TOKENS": "16",
        "SWARM_LSP_MODELS__COMPLETION_TIMEOUT_MS": "60000",  # see tests/editors/nvim.py
        "SWARM_LSP_CONTEXT__INDEX_ON_START": "true",
    }
    stderr = run_emacs(emacs, sample_project, cache, out, env)
    assert out.exists(), f"Emacs wrote no results\n{stderr[-6000:]}"
    r: dict[str, Any] = json.loads(out.read_text())

    def why() -> str:
        shown = {k: v for k, v in r.items() if k != "messages"}
        messages = "\n".join(r.get("messages", [])[-60:])
        return (
            f"{json.dumps(shown, indent=1)[:8000]}\n--- messages\n{messages}"
            f"\n--- stderr\n{stderr[-4000:]}"
        )

    assert r.get("done") is True, why()
    errors = {k: v for k, v in r.items() if k.endswith("-error")}
    assert errors == {}, why()
    assert r["connected"] and r["ready"], why()

    # One swarm for the project although eglot started a server per folder.
    assert r["servers"] == 2, why()
    assert r["coordinators"] == 1 and r["coordinators-after-actions"] == 1, why()

    # Symbols, completion, definitions across files.
    assert {"Rectangle", "area_of_circle", "scale"} <= set(r["imenu"]) or any(
        "Rectangle" in name for name in r["imenu"]
    ), why()
    assert r["completion"], why()
    assert any(x.startswith("shapes/geometry.py:") or "geometry.py" in x for x in r["xref"]), why()

    # Diagnostics through flymake after a save: the failing test, and the code it checks.
    assert 14 in r["flymake-test"], why()  # def test_perimeter(), 1-based
    assert 22 in r["flymake-suspect"], why()  # def perimeter(self), 1-based

    assert r["chat"].strip(), why()

    # Every Swarm action offered, found by eglot's exact-match rewrite too, and run to its end.
    assert set(r["actions"]) == set(SWARM_ACTIONS), why()
    assert "Swarm: Refactor…" in r["rewrite-actions"], why()
    runs = {run["title"]: run for run in r["runs"]}
    assert set(runs) == set(SWARM_ACTIONS) - set(), why()
    for title, run in runs.items():
        assert run["error"] is None, f"{title}: {run['error']}\n{why()}"
        assert run["started"] == "started", why()
        assert run["seconds"] < EGLOT_REQUEST_TIMEOUT_S / 4, f"{title} blocked\n{why()}"
        assert run["ok"] is True, f"{title}: {run.get('failure')}\n{why()}"
    assert r["refactored"] and r["generated"], why()
    messages = "\n".join(r["messages"])
    assert "Timed out" not in messages, why()
    assert "Swarm: Explain" in messages and "full text:" in messages, why()
    assert EXPLAIN.split(";")[0] in messages or "perimeter" in messages, why()
    assert "Swarm: tests:" in messages, why()

    # Shutdown while an action runs: answered, no server error, the swarm stops.
    assert r["inflight-started"] == "started", why()
    assert r["shutdown-errors"] == [] and r["server-errors"] == [], why()
    assert r["coordinators-after-shutdown"] == 0, why()
