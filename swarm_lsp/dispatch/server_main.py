"""Process entry points shared by ``coordinator``, ``worker`` and ``up``: settings, signals."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import os
import signal
import sys
from collections.abc import Callable
from pathlib import Path

from swarm_lsp import config, paths
from swarm_lsp.config import Settings


def load_settings(*, token_file: Path | None = None, workspace: Path | None = None) -> Settings:
    """Settings from swarm.toml/environment; a token file overrides swarm.token."""
    settings = config.load(workspace or Path.cwd())
    for problem in settings.problems:
        print(f"swarm-lsp: {problem}", file=sys.stderr)
    if token_file is not None:
        token = token_file.read_text(encoding="utf-8").strip()
        settings = dataclasses.replace(
            settings, swarm=dataclasses.replace(settings.swarm, token=token)
        )
    return settings


def setup_logging() -> None:
    level = os.environ.get("SWARM_LSP_LOG", "WARNING").upper()
    logging.basicConfig(
        level=getattr(logging, level, logging.WARNING),
        format="%(asctime)s %(process)d %(name)s %(levelname)s %(message)s",
        stream=sys.stderr,
    )


def on_stop_signals(callback: Callable[[], None]) -> None:
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, callback)


async def watch_parent(stop: Callable[[], None]) -> None:
    """Call ``stop`` when the process named by SWARM_LSP_PARENT_PID is gone (a swarm of one).

    A swarm shared by several servers (SWARM_LSP_CLIENTS_DIR, see ``shared_swarm``) lives on
    while any server registered there still runs, whichever of them started it.
    """
    from swarm_lsp.dispatch.shared_swarm import CLIENTS_ENV, any_client_alive

    parent = os.environ.get("SWARM_LSP_PARENT_PID", "")
    if not parent.isdigit():
        return
    clients = os.environ.get(CLIENTS_ENV, "")
    while os.getppid() == int(parent) or (clients and any_client_alive(Path(clients))):
        await asyncio.sleep(1.0)
    stop()


async def until_stopped(stop: asyncio.Event, failed: asyncio.Event) -> int:
    """Wait for a stop signal (exit code 0) or a failed task store (``EXIT_STORE_FAILED``)."""
    from swarm_lsp.errors import EXIT_STORE_FAILED

    waits = [asyncio.ensure_future(event.wait()) for event in (stop, failed)]
    try:
        await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for wait in waits:
            wait.cancel()
    return EXIT_STORE_FAILED if failed.is_set() else 0


def write_ready(path: Path | None, address: str) -> None:
    if path is None:
        return
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(address, encoding="utf-8")
    os.replace(tmp, path)


async def serve_coordinator(
    settings: Settings,
    *,
    listen: str,
    state_dir: Path | None = None,
    routing_table: str | None = None,
    heartbeat_ms: int = 500,
    lease_timeout_ms: int = 2000,
    local_capacity: int = 2,
    local_fallback: bool = True,
    max_context_bytes: int = 0,
    ready_file: Path | None = None,
    tokens_file: Path | None = None,
    max_worker_capacity: int = 64,
) -> int:
    from swarm_lsp.dispatch import routing
    from swarm_lsp.dispatch.coordinator import Coordinator, CoordinatorConfig, create_server

    setup_logging()
    table = routing.load(routing_table or settings.swarm.routing_table)
    coordinator = Coordinator(
        CoordinatorConfig(
            state_dir=state_dir or paths.user_cache_dir() / "coordinator",
            routing=table,
            settings=settings,
            heartbeat_interval_ms=heartbeat_ms,
            lease_timeout_ms=lease_timeout_ms,
            local_capacity=local_capacity,
            local_fallback=local_fallback,
            max_context_bytes=max_context_bytes,
            tokens_file=tokens_file,
            max_worker_capacity=max_worker_capacity,
        )
    )
    server, _port = await create_server(coordinator, listen)
    await coordinator.start()
    await server.start()
    stop = asyncio.Event()
    on_stop_signals(stop.set)
    parent_watch = asyncio.create_task(watch_parent(stop.set))
    print(f"swarm-lsp coordinator: listening on {coordinator.address}", flush=True)
    if local_fallback and not await coordinator.local_worker_ready(timeout=30):
        print(
            "swarm-lsp coordinator: the local fallback worker did not register; see "
            f"{coordinator.config.state_dir / 'local-worker.log'}",
            flush=True,
        )
    write_ready(ready_file, coordinator.address)
    code = await until_stopped(stop, coordinator.failed)
    parent_watch.cancel()
    await server.stop(grace=1.0)
    await coordinator.stop()
    return code
