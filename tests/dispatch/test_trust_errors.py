"""Errors a person can act on, from real processes: bind failures, TLS failures, refusals.

Two CAs made with ``swarm-lsp certs``; a real TLS coordinator; workers and ``swarm-lsp status``
that each get one thing wrong. Every message must name the peer, the side that objects and
why, in one line, with none of gRPC's C-core log lines around it.
"""

from __future__ import annotations

import contextlib
import re
import socket
import ssl
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from .conftest import Swarm

pytestmark = pytest.mark.slow

CORE_LINE = re.compile(r"^[IWEF]\d{4} \d\d:\d\d:\d\d|absl::|Source Location Trace", re.M)


def _start(*args: str, cwd: Path, env: dict[str, str] | None = None) -> subprocess.Popen[str]:
    import os

    return subprocess.Popen(
        [sys.executable, "-m", "swarm_lsp.cli", *args],
        cwd=cwd,
        env={**os.environ, **(env or {})},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _finish(proc: subprocess.Popen[str]) -> tuple[int, str]:
    _, err = proc.communicate(timeout=60)
    return proc.returncode, err


def _one_line(stderr: str) -> str:
    lines = stderr.strip().splitlines()
    assert len(lines) == 1, stderr
    assert "Traceback" not in stderr and not CORE_LINE.search(stderr), stderr
    return lines[0]


def test_bind_and_locality_failures_are_one_line(tmp_path: Path) -> None:
    certs = tmp_path / "certs"
    made = subprocess.run(
        [sys.executable, "-m", "swarm_lsp.cli", "certs", "--out", str(certs), "--host", "c"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert made.returncode == 0, made.stderr
    tls = {
        "SWARM_LSP_SWARM__TLS_CA": str(certs / "ca.pem"),
        "SWARM_LSP_SWARM__TLS_CERT": str(certs / "c.pem"),
        "SWARM_LSP_SWARM__TLS_KEY": str(certs / "c.key"),
    }
    # A swarm of one already runs on the port: a second `up` must not touch its token.
    up_state = tmp_path / "up-state"
    up_state.mkdir()
    (up_state / "token").write_text("the-running-swarms-token")
    with socket.socket() as held:
        held.bind(("127.0.0.1", 0))
        held.listen()
        busy = held.getsockname()[1]
        state = str(tmp_path / "state")
        procs = {
            "not local": _start(
                "coordinator",
                "--listen",
                "203.0.113.10:50051",
                "--state-dir",
                state,
                cwd=tmp_path,
                env=tls,
            ),
            "in use": _start(
                "coordinator",
                "--listen",
                f"127.0.0.1:{busy}",
                "--state-dir",
                state,
                cwd=tmp_path,
            ),
            "metadata listen": _start(
                "coordinator",
                "--listen",
                "169.254.169.254:0",
                "--state-dir",
                state,
                cwd=tmp_path,
                env=tls,
            ),
            "metadata worker": _start(
                "worker",
                "--role",
                "echo",
                "--coordinator",
                "169.254.169.254:80",
                "--cache-dir",
                str(tmp_path / "cache"),
                cwd=tmp_path,
            ),
            "metadata status": _start(
                "status", "--coordinator", "[fd00:ec2::254]:80", cwd=tmp_path
            ),
            "up in use": _start(
                "up",
                "--port",
                str(busy),
                "--role",
                "echo",
                "--state-dir",
                str(up_state),
                cwd=tmp_path,
            ),
        }
        results = {name: _finish(proc) for name, proc in procs.items()}
    for name, (code, _) in results.items():
        assert code == 1, name
    assert _one_line(results["not local"][1]) == (
        "swarm-lsp coordinator: cannot listen on 203.0.113.10:50051: 203.0.113.10 is not an "
        "address of this machine (no local interface has it)"
    )
    assert _one_line(results["in use"][1]) == (
        f"swarm-lsp coordinator: cannot listen on 127.0.0.1:{busy}: port {busy} on 127.0.0.1 "
        "is already in use"
    )
    assert "169.254.169.254 is a cloud metadata service address" in _one_line(
        results["metadata listen"][1]
    )
    assert "refusing peer '169.254.169.254:80': 169.254.169.254 is a cloud metadata" in (
        _one_line(results["metadata worker"][1])
    )
    assert "fd00:ec2::254 is a cloud metadata service address" in _one_line(
        results["metadata status"][1]
    )
    assert _one_line(results["up in use"][1]).startswith(
        f"swarm-lsp up: the local coordinator exited (1): cannot listen on 127.0.0.1:{busy}: "
        f"port {busy} on 127.0.0.1 is already in use; see "
    )
    assert (up_state / "token").read_text() == "the-running-swarms-token"
    assert [p.name for p in up_state.iterdir() if "token" in p.name] == ["token"]


def _certs(tmp_path: Path) -> tuple[Path, Path]:
    ours, theirs = tmp_path / "ours", tmp_path / "theirs"
    for args in (
        ("--out", str(ours), "--host", "coordinator-host", "--host", "editor-host"),
        ("--out", str(theirs), "--host", "rogue"),
        ("--out", str(ours), "--host", "old", "--days", "0"),  # the CA exists: only this expires
    ):
        made = subprocess.run(
            [sys.executable, "-m", "swarm_lsp.cli", "certs", *args],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert made.returncode == 0, made.stderr
    return ours, theirs


def _tls_env(ca: Path, cert_dir: Path, host: str) -> dict[str, str]:
    return {
        "SWARM_LSP_SWARM__TLS_CA": str(ca),
        "SWARM_LSP_SWARM__TLS_CERT": str(cert_dir / f"{host}.pem"),
        "SWARM_LSP_SWARM__TLS_KEY": str(cert_dir / f"{host}.key"),
    }


def _wait_for(predicate: Callable[[], bool], what: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, what
        time.sleep(0.05)


def test_tls_failures_name_the_peer_the_side_and_the_cause(
    swarm_factory: Callable[..., Swarm], tmp_path: Path
) -> None:
    ours, theirs = _certs(tmp_path)
    swarm = swarm_factory(env=_tls_env(ours / "ca.pem", ours, "coordinator-host"))
    port = swarm.start_coordinator(listen="0.0.0.0:0").rsplit(":", 1)[1]
    here = f"127.0.0.1:{port}"

    def worker(name: str, env: dict[str, str]) -> subprocess.Popen[str]:
        return _start(
            "worker",
            "--role",
            "echo",
            "--name",
            name,
            "--coordinator",
            here,
            "--cache-dir",
            str(tmp_path / f"cache-{name}"),
            cwd=tmp_path,
            env=env,
        )

    # Wrong CA on the worker: it refuses the coordinator's certificate.
    stranger = worker("stranger", _tls_env(theirs / "ca.pem", theirs, "rogue"))
    # Our CA, but a certificate from the other CA: the coordinator refuses the worker.
    rogue = worker("rogue", _tls_env(ours / "ca.pem", theirs, "rogue"))
    statuses = {
        "name": _start(
            "status",
            "--coordinator",
            f"127.0.0.2:{port}",
            cwd=tmp_path,
            env=_tls_env(ours / "ca.pem", ours, "editor-host"),
        ),
        "expired": _start(
            "status",
            "--coordinator",
            here,
            cwd=tmp_path,
            env=_tls_env(ours / "ca.pem", ours, "old"),
        ),
        "plaintext": _start("status", "--coordinator", here, cwd=tmp_path),
    }
    # A TLS client with no certificate at all: the coordinator hangs up (and says why).
    bare = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    bare.load_verify_locations(cafile=str(ours / "ca.pem"))
    with (
        socket.create_connection(("127.0.0.1", int(port)), timeout=10) as raw,
        bare.wrap_socket(raw, server_hostname="127.0.0.1") as tls,
        contextlib.suppress(OSError),
    ):
        tls.sendall(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n")
        assert tls.recv(64) == b""

    results = {name: _finish(proc) for name, proc in statuses.items()}
    for name, (code, _) in results.items():
        assert code == 1, name
    assert re.fullmatch(
        re.escape(
            f"swarm-lsp status: cannot connect to coordinator 127.0.0.2:{port}: TLS failure: "
            f"this side refuses the coordinator 127.0.0.2:{port}: its certificate is for "
            "coordinator-host, localhost, 127.0.0.1, ::1, not '127.0.0.2' "
            "(certificate for 'coordinator-host', issued by 'swarm-lsp local CA "
        )
        + r"[0-9a-f]{6}"
        + re.escape(
            "'); dial one of those names or make a certificate with "
            "`swarm-lsp certs --host 127.0.0.2`"
        ),
        _one_line(results["name"][1]),
    )
    expired = _one_line(results["expired"][1])
    assert f"TLS failure: the coordinator {here} refuses this side: our certificate" in expired
    assert "old.pem expired on" in expired
    assert f"the coordinator {here} speaks TLS but this side has no TLS configured" in (
        _one_line(results["plaintext"][1])
    )

    # The workers keep retrying (backing off) and say so once each.
    try:
        _wait_for(lambda: stranger.poll() is None and rogue.poll() is None, "workers exited", 1)
        time.sleep(4.0)  # at least three attempts each: 0 s, ~1 s, ~3 s
        assert stranger.poll() is None and rogue.poll() is None
    finally:
        for proc in (stranger, rogue):
            proc.terminate()
        outputs = {
            name: proc.communicate(timeout=30)[1]
            for name, proc in (("stranger", stranger), ("rogue", rogue))
        }
    stranger_line = _one_line(outputs["stranger"])
    assert f"refused by the coordinator {here}: TLS failure: this side refuses the " in (
        stranger_line
    )
    assert "its certificate is signed by a CA we do not trust" in stranger_line
    assert "backing off up to 60s" in stranger_line
    rogue_line = _one_line(outputs["rogue"])
    assert f"TLS failure: the coordinator {here} refuses this side: our certificate" in rogue_line
    assert re.search(
        r"is signed by another CA \(CN=swarm-lsp local CA \w+\) than swarm.tlsCa", rogue_line
    )

    # The coordinator names each peer and the cause; no C-core line reaches its stderr.
    log = swarm.log("coordinator")
    assert not CORE_LINE.search(log), log
    assert "Traceback" not in log
    said = [line for line in log.splitlines() if "TLS handshake with client" in line]
    assert all(re.search(r"with client 127\.0\.0\.[12]:\d+ failed: the client", s) for s in said)
    for cause in (
        "the client's certificate is signed by a CA we do not trust (another CA)",
        "the client's certificate has expired",
        "the client does not speak TLS (a plaintext client)",
        "the client sent no certificate",
        "the client ended the handshake: it does not accept our certificate",
    ):
        assert any(cause in line for line in said), (cause, log)
