"""Membership without namespaces: seeds on loopback, the locality guard, the status table."""

from __future__ import annotations

import asyncio
import logging
import time

import grpc
import pytest
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

from swarm_lsp.config import SwarmSettings
from swarm_lsp.mesh.membership import Membership
from swarm_lsp.mesh.node import advertised_address, render_view


async def _health_server() -> tuple[grpc.aio.Server, str]:
    server = grpc.aio.server()
    servicer = health.aio.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(servicer, server)
    await servicer.set("", health_pb2.HealthCheckResponse.SERVING)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    return server, f"127.0.0.1:{port}"


async def _until(predicate: object, timeout: float) -> float:
    started = time.monotonic()
    while not predicate():  # type: ignore[operator]
        assert time.monotonic() - started < timeout, "condition not met in time"
        await asyncio.sleep(0.02)
    return time.monotonic() - started


async def test_a_seed_joins_and_a_dead_seed_leaves_within_the_bound() -> None:
    server, address = await _health_server()
    events: list[tuple[str, str]] = []
    membership = Membership(
        node_id="me",
        address="127.0.0.1:1",
        roles=("test",),
        settings=SwarmSettings(),
        seeds=(address,),
        mdns=False,
        listener=lambda event, peer: events.append((event, peer.address)),
    )
    await membership.start()
    try:
        await _until(lambda: address in membership.view, 10)
        await server.stop(grace=None)
        took = await _until(lambda: address not in membership.view, 3.0)
        assert events == [("joined", address), ("failed", address)]
        assert took < 3.0
    finally:
        await membership.stop()


def test_a_peer_on_an_address_not_owned_is_ignored_with_one_line(
    caplog: pytest.LogCaptureFixture,
) -> None:
    membership = Membership(
        node_id="me", address="10.0.0.1:50051", roles=(), settings=SwarmSettings(), mdns=False
    )
    with caplog.at_level(logging.WARNING, logger="swarm_lsp.mesh.membership"):
        for _ in range(3):  # heard of three times (mDNS repeats itself): one line
            membership.add_candidate("198.51.100.7:50051", "cloud", (), "mdns")
    assert membership._candidates == {}
    lines = [r.getMessage() for r in caplog.records]
    assert (
        len(lines) == 1
        and "198.51.100.7:50051" in lines[0]
        and "not an address you own" in lines[0]
    )
    allowed = SwarmSettings(allowed_hosts=("198.51.100.0/24",))
    membership = Membership(
        node_id="me", address="10.0.0.1:1", roles=(), settings=allowed, mdns=False
    )
    membership.add_candidate("198.51.100.7:50051", "lab", (), "mdns")
    assert "198.51.100.7:50051" in membership._candidates


def test_the_status_table_lists_the_peers() -> None:
    text = render_view(
        {
            "id": "n1",
            "address": "10.0.0.1:50051",
            "roles": ["refactor"],
            "peers": [
                {
                    "id": "n2",
                    "address": "10.0.0.2:50051",
                    "roles": ["test"],
                    "rtt_ms": 1.5,
                    "source": "mdns",
                }
            ],
        }
    )
    assert "this peer n1 at 10.0.0.1:50051 (refactor)" in text
    assert text.splitlines()[-1].split() == ["n2", "10.0.0.2:50051", "test", "1.5ms", "mdns"]


def test_a_wildcard_listen_advertises_an_owned_address() -> None:
    assert advertised_address("10.1.2.3:50051") == "10.1.2.3:50051"
    host, _, port = advertised_address("0.0.0.0:50051").rpartition(":")
    assert port == "50051" and host != "0.0.0.0"
