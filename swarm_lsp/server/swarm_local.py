"""The swarm of one the server starts for itself: its children's settings, a quick stop.

``child_environment`` passes this server's settings (from initializationOptions, which exist
only in this process) to the local swarm's processes; ``stop_quickly`` stops them all at once
(editors give ``shutdown`` little time).
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

from swarm_lsp.config import Settings, snake_case, to_wire
from swarm_lsp.dispatch.local_swarm import LocalSwarm

# Settings the local swarm's children need to behave like this server (models, context,
# research, the routing table); the address and token are the local swarm's own.
_PASSED_SWARM_KEYS = ("routing_table", "allowed_hosts")


def child_environment(settings: Settings) -> dict[str, str]:
    """``SWARM_LSP_<SECTION>__<KEY>`` for every setting that differs from its default.

    Settings from initializationOptions exist only in this process; the local swarm's children
    read theirs from the environment.
    """
    defaults = to_wire(Settings())
    current = to_wire(settings)
    env: dict[str, str] = {}
    for section, values in current.items():
        for key, value in values.items():
            if value == defaults[section][key]:
                continue
            field = snake_case(key)
            if section == "swarm" and field not in _PASSED_SWARM_KEYS:
                continue
            if isinstance(value, bool):
                text = "true" if value else "false"
            elif isinstance(value, list):
                text = ",".join(str(v) for v in value)
            else:
                text = str(value)
            env[f"SWARM_LSP_{section.upper()}__{field.upper()}"] = text
    return env


class ServerLocalSwarm(LocalSwarm):
    """A LocalSwarm whose children also get this server's settings."""

    def __init__(self, settings: Settings, extra_env: dict[str, str], **kwargs: Any) -> None:
        super().__init__(settings, **kwargs)
        self.extra_env = extra_env

    def _env(self) -> dict[str, str]:
        env = super()._env()
        env.update(self.extra_env)
        return env


async def stop_quickly(local: LocalSwarm, grace_s: float = 1.0) -> None:
    """SIGTERM every process of ``local`` at once, SIGKILL what is left after ``grace_s``.

    Editors give ``shutdown`` little time (eglot: 1.5 s), so the processes stop together
    instead of one after the other.
    """
    procs = [p for p in (*local.workers.values(), local.coordinator) if p is not None]
    for proc in procs:
        with contextlib.suppress(ProcessLookupError):
            proc.terminate()
    if procs:
        await asyncio.wait([asyncio.ensure_future(p.wait()) for p in procs], timeout=grace_s)
    for proc in procs:
        if proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            await proc.wait()
    local.workers.clear()
    local.coordinator = None
    await local.stop(timeout=0.1)  # nothing left to stop: unregisters its token link
