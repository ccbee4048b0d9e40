import ipaddress

import pytest

from swarm_lsp.dispatch.locality import (
    check_peer,
    is_loopback_target,
    is_owned_address,
    split_host_port,
)
from swarm_lsp.errors import LocalityError


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
