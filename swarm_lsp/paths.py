"""Where swarm-lsp keeps its files: user cache, per-workspace cache, default models."""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
from collections.abc import Iterator
from pathlib import Path


def user_cache_dir() -> Path:
    """The per-user cache folder (``$SWARM_LSP_CACHE`` or ``$XDG_CACHE_HOME/swarm-lsp``)."""
    override = os.environ.get("SWARM_LSP_CACHE")
    if override:
        return Path(override)
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "swarm-lsp"


def workspace_cache_dir(workspace_root: Path) -> Path:
    """A cache folder for one workspace, kept outside the workspace itself."""
    digest = hashlib.sha256(str(workspace_root.resolve()).encode()).hexdigest()[:16]
    return user_cache_dir() / "workspaces" / f"{workspace_root.name}-{digest}"


def models_dir() -> Path:
    """Where assembled default models live (``$SWARM_LSP_MODELS`` overrides)."""
    override = os.environ.get("SWARM_LSP_MODELS")
    if override:
        return Path(override)
    return user_cache_dir() / "models"


# Files and folders that mark a project's root, most specific first.
PROJECT_MARKERS = (
    "swarm.toml",
    ".git",
    ".hg",
    ".jj",
    "pyproject.toml",
    "setup.py",
    "setup.cfg",
    "package.json",
    "Cargo.toml",
    "go.mod",
    "pom.xml",
    "build.gradle",
)


def has_marker(folder: Path) -> bool:
    return any((folder / marker).exists() for marker in PROJECT_MARKERS)


def project_root(start: Path) -> Path:
    """The project ``start`` belongs to: ``start`` itself or the nearest folder above it with a
    project marker (.git, pyproject.toml, package.json, Cargo.toml, go.mod, ...).

    Editors hand servers sub-folders (eglot without a VCS root starts one per folder) or no
    folder at all; the swarm's work (tests, research) needs the whole project. The search stops
    below the home folder and at the filesystem root; with no marker, ``start`` is kept.
    """
    start = start.resolve()
    if has_marker(start):
        return start
    home = Path.home().resolve()
    for folder in start.parents:
        if folder == home or folder == folder.parent:
            break
        if has_marker(folder):
            return folder
    return start


@contextlib.contextmanager
def exclusive(lock_path: Path) -> Iterator[None]:
    """Hold an exclusive lock on ``lock_path`` (made if missing), e.g. while one process of
    the machine writes a derived model file the others wait for."""
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    with lock_path.open("w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
