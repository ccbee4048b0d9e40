"""The role workers as real processes on loopback, for the end-to-end tests that need them."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

from tests.dispatch.conftest import Swarm
from tests.workers.scripted_endpoint import ScriptedEndpoint

# The routes of the roles these workers have; a test's table puts its types (and any
# other routes) before them.
ROLE_ROUTES = """
[[route]]
taskType = "refactor"
machine = "any"
modelSize = "70B"
timeout = 120000

[[route]]
taskType = "research"
machine = "any"
modelSize = "7B"
timeout = 120000

[[route]]
taskType = "index"
machine = "any"
modelSize = "7B"
timeout = 120000

[[route]]
taskType = "test"
machine = "any"
modelSize = "7B"
timeout = 120000
"""


@contextlib.contextmanager
def roles_swarm(
    root: Path,
    routing: str,
    endpoint: ScriptedEndpoint,
    chat_max_tokens: int,
    *coordinator_extra: str,
) -> Iterator[Swarm]:
    """A coordinator, a ``thinker`` worker (refactor + research) and a ``tester`` (test).

    The refactor role's big model is the scripted endpoint (the tiny local models cannot
    write a valid diff); every process is stopped at the end.
    """
    (root / "routing.toml").write_text(routing)
    env = {
        "SWARM_LSP_CACHE": str(root / "cache"),
        "SWARM_LSP_MODELS__ENDPOINT_URL": endpoint.url,
        "SWARM_LSP_MODELS__ENDPOINT_MODEL": "scripted-big-coder",
        "SWARM_LSP_MODELS__CHAT_MAX_TOKENS": str(chat_max_tokens),
    }
    swarm = Swarm(root, env)
    try:
        swarm.start_coordinator("--routing-table", str(root / "routing.toml"), *coordinator_extra)
        swarm.start_worker("thinker", ["refactor", "research"], capacity=2)
        swarm.start_worker("tester", ["test"], capacity=2)
        yield swarm
    finally:
        swarm.stop_all()
