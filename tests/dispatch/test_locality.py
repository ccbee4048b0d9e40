import dataclasses
import ipaddress
import socket

import grpc
import pytest

from swarm_lsp.config import Settings, SwarmSettings
from swarm_lsp.dispatch.client import DispatchClient
from swarm_lsp.dispatch.locality import (
    bind_problem,
    check_listen,
    check_peer,
    is_loopback_target,
    is_owned_address,
    split_host_port,
)
from swarm_lsp.dispatch.security import check_peer_address
from swarm_lsp.errors import DispatchError, LocalityError


@pytest.mark.parametrize(
    "address",
    [
        "127.0.0.1",
        "10.1.2.3",
        "172.16.0.9",
        "192.168.1.1",
        "169.254.3.4",
        "::1",
        "fd00::1",
        "fe80::1",
    ],
)
def test_owned_addresses_pass(address: str) -> None:
    assert is_owned_address(ipaddress.ip_address(address))
    check_peer(f"[{address}]:50051" if ":" in address else f"{address}:50051")


@pytest.mark.parametrize(
    "target", ["8.8.8.8:443", "https://1.1.1.1/v1", "[2001:4860::8888]:80", "172.32.0.1:1"]
)
def test_public_addresses_refused_with_clear_error(target: str) -> None:
    with pytest.raises(LocalityError, match="not an address you own"):
        check_peer(target)


def test_ipv4_mapped_public_address_refused() -> None:
    with pytest.raises(LocalityError):
        check_peer("[::ffff:8.8.8.8]:80")


def test_allowed_block_admits_listed_host() -> None:
    check_peer("100.64.1.2:9000", allowed_hosts=["100.64.0.0/10"])
    with pytest.raises(LocalityError):
        check_peer("100.64.1.2:9000")


def test_localhost_name_resolves_to_loopback() -> None:
    check_peer("localhost:1234")
    assert is_loopback_target("localhost:1234")
    assert not is_loopback_target("10.0.0.1:1")


def test_split_host_port_forms() -> None:
    assert split_host_port("host:12") == ("host", 12)
    assert split_host_port("[::1]:5") == ("::1", 5)
    assert split_host_port("http://127.0.0.1:8080/v1") == ("127.0.0.1", 8080)
    with pytest.raises(LocalityError):
        split_host_port("host:abc")


METADATA_TARGETS = [
    "169.254.169.254:80",
    "http://169.254.169.254/latest/meta-data/",
    "[fd00:ec2::254]:80",
    "[::ffff:169.254.169.254]:80",
    "169.254.170.2:80",
]
# Even a user who lists the whole link-local and unique-local ranges does not get them.
GENEROUS = ["169.254.0.0/16", "fd00::/8", "169.254.169.254", "fd00:ec2::254"]


@pytest.mark.parametrize("target", METADATA_TARGETS)
def test_metadata_addresses_are_never_owned(target: str) -> None:
    host, _ = split_host_port(target)
    assert not is_owned_address(ipaddress.ip_address(host), GENEROUS)
    with pytest.raises(LocalityError, match="cloud metadata service address"):
        check_peer(target, GENEROUS)
    with pytest.raises(LocalityError):  # nor as a caller of ours
        check_peer_address(f"ipv4:{host}:5000" if "." in host else f"ipv6:[{host}]:5000")


@pytest.mark.parametrize("target", ["169.254.169.254:80", "[fd00:ec2::254]:80"])
async def test_metadata_target_refused_before_any_connect(
    target: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # gRPC's C-core dials, not Python's socket module: the proof that nothing is dialled is
    # that no channel is ever made (a made channel is the only way to a connect).
    def no_channel(*args: object, **kwargs: object) -> None:
        raise AssertionError(f"a channel was opened to {args[0]!r}")

    monkeypatch.setattr(grpc.aio, "insecure_channel", no_channel)
    monkeypatch.setattr(grpc.aio, "secure_channel", no_channel)
    settings = Settings(swarm=dataclasses.replace(SwarmSettings(), allowed_hosts=tuple(GENEROUS)))
    with pytest.raises(DispatchError, match="cloud metadata service address"):
        await DispatchClient.connect(settings, target, timeout=30)


def test_listen_must_be_a_wildcard_or_an_address_of_this_machine() -> None:
    for ok in ("127.0.0.1:0", "127.0.0.2:0", "localhost:0", "0.0.0.0:0", "[::]:0"):
        check_listen(ok)
    with pytest.raises(LocalityError, match=r"203\.0\.113\.10 is not an address of this machine"):
        check_listen("203.0.113.10:50051")
    with pytest.raises(LocalityError, match="cloud metadata service address"):
        check_listen("169.254.169.254:0")


def test_bind_problem_names_a_port_in_use() -> None:
    with socket.socket() as held:
        held.bind(("127.0.0.1", 0))
        held.listen()
        port = held.getsockname()[1]
        cause = bind_problem(ipaddress.ip_address("127.0.0.1"), port)
    assert cause == f"port {port} on 127.0.0.1 is already in use"
    assert bind_problem(ipaddress.ip_address("127.0.0.1"), 0) == ""
