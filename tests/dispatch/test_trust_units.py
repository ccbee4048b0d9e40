"""Plain units behind the trust messages: C-core log filter, handshake causes, worker backoff."""

from __future__ import annotations

import logging

import pytest

from swarm_lsp.dispatch.core_log import CoreLogFilter, HandshakeLog, server_side_cause
from swarm_lsp.dispatch.security import RefusalLog
from swarm_lsp.workers.reconnect import REFUSED_CAP_S, Reconnect

# What grpcio 1.85's C-core writes to descriptor 2 with GRPC_TRACE=handshaker for a client
# whose certificate comes from another CA (abridged argument lists).
CORE_OUTPUT = """\
W1201 15:26:38.956955   25644 log.cc:110] Log level DEBUG is not suitable for production.
I1201 15:26:38.957052   25644 trace.cc:91] gRPC Tracers: handshaker
I1201 15:26:40.524438   25671 ssl_transport_security.cc:2563] Handshake failed with error \
SSL_ERROR_SSL: error:1a000064:ECDSA routines:OPENSSL_internal:BAD_SIGNATURE: certificate \
signature failure
I1201 15:26:40.524460   25671 handshaker.cc:155] CallNextHandshakerLocked: error=UNKNOWN: Ssl \
handshake failed (TSI_PROTOCOL_FAILURE): SSL_ERROR_SSL: error:1a000064:ECDSA \
routines:OPENSSL_internal:BAD_SIGNATURE: certificate signature failure: OK
=== Source Location Trace: ===
src/core/util/status_helper.cc:68
 shutdown=false index=2, args={endpoint=0x7f9d1800c310, args={\
grpc.internal.endpoint_local_address=ipv4:127.0.0.1:34885, \
grpc.internal.endpoint_peer_address=ipv4:127.0.0.1:38870, grpc.internal.security_connector=0x1}}
I1201 15:26:40.524473   25671 channel_trace.h:396] handshake manager 0x7f9d1800c6a0: Failed \
with error: UNKNOWN: Ssl handshake failed (TSI_PROTOCOL_FAILURE): certificate signature failure
=== Source Location Trace: ===
src/core/util/status_helper.cc:68

a line from a child process
"""


def test_core_filter_reports_the_peer_and_swallows_every_core_line() -> None:
    failures: list[tuple[str, str]] = []
    filt = CoreLogFilter(lambda peer, error: failures.append((peer, error)))
    passed = [line for line in CORE_OUTPUT.splitlines(keepends=True) if not filt.feed(line)]
    assert passed == ["a line from a child process\n"]
    assert len(failures) == 1
    peer, error = failures[0]
    assert peer == "ipv4:127.0.0.1:38870"
    assert server_side_cause(error) == (
        "the client's certificate is signed by a CA we do not trust (another CA)"
    )


@pytest.mark.parametrize(
    ("error", "words"),
    [
        ("SSL_ERROR_SSL: PEER_DID_NOT_RETURN_A_CERTIFICATE: x", "sent no certificate"),
        ("CERTIFICATE_VERIFY_FAILED: certificate has expired", "certificate has expired"),
        ("SSL_ERROR_SSL: WRONG_VERSION_NUMBER: x", "does not speak TLS"),
        ("UNAVAILABLE: Handshake read failed (Socket closed)", "does not accept our cert"),
        ("something new", "something new"),
    ],
)
def test_server_side_causes_in_words(error: str, words: str) -> None:
    assert words in server_side_cause(error)


def test_handshake_and_refusal_logs_sum_up_a_repeating_peer(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING)
    handshakes = HandshakeLog(quiet_s=60)
    for port in range(5):
        handshakes(f"ipv4:10.0.0.7:{4000 + port}", "certificate has expired")
    handshakes("ipv4:10.0.0.8:4000", "certificate has expired")
    refusals = RefusalLog(quiet_s=60)
    for _ in range(3):
        refusals.note("ipv6:[::1]:5000", "/swarm.v1.SwarmCoordinator/SubmitTask", "no swarm token")
    lines = [r.getMessage() for r in caplog.records]
    assert lines == [
        "TLS handshake with client 10.0.0.7:4000 failed: the client's certificate has expired",
        "TLS handshake with client 10.0.0.8:4000 failed: the client's certificate has expired",
        "refused /swarm.v1.SwarmCoordinator/SubmitTask from [::1]:5000: no swarm token",
    ]


def test_refused_worker_backs_off_to_a_minute_saying_so_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO)
    log = logging.getLogger("test.reconnect")
    policy = Reconnect("10.0.0.1:50051", log)
    delays = [policy.failed("UNAUTHENTICATED: wrong token", refused=True) for _ in range(10)]
    # 1 s doubling (with ±25 % jitter), then held at the cap.
    for got, want in zip(delays, [1, 2, 4, 8, 16, 32, 60, 60, 60, 60], strict=True):
        assert want * 0.75 <= got <= want * 1.25
    assert max(delays) <= REFUSED_CAP_S * 1.25
    assert len(caplog.records) == 1
    assert "refused by the coordinator 10.0.0.1:50051: UNAUTHENTICATED" in caplog.text
    # A new reason is a new line; a lost coordinator is retried quickly (≤ 2 s).
    fast = [policy.failed("UNAVAILABLE: down", refused=False, key="UNAVAILABLE") for _ in range(6)]
    assert len(caplog.records) == 2 and max(fast) <= 2.5
    policy.succeeded()
    assert "registered with 10.0.0.1:50051 again after 16 failed attempts" in caplog.text
    assert len(caplog.records) == 3
    policy.succeeded()  # nothing was failing: nothing to say
    assert len(caplog.records) == 3
