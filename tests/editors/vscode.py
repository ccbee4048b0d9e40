"""Run the real VS Code (code-server) with the built .vsix, driven by chromium via playwright-core.

Everything comes from ``scripts/install_vscode_e2e.sh`` (run by ``make install``): Node 24 and
code-server under ``tests/editors/vscode_e2e/``, Debian's chromium in /usr/bin. Nothing is
downloaded here: code-server's gallery points at a closed loopback port, and its telemetry and
update checks are off.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
E2E = Path(__file__).resolve().parent / "vscode_e2e"
NODE24 = E2E / "node24" / "node_modules" / ".bin" / "node"
CODE_SERVER = E2E / "node_modules" / "code-server" / "out" / "node" / "entry.js"
PLAYWRIGHT = E2E / "node_modules" / "playwright-core"
SCRIPT = E2E / "e2e.mjs"
VSIX = REPO / "editors" / "vscode" / "out" / "swarm-lsp.vsix"
CHROMIUM = Path("/usr/bin/chromium")
# Lines for the end of the pytest run (tests/editors/conftest.py prints them).
REPORT: list[str] = []

# A gallery on a closed loopback port: nothing leaves the machine when VS Code looks for updates.
CLOSED = "http://127.0.0.1:9"
OFFLINE_GALLERY = json.dumps(
    {
        "serviceUrl": f"{CLOSED}/gallery",
        "itemUrl": f"{CLOSED}/item",
        "resourceUrlTemplate": CLOSED + "/{publisher}/{name}/{version}/{path}",
    }
)

# User settings: offline, quiet, and an editor a script can type into predictably.
USER_SETTINGS: dict[str, Any] = {
    "telemetry.telemetryLevel": "off",
    "update.mode": "none",
    "extensions.autoCheckUpdates": False,
    "extensions.autoUpdate": False,
    "extensions.ignoreRecommendations": True,
    "workbench.enableExperiments": False,
    "workbench.startupEditor": "none",
    "workbench.tips.enabled": False,
    "workbench.welcomePage.walkthroughs.openOnInstall": False,
    "chat.disableAIFeatures": True,
    "json.schemaDownload.enable": False,
    "npm.fetchOnlinePackageInfo": False,
    "typescript.disableAutomaticTypeAcquisition": True,
    "git.enabled": False,
    "security.workspace.trust.enabled": False,
    "editor.quickSuggestions": {"other": "off", "comments": "off", "strings": "off"},
    "editor.wordBasedSuggestions": "off",
    "editor.acceptSuggestionOnEnter": "off",
    "editor.autoClosingBrackets": "never",
    "editor.autoClosingQuotes": "never",
    "editor.inlineSuggest.enabled": True,
    "files.autoSave": "off",
}


def missing() -> list[str]:
    """What the test needs that is not installed (empty when it can run)."""
    needed = {
        "node 24 (scripts/install_vscode_e2e.sh)": NODE24,
        "code-server (scripts/install_vscode_e2e.sh)": CODE_SERVER,
        "playwright-core (scripts/install_vscode_e2e.sh)": PLAYWRIGHT,
        "chromium (apt-get install chromium)": CHROMIUM,
        "the .vsix (cd editors/vscode && npm ci && npm run check)": VSIX,
    }
    return [name for name, path in needed.items() if not path.exists()]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class E2ERun:
    results: dict[str, Any]
    stdout: str
    stderr: str
    log: str

    def describe(self) -> str:
        return (
            f"--- results\n{json.dumps(self.results, indent=1)[:6000]}"
            f"\n--- playwright stdout\n{self.stdout[-2000:]}\n--- stderr\n{self.stderr[-3000:]}"
            f"\n--- code-server + extension logs\n{self.log[-6000:]}"
        )


class CodeServer:
    """code-server on a free loopback port with its own user data, extensions and HOME."""

    def __init__(self, home: Path, env: dict[str, str]) -> None:
        self.home = home
        self.data = home / "data"
        self.extensions = home / "extensions"
        self.port = free_port()
        self.env = {
            **env,
            "HOME": str(home),
            "XDG_CONFIG_HOME": str(home / "config"),
            "XDG_DATA_HOME": str(home / "share"),
            "EXTENSIONS_GALLERY": OFFLINE_GALLERY,
            "PATH": f"{NODE24.parent}{os.pathsep}{env.get('PATH', '')}",
        }
        self.proc: subprocess.Popen[bytes] | None = None

    def _cli(self, *args: str) -> list[str]:
        return [
            str(NODE24),
            str(CODE_SERVER),
            "--user-data-dir",
            str(self.data),
            "--extensions-dir",
            str(self.extensions),
            *args,
        ]

    def install_extension(self, vsix: Path) -> None:
        out = subprocess.run(
            self._cli("--install-extension", str(vsix), "--force"),
            env=self.env,
            capture_output=True,
            text=True,
            timeout=180,
            stdin=subprocess.DEVNULL,
        )
        if out.returncode != 0 or "successfully installed" not in out.stdout.lower():
            raise RuntimeError(f"--install-extension failed:\n{out.stdout}\n{out.stderr}")

    def start(self, folder: Path) -> str:
        user = self.data / "User"
        user.mkdir(parents=True, exist_ok=True)
        (user / "settings.json").write_text(json.dumps(USER_SETTINGS, indent=1))
        log = open(self.home / "code-server.log", "ab")  # noqa: SIM115 - closed with the process
        self.proc = subprocess.Popen(
            self._cli(
                "--auth",
                "none",
                "--bind-addr",
                f"127.0.0.1:{self.port}",
                "--disable-telemetry",
                "--disable-update-check",
                "--disable-workspace-trust",
                "--disable-getting-started-override",
                "--ignore-last-opened",
                str(folder),
            ),
            env=self.env,
            cwd=folder,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,  # its extension host and server go with it in stop()
        )
        log.close()
        url = f"http://127.0.0.1:{self.port}/?folder={folder}"
        deadline = time.monotonic() + 120
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError("code-server exited:\n" + self.logs())
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/healthz", timeout=5):
                    return url
            except OSError:
                if time.monotonic() > deadline:
                    raise TimeoutError("code-server did not answer:\n" + self.logs()) from None
                time.sleep(0.2)

    def logs(self) -> str:
        """code-server's log and the extension's output channel (the Swarm log)."""
        parts = []
        main = self.home / "code-server.log"
        if main.exists():
            parts.append(main.read_text(errors="replace")[-3000:])
        for path in sorted((self.data / "logs").glob("**/*Swarm*.log")):
            parts.append(f"--- {path.name}\n" + path.read_text(errors="replace")[-4000:])
        return "\n".join(parts)

    def stop(self) -> None:
        if self.proc is not None:
            stop_group(self.proc)


def stop_group(proc: subprocess.Popen[Any]) -> None:
    """End ``proc`` and everything it started (it leads its own session)."""
    for sig, wait in ((signal.SIGTERM, 15), (signal.SIGKILL, 10)):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            break
        try:
            proc.wait(timeout=wait)
        except subprocess.TimeoutExpired:
            continue
        # the leader is gone; its group may not be: one more pass with SIGKILL
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        break


def run_playwright(config: dict[str, Any], env: dict[str, str], timeout: float) -> E2ERun:
    """Run e2e.mjs with ``config``; its results JSON is read back whatever happened."""
    results_path = Path(config["results"])
    results_path.unlink(missing_ok=True)
    proc = subprocess.Popen(
        [str(NODE24), str(SCRIPT)],
        cwd=E2E,
        env={**env, "E2E_CONFIG": json.dumps(config)},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        stdin=subprocess.DEVNULL,
        start_new_session=True,  # chromium goes with it
    )
    try:
        stdout, stderr = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        stop_group(proc)
        stdout, stderr = proc.communicate()
        stderr += f"\n(playwright killed after {timeout} s)"
    finally:
        stop_group(proc)
    results = json.loads(results_path.read_text()) if results_path.exists() else {}
    return E2ERun(results, stdout, stderr, "")


def which_chromium() -> str | None:
    return str(CHROMIUM) if CHROMIUM.exists() else shutil.which("chromium")
