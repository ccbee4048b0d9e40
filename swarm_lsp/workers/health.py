"""A worker's grpc.health.v1 port: SERVING while registered with its coordinator."""

from __future__ import annotations

import asyncio

import grpc

from swarm_lsp.config import SwarmSettings


async def serve_health(
    listen: str,
    swarm: SwarmSettings,
    connected: asyncio.Event,
    disconnected: asyncio.Event,
) -> tuple[grpc.aio.Server, int, asyncio.Task[None]]:
    """grpc.health.v1 on ``listen``; (server, port, the task that follows the session).

    SERVING while ``connected`` is set, NOT_SERVING after ``disconnected``.
    """
    from grpc_health.v1 import health, health_pb2, health_pb2_grpc

    from swarm_lsp.dispatch.security import GuardInterceptor, bind, server_options

    server = grpc.aio.server(
        interceptors=[GuardInterceptor(swarm.token, swarm.allowed_hosts)],
        options=server_options(),
    )
    servicer = health.aio.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(servicer, server)
    port = bind(server, listen, swarm)
    await server.start()
    states = {
        True: health_pb2.HealthCheckResponse.SERVING,
        False: health_pb2.HealthCheckResponse.NOT_SERVING,
    }

    async def follow() -> None:
        while True:
            up = connected.is_set()
            for service in ("", "swarm.v1.SwarmWorker"):
                await servicer.set(service, states[up])
            if up:
                await disconnected.wait()
            else:
                await connected.wait()

    return server, port, asyncio.create_task(follow())
