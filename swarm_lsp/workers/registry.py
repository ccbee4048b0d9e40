"""Role name → ``"module:factory"``, imported only when a role is used.

Each factory is ``create(settings: swarm_lsp.config.Settings) -> RoleHandler``. A role whose
module is not installed (or not written yet) gives a WorkerError that says so, not a crash.
"""

from __future__ import annotations

import importlib
import importlib.util

from swarm_lsp.config import Settings
from swarm_lsp.errors import WorkerError
from swarm_lsp.workers.base import RoleHandler

ROLES: dict[str, str] = {
    "echo": "swarm_lsp.workers.echo:create_echo",
    "sleep": "swarm_lsp.workers.echo:create_sleep",
    "refactor": "swarm_lsp.workers.refactor.role:create",
    "research": "swarm_lsp.workers.research.role:create",
    "test": "swarm_lsp.workers.testing.role:create",
}


def known_roles() -> tuple[str, ...]:
    return tuple(ROLES)


def role_available(name: str) -> bool:
    """True when the role is known and its module can be found (without importing it)."""
    spec = ROLES.get(name)
    if spec is None:
        return False
    module_name = spec.partition(":")[0]
    try:
        return importlib.util.find_spec(module_name) is not None
    except (ImportError, ValueError):
        return False


def load_role(name: str, settings: Settings) -> RoleHandler:
    """Import the role's module and call its factory."""
    spec = ROLES.get(name)
    if spec is None:
        raise WorkerError(f"unknown role {name!r}; known roles: {', '.join(ROLES)}")
    module_name, _, factory_name = spec.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as err:
        raise WorkerError(
            f"role {name!r} is not available in this build: module {module_name} cannot be "
            f"imported ({err})"
        ) from err
    factory = getattr(module, factory_name, None)
    if factory is None:
        raise WorkerError(f"role {name!r}: {module_name} has no factory {factory_name}()")
    handler: RoleHandler = factory(settings)
    return handler
