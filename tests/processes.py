"""Helpers for tests that run swarm processes: kill one at once, read its log."""

from __future__ import annotations

import signal
import subprocess
from pathlib import Path


def kill_now(proc: subprocess.Popen[bytes] | None) -> None:
    """SIGKILL a process that still runs (no clean shutdown) and reap it."""
    if proc is not None and proc.poll() is None:
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)


def read_log(root: Path, name: str) -> str:
    """``root/<name>.log``, or "" when the process wrote none."""
    path = root / f"{name}.log"
    return path.read_text(errors="replace") if path.exists() else ""


def coordinator_args(
    listen: str, root: Path, ready: Path, heartbeat_ms: int, lease_timeout_ms: int
) -> list[str]:
    """``swarm-lsp coordinator`` on ``listen`` with its state under ``root``."""
    return [
        "coordinator",
        "--listen",
        listen,
        "--state-dir",
        str(root / "state"),
        "--ready-file",
        str(ready),
        "--heartbeat-ms",
        str(heartbeat_ms),
        "--lease-timeout-ms",
        str(lease_timeout_ms),
    ]


def worker_args(
    coordinator: str, name: str, roles: list[str], capacity: int, cache_dir: Path
) -> list[str]:
    """``swarm-lsp worker`` dialling ``coordinator`` as ``name``."""
    args = ["worker", "--coordinator", coordinator, "--name", name, "--capacity", str(capacity)]
    for role in roles:
        args += ["--role", role]
    return [*args, "--cache-dir", str(cache_dir)]
