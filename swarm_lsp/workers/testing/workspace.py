"""The throw-away copy a sandboxed command runs in, and the bare environment it gets."""

from __future__ import annotations

import os
import shutil
from collections.abc import Mapping
from pathlib import Path

from swarm_lsp.errors import SandboxError

#: Folders never copied into a sandbox: version control, caches and virtual environments.
SKIP_DIRS = frozenset(
    {".git", ".hg", ".svn", "__pycache__", ".pytest_cache", ".mypy_cache", ".ruff_cache", ".venv"}
)

_PROXY_VARIABLES = ("http_proxy", "https_proxy", "all_proxy", "ftp_proxy", "no_proxy")


def copy_workspace(source: Path, dest: Path) -> Path:
    """Copy ``source`` into ``dest`` (created), skipping caches; symlinks stay links."""
    if not source.is_dir():
        raise SandboxError(f"workspace snapshot {source} is not a folder")
    shutil.copytree(
        source,
        dest,
        symlinks=True,
        ignore=lambda _dir, names: [n for n in names if n in SKIP_DIRS],
        dirs_exist_ok=True,
    )
    return dest


def clean_environment(
    workdir: Path, extra: Mapping[str, str] | None = None, home: Path | None = None
) -> dict[str, str]:
    """A minimal environment: no proxies, no credentials, no inherited Python settings."""
    env = {
        "PATH": os.environ.get("PATH", "/usr/local/bin:/usr/bin:/bin"),
        "LANG": "C.UTF-8",
        "LC_ALL": "C.UTF-8",
        "HOME": str(home or workdir),
        "TMPDIR": "/tmp",
        "PYTHONDONTWRITEBYTECODE": "1",
        "PYTHONUNBUFFERED": "1",
        "PYTHONPATH": str(workdir),
        "HF_HUB_OFFLINE": "1",
        "TRANSFORMERS_OFFLINE": "1",
        "CI": "1",
        "NO_COLOR": "1",
        "SWARM_SANDBOX": "1",
        "USER": "sandbox",
        "LOGNAME": "sandbox",
    }
    env.update(_toolchain_homes(workdir))
    if extra:
        env.update(extra)
    for name in _PROXY_VARIABLES:
        env.pop(name, None)
        env.pop(name.upper(), None)
    return env


def _toolchain_homes(workdir: Path) -> dict[str, str]:
    """Where rustup/cargo and Go keep their toolchains: HOME moves to the copy, they must not.

    Toolchain folders stay read-only under bubblewrap; caches that must be writable (Go's
    build cache, cargo's target dir) live in the copy.
    """
    home = Path.home()
    found: dict[str, str] = {}
    for name, default in (("RUSTUP_HOME", home / ".rustup"), ("CARGO_HOME", home / ".cargo")):
        value = os.environ.get(name) or (str(default) if default.is_dir() else "")
        if value:
            found[name] = value
    for name in ("GOROOT", "GOPATH", "GOFLAGS", "GOTOOLCHAIN"):
        if os.environ.get(name):
            found[name] = os.environ[name]
    found["GOCACHE"] = str(workdir / ".swarm-report" / "gocache")
    found["CARGO_TARGET_DIR"] = str(workdir / "target")
    return found
