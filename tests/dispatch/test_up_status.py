"""``swarm-lsp up``, ``swarm-lsp status``, ``swarm-lsp certs`` and LocalSwarm, as real processes."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import grpc
import pytest

from swarm_lsp.dispatch import codec
from swarm_lsp.dispatch.client import DispatchClient
from swarm_lsp.dispatch.local_swarm import LocalSwarm
from swarm_lsp.dispatch.local_token import find_token
from swarm_lsp.dispatch.proto import swarm_pb2 as pb
from swarm_lsp.dispatch.proto import swarm_pb2_grpc as pb_grpc
from swarm_lsp.dispatch.security import TOKEN_HEADER

from .conftest import connect

pytestmark = pytest.mark.slow


def _children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
            found.append(int(entry.name))
    return found


def _cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "swarm_lsp.cli", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=60,
    )


async def test_up_runs_a_swarm_of_one_and_stops_cleanly(tmp_path: Path) -> None:
    ready = tmp_path / "ready"
    up = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "swarm_lsp.cli",
            "up",
            "--port",
            "0",
            "--role",
            "echo",
            "--role",
            "sleep",
            "--state-dir",
            str(tmp_path / "state"),
            "--ready-file",
            str(ready),
        ],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        deadline = time.monotonic() + 60
        while not ready.exists():
            assert up.poll() is None, up.stdout.read() if up.stdout else ""
            assert time.monotonic() < deadline, "swarm-lsp up did not come up"
            time.sleep(0.1)
        address = ready.read_text().strip()
        assert address.startswith("127.0.0.1:")
        children = _children(up.pid)
        assert len(children) == 3  # coordinator + two workers

        # Credentials on every door: a fresh token, 0600, required on SubmitTask and the rest.
        token_file = tmp_path / "state" / "token"
        assert oct(token_file.stat().st_mode & 0o777) == "0o600"
        assert oct((tmp_path / "state").stat().st_mode & 0o777) == "0o700"
        token = token_file.read_text()
        assert len(token) >= 32
        await _assert_token_required(address, token)

        # The client finds the token itself (no swarm.token configured).
        async with connect(address) as client:
            receipt = await client.submit("echo", {"text": "up"})
            final = await client.wait(receipt.task_id)
            assert final.worker == "local-echo" and final.text == "up"

        shown = _cli("status", "--coordinator", address, cwd=tmp_path)
        assert shown.returncode == 0, shown.stderr
        assert "local-echo" in shown.stdout and "local-sleep" in shown.stdout
        assert "SUCCEEDED" in shown.stdout and "queue depth 0" in shown.stdout
        as_json = json.loads(
            _cli("status", "--coordinator", address, "--json", cwd=tmp_path).stdout
        )
        assert {m["name"] for m in as_json["machines"]} == {"local-echo", "local-sleep"}

        up.send_signal(signal.SIGINT)
        out, _ = up.communicate(timeout=30)
        assert up.returncode == 0
        assert f"coordinator on {address}" in out and "stopped" in out
        for pid in children:
            assert (
                not Path(f"/proc/{pid}").exists()
                or "Z" in Path(f"/proc/{pid}/stat").read_text().split()[2]
            )
        assert find_token(address) == ""  # the link to the token went with the swarm
    finally:
        if up.poll() is None:
            up.kill()
            up.wait()


async def _assert_token_required(address: str, token: str) -> None:
    """Raw gRPC: no token and a wrong token are UNAUTHENTICATED; the right one is served."""
    task = pb.Task(type="echo", context=codec.encode_json({"text": "raw"}))
    async with grpc.aio.insecure_channel(address) as channel:
        stub = pb_grpc.SwarmCoordinatorStub(channel)
        for metadata in ((), ((TOKEN_HEADER, "not-the-token"),)):
            with pytest.raises(grpc.aio.AioRpcError) as refused:
                await stub.SubmitTask(task, metadata=metadata, timeout=10)
            assert refused.value.code() == grpc.StatusCode.UNAUTHENTICATED
            with pytest.raises(grpc.aio.AioRpcError) as refused:
                await stub.GetSwarmStatus(pb.SwarmStatusRequest(), metadata=metadata, timeout=10)
            assert refused.value.code() == grpc.StatusCode.UNAUTHENTICATED
        receipt = await stub.SubmitTask(task, metadata=((TOKEN_HEADER, token),), timeout=10)
        assert receipt.task_id


def test_status_without_a_coordinator_says_so(tmp_path: Path) -> None:
    shown = _cli("status", "--coordinator", "127.0.0.1:1", cwd=tmp_path)
    assert shown.returncode == 1
    assert "cannot reach coordinator 127.0.0.1:1" in shown.stderr


def test_certs_command_makes_a_ca_and_host_certs(tmp_path: Path) -> None:
    made = _cli(
        "certs",
        "--out",
        str(tmp_path / "certs"),
        "--host",
        "box1",
        "--host",
        "10.0.0.7",
        cwd=tmp_path,
    )
    assert made.returncode == 0, made.stderr
    names = sorted(p.name for p in (tmp_path / "certs").iterdir())
    assert names == ["10.0.0.7.key", "10.0.0.7.pem", "box1.key", "box1.pem", "ca.key", "ca.pem"]
    assert oct((tmp_path / "certs" / "ca.key").stat().st_mode & 0o777) == "0o600"


async def test_local_swarm_starts_and_stops_child_processes(tmp_path: Path) -> None:
    swarm = LocalSwarm(roles=("echo", "nonexistent"))  # its own state dir, removed by stop()
    address = await swarm.start()
    try:
        assert swarm.token and swarm.settings.swarm.coordinator == address
        await _assert_token_required(address, swarm.token)
        assert "nonexistent" in swarm.skipped
        client = await DispatchClient.connect(swarm.settings)
        try:
            receipt = await client.submit("echo", {"text": "local swarm"})
            assert (await client.wait(receipt.task_id)).worker == "local-echo"
            status = await client.status()
            assert [m.name for m in status.machines] == ["local-echo"]
        finally:
            await client.close()
        pids = [p.pid for p in [swarm.coordinator, *swarm.workers.values()] if p is not None]
        for pid in pids:  # the token is never in a child's environment (tasks inherit that)
            assert swarm.token.encode() not in Path(f"/proc/{pid}/environ").read_bytes()
    finally:
        await swarm.stop()
    for pid in pids:
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)
    assert not swarm.state_dir.exists()


def test_worker_with_an_unknown_role_says_so_and_exits(tmp_path: Path) -> None:
    shown = _cli("worker", "--role", "astrology", "--coordinator", "127.0.0.1:1", cwd=tmp_path)
    assert shown.returncode == 1
    assert "unknown role 'astrology'" in shown.stderr and "Traceback" not in shown.stderr


def test_coordinator_refuses_plaintext_beyond_loopback(tmp_path: Path) -> None:
    shown = _cli("coordinator", "--listen", "0.0.0.0:0", "--state-dir", str(tmp_path), cwd=tmp_path)
    assert shown.returncode == 1
    assert "without TLS" in shown.stderr and "Traceback" not in shown.stderr
