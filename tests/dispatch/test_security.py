"""Shared token, mTLS, plaintext only on loopback, and the locality guard on both sides."""

from __future__ import annotations

import asyncio
import dataclasses
import re
import socket
from collections.abc import Callable
from pathlib import Path

import grpc
import pytest

from swarm_lsp.config import Settings, SwarmSettings
from swarm_lsp.dispatch import routing
from swarm_lsp.dispatch.cli_certs import make_host_cert
from swarm_lsp.dispatch.client import DispatchClient, RpcFailure
from swarm_lsp.dispatch.coordinator import Coordinator, CoordinatorConfig, create_server
from swarm_lsp.dispatch.security import (
    GuardInterceptor,
    bind,
    check_peer_address,
    open_channel,
    peer_ip,
)
from swarm_lsp.errors import DispatchError, LocalityError

from .conftest import Swarm, connect, wait_for_workers, wait_until


def _settings(**swarm: object) -> Settings:
    return Settings(swarm=dataclasses.replace(SwarmSettings(), **swarm))  # type: ignore[arg-type]


@pytest.mark.slow
async def test_token_is_required_and_checked(swarm_factory: Callable[..., Swarm]) -> None:
    swarm = swarm_factory(env={"SWARM_LSP_SWARM__TOKEN": "s3cret-token"})
    swarm.start_coordinator()
    swarm.start_worker("alpha", ["echo"])
    good_env, swarm.env = swarm.env, {**swarm.env, "SWARM_LSP_SWARM__TOKEN": "wrong-token"}
    swarm.start_worker("mallory", ["echo"])
    swarm.env = good_env
    for token in ("", "wrong-token"):
        async with connect(swarm.address, _settings(token=token)) as client:
            with pytest.raises(RpcFailure, match="token") as info:
                await client.submit("echo", {"text": "x"})
            assert info.value.code == "UNAUTHENTICATED"
            with pytest.raises(RpcFailure, match="UNAUTHENTICATED"):
                await client.status()
    async with connect(swarm.address, _settings(token="s3cret-token")) as client:
        await wait_for_workers(client, 1)  # the worker got the token from its environment
        receipt = await client.submit("echo", {"text": "with token"})
        final = await client.wait(receipt.task_id)
        assert final.text == "with token" and final.worker == "alpha"

    # The coordinator logged each refusal with the caller's address (one line each).
    await wait_until(lambda: "refused by the coordinator" in swarm.log("worker-mallory"))
    log = swarm.log("coordinator")
    for why in ("no swarm token", "wrong swarm token"):
        assert re.search(
            rf"refused /swarm.v1.SwarmCoordinator/Submit\w* from 127\.0\.0\.1:\d+: {why}", log
        ), log
    assert re.search(r"refused /swarm.v1.SwarmWorker/Connect from 127\.0\.0\.1:\d+: wrong", log)
    # The refused worker keeps trying, backing off, and said so once.
    await asyncio.sleep(3.0)  # attempts at ~0, ~1 and ~3 s
    assert swarm.workers["mallory"].poll() is None
    lines = swarm.log("worker-mallory").strip().splitlines()
    assert len(lines) == 2, lines  # the start line and one refusal line
    assert "UNAUTHENTICATED: missing or wrong swarm token" in lines[1]
    assert "backing off up to 60s" in lines[1]


@pytest.mark.slow
async def test_mutual_tls_accepts_our_ca_and_refuses_others(
    swarm_factory: Callable[..., Swarm], tmp_path: Path
) -> None:
    ours, theirs = tmp_path / "ours", tmp_path / "theirs"
    cert, key = make_host_cert(ours, "coordinator-host")
    client_cert, client_key = make_host_cert(ours, "editor-host")
    rogue_cert, rogue_key = make_host_cert(theirs, "rogue-host")
    env = {
        "SWARM_LSP_SWARM__TLS_CA": str(ours / "ca.pem"),
        "SWARM_LSP_SWARM__TLS_CERT": str(cert),
        "SWARM_LSP_SWARM__TLS_KEY": str(key),
    }
    swarm = swarm_factory(env=env)
    swarm.start_coordinator()
    swarm.start_worker("alpha", ["echo"])
    good = _settings(
        tls_ca=str(ours / "ca.pem"), tls_cert=str(client_cert), tls_key=str(client_key)
    )
    rogue = _settings(tls_ca=str(ours / "ca.pem"), tls_cert=str(rogue_cert), tls_key=str(rogue_key))

    # Refused at once, with the cause (not after the timeout, not "Socket closed").
    with pytest.raises(DispatchError, match=r"refuses this side: our certificate .* another CA"):
        await DispatchClient.connect(rogue, swarm.address, timeout=10)
    with pytest.raises(DispatchError, match="speaks TLS but this side has no TLS"):
        await DispatchClient.connect(_settings(), swarm.address, timeout=10)  # plaintext

    async with connect(swarm.address, good) as client:
        await wait_for_workers(client, 1)  # the worker connected over mTLS too
        receipt = await client.submit("echo", {"text": "over mTLS"})
        assert (await client.wait(receipt.task_id)).text == "over mTLS"


async def test_plaintext_only_on_loopback() -> None:
    with pytest.raises(LocalityError, match="plaintext is allowed only on loopback"):
        open_channel("10.1.2.3:50051", SwarmSettings())
    channel = open_channel("127.0.0.1:1", SwarmSettings())  # loopback: fine (not dialled yet)
    await channel.close()


async def test_listening_beyond_loopback_needs_tls() -> None:
    server = grpc.aio.server()
    with pytest.raises(LocalityError, match="without TLS"):
        bind(server, "0.0.0.0:0", SwarmSettings())
    await server.stop(None)


async def test_client_refuses_a_public_coordinator_before_dialling() -> None:
    # check_peer runs before a channel exists: no packet ever leaves for this address.
    with pytest.raises(DispatchError, match="not an address you own"):
        await DispatchClient.connect(Settings(), "8.8.8.8:50051", timeout=1)


@pytest.mark.parametrize(
    ("peer", "owned"),
    [
        ("ipv4:127.0.0.1:5000", True),
        ("ipv4:192.168.1.20:41000", True),
        ("ipv6:[::1]:5000", True),
        ("ipv6:%5B::1%5D:5000", True),
        ("ipv6:[fe80::1%25eth0]:1", True),
        ("unix:/tmp/socket", True),
        ("ipv4:8.8.8.8:443", False),
        ("ipv6:[2001:4860::8888]:443", False),
        ("ipv6:[::ffff:1.1.1.1]:80", False),
    ],
)
def test_server_side_peer_address_check(peer: str, owned: bool) -> None:
    if owned:
        check_peer_address(peer)
    else:
        with pytest.raises(LocalityError, match="not an address you own"):
            check_peer_address(peer)


def test_peer_ip_parses_grpc_peer_strings() -> None:
    assert str(peer_ip("ipv4:10.0.0.2:1")) == "10.0.0.2"
    assert str(peer_ip("ipv6:[fd00::5]:99")) == "fd00::5"
    assert peer_ip("unix:/x") is None
    with pytest.raises(LocalityError):
        check_peer_address("carrier-pigeon:whatever")


def _ipv6_loopback() -> bool:
    try:
        with socket.socket(socket.AF_INET6) as sock:
            sock.bind(("::1", 0))
        return True
    except OSError:
        return False


@pytest.mark.skipif(not _ipv6_loopback(), reason="no IPv6 loopback here")
async def test_coordinator_refuses_a_foreign_caller_and_serves_others(tmp_path: Path) -> None:
    """The interceptor checks context.peer(); here 127.0.0.1 stands in for a foreign host.

    (Sending real traffic from a public address is not possible nor allowed here, so the
    check is told to treat IPv4 loopback as foreign while IPv6 loopback stays owned.)
    """

    def treat_ipv4_as_foreign(peer: str, allowed: tuple[str, ...]) -> None:
        if peer.startswith("ipv4:"):
            raise LocalityError(f"refusing caller {peer}: not an address you own (test)")
        check_peer_address(peer, allowed)

    coordinator = Coordinator(
        CoordinatorConfig(state_dir=tmp_path / "state", routing=routing.load())
    )
    server, port = await create_server(
        coordinator, "127.0.0.1:0", guard=GuardInterceptor(peer_check=treat_ipv4_as_foreign)
    )
    port6 = bind(server, "[::1]:0", SwarmSettings())
    coordinator.address = f"[::1]:{port6}"  # its local fallback worker dials the owned side
    await coordinator.start()
    await server.start()
    try:
        async with connect(f"127.0.0.1:{port}") as foreign:
            with pytest.raises(RpcFailure, match="not an address you own") as info:
                await foreign.submit("echo", {})
            assert info.value.code == "PERMISSION_DENIED"
        async with connect(f"[::1]:{port6}") as owned:
            receipt = await owned.submit("echo", {"text": "ok"})
            assert (await owned.wait(receipt.task_id)).text == "ok"
    finally:
        await server.stop(None)
        await coordinator.stop()
