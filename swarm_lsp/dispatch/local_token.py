"""The swarm of one's token: made at start, kept 0600 in its state folder, found by local CLIs.

A swarm of one (``swarm-lsp up``, or the one ``serve`` starts) makes a fresh random token at
start, writes it to ``<state folder>/token`` (mode 0600, in a 0700 folder) and links it as
``<user cache>/local-swarms/<port>.token``. A client on this machine that has no
``swarm.token`` of its own and dials that loopback port (``swarm-lsp status``, a worker, a
server configured with ``swarm.coordinator = 127.0.0.1:50051``) reads it from there, so only
processes of the same user can talk to the swarm.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import secrets
from pathlib import Path

from swarm_lsp import paths
from swarm_lsp.config import Settings
from swarm_lsp.dispatch.credentials import write_private
from swarm_lsp.dispatch.locality import is_loopback_target, split_host_port
from swarm_lsp.errors import LocalityError

TOKEN_FILE = "token"


def new_token() -> str:
    return secrets.token_urlsafe(32)


def registry_dir() -> Path:
    return paths.user_cache_dir() / "local-swarms"


def _link(port: int) -> Path:
    return registry_dir() / f"{port}.token"


def private_dir(path: Path) -> Path:
    """Create ``path`` (and parents) and make it 0700: the swarm's state is the user's alone."""
    path.mkdir(parents=True, exist_ok=True)
    os.chmod(path, 0o700)
    return path


def write_token(state_dir: Path, token: str, *, name: str = TOKEN_FILE) -> Path:
    """Write ``token`` to ``state_dir/name`` with mode 0600 (atomically); return the path."""
    private_dir(state_dir)
    path = state_dir / name
    write_private(path, token)
    return path


def register(port: int, token_file: Path) -> None:
    """Let local clients dialling 127.0.0.1:``port`` find the token (a link to the file)."""
    link = _link(port)
    private_dir(link.parent)
    tmp = link.with_name(f".{link.name}.{os.getpid()}.tmp")
    tmp.unlink(missing_ok=True)
    tmp.symlink_to(token_file.resolve())
    os.replace(tmp, link)


def unregister(port: int, token_file: Path) -> None:
    """Remove the link for ``port`` if it still points at ``token_file`` (not a newer swarm's)."""
    link = _link(port)
    with contextlib.suppress(OSError):
        if Path(os.readlink(link)) == token_file.resolve():
            link.unlink()


def find_token(target: str) -> str:
    """The token of the swarm of one on loopback ``target``, or "" when there is none."""
    try:
        _, port = split_host_port(target)
    except (LocalityError, ValueError):
        return ""
    if port is None or not is_loopback_target(target):
        return ""
    try:
        path = _link(port)
        if path.stat().st_uid != os.getuid():
            return ""
        return path.read_text(encoding="utf-8").strip()
    except OSError:
        return ""


def with_local_token(settings: Settings, target: str) -> Settings:
    """``settings`` with the local swarm's token when none is configured and one is found."""
    if settings.swarm.token:
        return settings
    token = find_token(target)
    if not token:
        return settings
    return dataclasses.replace(settings, swarm=dataclasses.replace(settings.swarm, token=token))
