"""The token ``swarm-lsp serve --tcp`` requires: from the environment or a private file.

``$SWARM_LSP_SERVE_TOKEN`` wins; otherwise the token lives in a file only its owner can read
(``<cache>/serve-token`` unless ``--token-file`` names another), created with a random value
the first time it is needed. A file others can read, or owned by someone else, is refused.
"""

from __future__ import annotations

import os
import secrets
import stat
from pathlib import Path

from swarm_lsp import paths
from swarm_lsp.errors import SwarmError

TOKEN_ENV = "SWARM_LSP_SERVE_TOKEN"
MIN_TOKEN_CHARS = 16


def default_token_file() -> Path:
    return paths.user_cache_dir() / "serve-token"


def load_token(token_file: Path | None = None) -> tuple[str, str]:
    """(token, where it is: "in <file>"); creates the file on first use."""
    from_env = os.environ.get(TOKEN_ENV, "").strip()
    if from_env:
        _check_length(from_env, f"${TOKEN_ENV}")
        return from_env, f"in ${TOKEN_ENV}"
    path = token_file or default_token_file()
    _create(path)
    info = path.stat()
    if info.st_uid != os.getuid():
        raise SwarmError(f"token file {path} belongs to another user; remove it or choose another")
    if stat.S_IMODE(info.st_mode) & 0o077:
        raise SwarmError(f"token file {path} can be read by other users; run: chmod 600 {path}")
    token = path.read_text(encoding="utf-8").strip()
    _check_length(token, str(path))
    return token, f"in {path}"


def _create(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return
    except OSError as err:
        raise SwarmError(f"cannot create the token file {path}: {err.strerror or err}") from None
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        out.write(secrets.token_urlsafe(32) + "\n")


def _check_length(token: str, where: str) -> None:
    if len(token) < MIN_TOKEN_CHARS:
        raise SwarmError(f"the serve token from {where} is under {MIN_TOKEN_CHARS} characters")
