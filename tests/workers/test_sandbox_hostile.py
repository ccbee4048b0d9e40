"""A hostile project's tests through the real test role: the strict sandbox holds as root.

CI runs as root, which is the case that matters: bubblewrap then keeps every capability for
itself and the command must still end up with none. The project's own tests are the
attacks (see :mod:`tests.workers.hostile_project`); each passes when its attack fails, and
the host side is checked here: nothing accepted on the host's loopback, nothing written,
nothing left running.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import os
import re
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from swarm_lsp.config import Settings, SwarmSettings
from swarm_lsp.errors import SandboxError, WorkerError
from swarm_lsp.workers.base import TaskRequest
from swarm_lsp.workers.testing import cgroups, coverage, isolation
from swarm_lsp.workers.testing import role as test_role
from tests.workers.conftest import RecordingReporter
from tests.workers.hostile_project import ATTACKS, MEMORY_HOGS

pytestmark = pytest.mark.skipif(
    shutil.which("bwrap") is None, reason="bubblewrap is not installed (make install adds it)"
)

MAX_PROCESSES = 128
REPO = Path(__file__).resolve().parents[2]


def _run(project: Path, **payload: Any) -> dict[str, Any]:
    task = TaskRequest(
        id="hostile", type="test", payload={"kind": "test", **payload}, snapshot_dir=project
    )
    return asyncio.run(test_role.create(Settings()).run(task, RecordingReporter()))


def _running(marker: str) -> list[int]:
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit() and entry != str(os.getpid()):
            with contextlib.suppress(OSError):
                if marker.encode() in Path(f"/proc/{entry}/cmdline").read_bytes():
                    found.append(int(entry))
    return found


@dataclasses.dataclass
class Outcome:
    result: dict[str, Any]
    accepted: list[object]
    host_writes: list[Path]
    marker: str

    def failures(self) -> dict[str, str]:
        return {
            d["message"].split()[0]: d["message"]
            for d in self.result["diagnostics"]
            if d["code"] == "test-failed"
        }


#: The machine's cgroups, and none (a container with a read-only /sys/fs/cgroup, as CI may
#: be): then RLIMIT_NPROC under the run's own uid and the polled memory watch must hold.
CAPS = ["cgroups", "no-cgroups"]
NO_CGROUPS = cgroups.Support((), {c: "turned off by the test" for c in cgroups.CONTROLLERS})


@contextlib.contextmanager
def _caps(mode: str) -> Iterator[None]:
    with pytest.MonkeyPatch.context() as patch:
        if mode == "no-cgroups":
            patch.setattr(cgroups, "_support", [NO_CGROUPS])
        yield


@pytest.fixture(scope="module", params=CAPS)
def hostile(tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest) -> Any:
    """One run of the whole hostile suite (shared: each run costs a sandbox and a pytest)."""
    token = secrets.token_hex(4)
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    listener.settimeout(0.2)
    accepted: list[object] = []
    stop = threading.Event()

    def accept() -> None:
        while not stop.is_set():
            with contextlib.suppress(OSError):
                accepted.append(listener.accept())

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    # The worker's state folder where a swarm of one keeps it, with a task store in it.
    state = Path.home() / ".cache" / "swarm-lsp" / "local-swarm" / f"sandbox-test-{token}"
    state.mkdir(parents=True)
    (state / "tasks.sqlite3").write_text("every task of every user")
    snapshot = tmp_path_factory.mktemp("hostile-snapshot")
    venv = Path(sys.prefix)
    host_writes = [
        venv / "bin" / f"escape-{token}",
        Path("/usr") / f"escape-{token}",
        Path("/etc") / f"escape-{token}",
        snapshot / f"escape-{token}",
        REPO / f"escape-{token}",
        Path("/var/tmp") / f"escape-{token}",
    ]
    config = {
        "port": listener.getsockname()[1],
        "secrets": [
            "/etc/shadow",
            "/etc/ssl/private/ssl-cert-snakeoil.key",
            str(state / "tasks.sqlite3"),
            # Siblings of the interpreter's folder (the venv is bound, its checkout is not).
            str(REPO / "pyproject.toml"),
            str(venv.resolve().parent / "pyproject.toml"),
            "/proc/1/root/etc/hostname",
        ],
        "folders": [str(state), str(Path.home() / ".cache"), "/home", "/var"],
        "venv": str(venv),
        "host_writes": [str(p) for p in host_writes],
        "fork_attempts": 1500,
        "max_processes": MAX_PROCESSES,
        "marker": f"swarm-daemon-{token}",
    }
    (snapshot / "tests").mkdir()
    (snapshot / "tests" / "attack.json").write_text(json.dumps(config))
    (snapshot / "tests" / "test_attacks.py").write_text(ATTACKS)
    (snapshot / "conftest.py").write_text("")
    try:
        with _caps(request.param):
            result = _run(snapshot, limits={"timeout_s": 120, "processes": MAX_PROCESSES})
        yield Outcome(result, accepted, host_writes, config["marker"])
    finally:
        stop.set()
        thread.join(2)
        listener.close()
        shutil.rmtree(state, ignore_errors=True)
        for path in host_writes:
            with contextlib.suppress(OSError):
                path.unlink()


def test_the_whole_hostile_suite_ran_in_the_strict_sandbox(hostile: Outcome) -> None:
    result = hostile.result
    assert result["isolation"] == "bwrap"
    counts = re.search(r"(\d+) failed, (\d+) passed", result["summary"])
    assert counts is not None, result["output_tail"]
    assert int(counts[1]) + int(counts[2]) == ATTACKS.count("\ndef test_"), result["summary"]


@pytest.mark.parametrize(
    "attack",
    [
        "test_no_capabilities",
        "test_no_new_user_namespace_or_keyring",
        "test_secrets_and_state_unreadable",
        "test_remount_and_host_writes_fail",
        "test_host_loopback_unreachable_even_through_nsenter",
        "test_fork_bomb_is_capped",
    ],
)
def test_attack_fails(hostile: Outcome, attack: str) -> None:
    assert attack not in hostile.failures(), hostile.failures()[attack]


def test_the_host_saw_nothing(hostile: Outcome) -> None:
    assert hostile.accepted == []
    assert [p for p in hostile.host_writes if p.exists()] == []
    assert _running(hostile.marker) == []


@pytest.mark.parametrize("mode", CAPS)
def test_whole_task_memory_is_capped(tmp_path: Path, mode: str) -> None:
    (tmp_path / "tests").mkdir()
    (tmp_path / "tests" / "test_hogs.py").write_text(MEMORY_HOGS)
    (tmp_path / "conftest.py").write_text("")
    with _caps(mode):
        result = _run(tmp_path, limits={"task_memory_mb": 1536, "timeout_s": 90})
    if mode == "no-cgroups" or not cgroups.support().for_controller("memory"):
        # The polled watch kills the whole run.
        assert "killed at the whole-task memory cap" in result["summary"], result["output_tail"]
    else:
        # The kernel kills a hog; the project's test sees that not all three held.
        assert result["passed"], result["output_tail"]
        assert "killed at the whole-task memory cap" in result["summary"]


def test_time_output_and_leftovers_are_capped(tmp_path: Path) -> None:
    marker = f"swarm-daemon-{secrets.token_hex(4)}"
    flood = (
        "import subprocess, sys, time\n"
        "subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(600)', "
        f"{marker!r}], start_new_session=True)\n"
        "for i in range(300000): print('x' * 100)\n"
        "time.sleep(600)\n"
    )
    command = [sys.executable, "-c", flood]
    result = _run(tmp_path, command=command, limits={"timeout_s": 4})
    assert result["timed_out"] and result["exit_code"] is None
    assert result["output_bytes"] >= 30_000_000 and result["dropped_bytes"] > 0
    assert _running(marker) == []


def test_strict_refuses_without_bubblewrap_unless_weak_is_chosen(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # bubblewrap is installed here: the probe's finding is replaced to see the refusal.
    monkeypatch.setattr(
        isolation,
        "_level_cache",
        {"strict": "bubblewrap (bwrap) is not installed", "level": "env"},
    )
    (tmp_path / "p").mkdir()
    command = [sys.executable, "-c", "print('ran')"]
    task = TaskRequest(
        id="t", type="test", payload={"command": command}, snapshot_dir=tmp_path / "p"
    )
    with pytest.raises(SandboxError, match=r"apt-get install bubblewrap.*swarm\.sandbox"):
        asyncio.run(test_role.create(Settings()).run(task, RecordingReporter()))
    weak = Settings(swarm=SwarmSettings(sandbox="weak"))
    result = asyncio.run(test_role.create(weak).run(task, RecordingReporter()))
    assert result["isolation"] == "env" and "ran" in result["output_tail"]
    assert coverage.describe("strict").level == "refused"
    assert coverage.describe("weak").level == "env"


def test_a_payload_cannot_name_a_host_folder(tmp_path: Path) -> None:
    (tmp_path / "tests").mkdir()
    (tmp_path / "tests" / "test_x.py").write_text("def test_x():\n    pass\n")
    task = TaskRequest(id="t", type="test", payload={"kind": "test", "root": str(tmp_path)})
    with pytest.raises(WorkerError, match="no snapshot"):
        asyncio.run(test_role.create(Settings()).run(task, RecordingReporter()))
    # Nor through its command: a program in a private host folder is not made visible.
    private = Path.home() / f".swarm-private-{secrets.token_hex(4)}"
    (private / "bin").mkdir(parents=True)
    try:
        (private / "secret.txt").write_text("the user's key")
        tool = private / "bin" / "tool"
        tool.write_text(f"#!/bin/sh\ncat {private / 'secret.txt'}\n")
        tool.chmod(0o755)
        (tmp_path / "p").mkdir()
        result = _run(tmp_path / "p", command=[str(tool)])
        assert result["exit_code"] != 0 and "the user's key" not in result["output_tail"]
    finally:
        shutil.rmtree(private)


def test_doctor_names_the_level_and_the_gaps() -> None:
    found = coverage.describe("strict")
    assert found.level == "bwrap" and "no capabilities" in found.summary
    assert "whole task" in found.processes and "whole task" in found.memory
    assert any("kernel" in gap for gap in found.not_covered)
    assert "seccomp" in found.summary, found.not_covered  # x86_64 and aarch64 have a filter


AS_A_USER = """
import asyncio, json, sys, tempfile
from pathlib import Path
from swarm_lsp.workers.testing import coverage, sandbox

async def main():
    copy = Path(tempfile.mkdtemp())
    script = (
        "grep CapEff /proc/self/status; unshare -U true || echo NO-USERNS; "
        "touch /usr/x 2>/dev/null || echo NO-WRITE; ls /home 2>/dev/null || echo NO-HOME; id -u"
    )
    run = await sandbox.run_sandboxed(["sh", "-c", script], copy)
    print(json.dumps({"output": run.output, "isolation": run.isolation,
                      "level": coverage.describe("strict").level}))

asyncio.run(main())
"""


def _system_python() -> str | None:
    """A Python 3.11+ an ordinary user can run (the worker's may sit in /root)."""
    python = shutil.which("python3", path="/usr/bin:/bin")
    if python is None:
        return None
    done = subprocess.run(
        [python, "-c", "import sys; print(sys.version_info >= (3, 11))"],
        capture_output=True,
        text=True,
    )
    return python if done.stdout.strip() == "True" else None


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to become an ordinary user")
def test_an_ordinary_users_worker_gets_the_strict_sandbox_too() -> None:
    python = _system_python()
    if python is None:
        pytest.skip("no system Python 3.11+ for an ordinary user")
    code = Path(tempfile.mkdtemp(prefix="swarm-user-code-"))
    try:
        package = code / "swarm_lsp"
        shutil.copytree(
            REPO / "swarm_lsp" / "workers" / "testing",
            package / "workers" / "testing",
            ignore=shutil.ignore_patterns("__pycache__"),
        )
        for name in ("__init__.py", "errors.py"):
            shutil.copy(REPO / "swarm_lsp" / name, package)
        (package / "workers" / "__init__.py").write_text("")
        for path in [code, *code.rglob("*")]:
            path.chmod(0o755 if path.is_dir() else 0o644)
        become = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"]
        done = subprocess.run(
            [*become, python, "-c", AS_A_USER],
            capture_output=True,
            text=True,
            timeout=120,
            cwd=code,
            env={"PATH": "/usr/bin:/bin", "HOME": str(code), "PYTHONPATH": str(code)},
        )
        assert done.returncode == 0, done.stderr
        found = json.loads(done.stdout.strip().splitlines()[-1])
        assert found["isolation"] == "bwrap" and found["level"] == "bwrap"
        output = found["output"]
        assert "CapEff:\t0000000000000000" in output, output
        assert "NO-USERNS" in output and "NO-WRITE" in output and "NO-HOME" in output
        assert output.strip().splitlines()[-1] == "65534"
    finally:
        shutil.rmtree(code, ignore_errors=True)
