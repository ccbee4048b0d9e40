"""Where swarm-lsp keeps its files: user cache, per-workspace cache, default models."""

from __future__ import annotations

import hashlib
import os
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
