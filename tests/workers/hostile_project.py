"""The tests of a hostile project, run by the real test role inside the sandbox.

Written into the project as ``tests/test_attacks.py`` next to an ``attack.json`` that names
the host's port, paths and markers. Each test *passes* when its attack fails; the host-side
checks (nothing accepted, nothing written, nothing left running) are made by the caller.
"""

ATTACKS = r"""
import glob
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

CONFIG = json.loads(Path(__file__).with_name("attack.json").read_text())


def _status(field):
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return line.split()[1]
    raise AssertionError(f"no {field} in /proc/self/status")


def _fails(argv):
    done = subprocess.run(argv, capture_output=True, timeout=20)
    return done.returncode != 0


def _reaches_host():
    try:
        socket.create_connection(("127.0.0.1", CONFIG["port"]), timeout=2).close()
    except OSError:
        return False
    return True


def test_no_capabilities():
    assert os.getuid() != 0 and os.geteuid() != 0 and os.getgid() != 0
    for field in ("CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb"):
        assert int(_status(field), 16) == 0, field
    assert _status("NoNewPrivs") == "1"


def test_no_new_user_namespace_or_keyring():
    import ctypes
    import errno

    assert _fails(["unshare", "-U", "true"])
    assert _fails(["unshare", "-Urm", "true"])
    libc = ctypes.CDLL(None, use_errno=True)
    # keyctl(KEYCTL_GET_KEYRING_ID, KEY_SPEC_SESSION_KEYRING, 0): x86_64 250, aarch64 219.
    number = {"x86_64": 250, "aarch64": 219}[os.uname().machine]
    assert libc.syscall(number, 0, -3, 0) == -1 and ctypes.get_errno() == errno.EPERM


def test_secrets_and_state_unreadable():
    for path in CONFIG["secrets"]:
        with pytest.raises(OSError):
            Path(path).read_bytes()
    for folder in CONFIG["folders"]:
        with pytest.raises(OSError):
            os.listdir(folder)


def test_remount_and_host_writes_fail():
    assert _fails(["mount", "-o", "remount,rw", "/"])
    assert _fails(["mount", "-o", "remount,bind,rw", CONFIG["venv"]])
    assert _fails(["umount", "-l", "/tmp"])
    # Root in a user namespace of its own: the mounts it inherits stay locked read-only.
    nested = (
        "mount -o remount,bind,rw / ; mount -o remount,bind,rw /usr ; umount -l /usr ; "
        + " ; ".join(f"echo x > {p}" for p in CONFIG["host_writes"])
    )
    subprocess.run(["unshare", "-Urm", "sh", "-c", nested], capture_output=True, timeout=20)
    for path in CONFIG["host_writes"]:
        with pytest.raises(OSError):
            with open(path, "w") as handle:
                handle.write("escaped")


def test_host_loopback_unreachable_even_through_nsenter():
    assert not _reaches_host()
    assert _fails(["umount", "-l", "/proc"])
    probe = (
        "import socket; socket.create_connection(('127.0.0.1', %d), timeout=2); print('REACHED')"
        % CONFIG["port"]
    )
    for namespace in glob.glob("/proc/[0-9]*/ns/net"):
        done = subprocess.run(
            ["nsenter", f"--net={namespace}", sys.executable, "-c", probe],
            capture_output=True,
            timeout=20,
        )
        assert b"REACHED" not in done.stdout
    nested = f"umount -l /proc; nsenter --net=/proc/1/ns/net {sys.executable} -c \"{probe}\""
    done = subprocess.run(["unshare", "-Urm", "sh", "-c", nested], capture_output=True, timeout=20)
    assert b"REACHED" not in done.stdout
    assert not _reaches_host()


def test_fork_bomb_is_capped():
    children = []
    try:
        for _ in range(CONFIG["fork_attempts"]):
            try:
                pid = os.fork()
            except OSError:
                break
            if pid == 0:
                time.sleep(60)
                os._exit(0)
            children.append(pid)
    finally:
        for pid in children:
            os.kill(pid, signal.SIGKILL)
        for pid in children:
            os.waitpid(pid, 0)
    assert len(children) <= CONFIG["max_processes"]


def test_a_daemon_is_left_behind():
    marker = CONFIG["marker"]
    subprocess.Popen(
        [sys.executable, "-c", "import time; time.sleep(600)", marker],
        start_new_session=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
"""

MEMORY_HOGS = r"""
import subprocess
import sys

HOG = "data = b'x' * (1 << 30); print('HELD', flush=True); import time; time.sleep(2)"


def test_three_hogs_of_one_gib_do_not_all_hold():
    hogs = [
        subprocess.Popen([sys.executable, "-c", HOG], stdout=subprocess.PIPE) for _ in range(3)
    ]
    held = 0
    for hog in hogs:
        out, _ = hog.communicate(timeout=60)
        held += hog.returncode == 0 and b"HELD" in out
    assert held < 3
"""
