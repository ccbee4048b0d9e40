"""Whole-task caps for a sandboxed run: a child cgroup for memory and processes.

A run gets its own cgroup under the worker's own one (so every cap the worker itself is under
still holds), with ``memory`` capped for the whole task (no swap) and ``pids`` capped for the
whole task. cgroup v2 is used where the worker's cgroup can delegate the controllers; the v1
``memory`` and ``pids`` hierarchies otherwise. Where neither is writable (a container with a
read-only ``/sys/fs/cgroup``, say), :class:`MemoryWatch` sums the resident memory of the
run's process tree every 100 ms and kills the run past the cap, and the process cap is
``RLIMIT_NPROC`` under the run's own uid (see :mod:`.jail`).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import os
import secrets
import signal
import time
from pathlib import Path

CONTROLLERS = ("memory", "pids")


@dataclasses.dataclass(frozen=True)
class Hierarchy:
    """Where the worker may create child cgroups for one controller."""

    controller: str
    version: str  # "v2" | "v1"
    parent: Path


@dataclasses.dataclass(frozen=True)
class Support:
    """What this machine lets a run be capped with, and why not where it does not."""

    hierarchies: tuple[Hierarchy, ...]
    missing: dict[str, str]  # controller -> why it is not available

    def for_controller(self, controller: str) -> Hierarchy | None:
        return next((h for h in self.hierarchies if h.controller == controller), None)

    def describe(self, controller: str) -> str:
        found = self.for_controller(controller)
        if found is not None:
            return f"cgroup {found.version} ({found.parent})"
        return f"no cgroup ({self.missing.get(controller, 'not found')})"


def _mounts() -> list[tuple[str, str, str, set[str]]]:
    """(mount point, mount root, fs type, super options) of the cgroup mounts."""
    found: list[tuple[str, str, str, set[str]]] = []
    try:
        lines = Path("/proc/self/mountinfo").read_text().splitlines()
    except OSError:
        return found
    for line in lines:
        left, _, right = line.partition(" - ")
        fields, tail = left.split(), right.split()
        if len(fields) < 5 or len(tail) < 3 or tail[0] not in {"cgroup", "cgroup2"}:
            continue
        found.append((fields[4], fields[3], tail[0], set(tail[2].split(","))))
    return found


def _own_paths() -> dict[str, str]:
    """The worker's own cgroup per controller (``"2"`` for the v2 unified one)."""
    paths: dict[str, str] = {}
    try:
        lines = Path("/proc/self/cgroup").read_text().splitlines()
    except OSError:
        return paths
    for line in lines:
        number, _, rest = line.partition(":")
        names, _, path = rest.partition(":")
        if number == "0" and not names:
            paths["2"] = path
        for name in names.split(","):
            if name:
                paths[name] = path
    return paths


def _join(mount: str, root: str, own: str) -> Path:
    if root != "/" and own.startswith(root):
        own = own[len(root) :]
    return Path(mount) / own.lstrip("/")


def _writable(parent: Path) -> str:
    """An empty string when a child cgroup can be made (and removed) under ``parent``."""
    probe = parent / f"swarm-probe-{os.getpid()}-{secrets.token_hex(3)}"
    try:
        probe.mkdir()
    except OSError as err:
        return f"cannot create a cgroup under {parent}: {err.strerror or err}"
    with contextlib.suppress(OSError):
        probe.rmdir()
    return ""


def _v2_parent(mount: str, root: str, own: str, missing: dict[str, str]) -> Path | None:
    parent = _join(mount, root, own)
    try:
        available = set((parent / "cgroup.controllers").read_text().split())
        enabled = set((parent / "cgroup.subtree_control").read_text().split())
    except OSError as err:
        for controller in CONTROLLERS:
            missing[controller] = f"cgroup v2 at {parent} is not readable: {err.strerror}"
        return None
    wanted = [c for c in CONTROLLERS if c in available and c not in enabled]
    if wanted:
        # Fails (EBUSY) when the worker's own cgroup holds processes and is not the root.
        with contextlib.suppress(OSError):
            (parent / "cgroup.subtree_control").write_text(" ".join(f"+{c}" for c in wanted))
        with contextlib.suppress(OSError):
            enabled = set((parent / "cgroup.subtree_control").read_text().split())
    for controller in CONTROLLERS:
        if controller not in enabled:
            missing[controller] = f"cgroup v2 does not delegate {controller} to {parent}"
    if not any(c in enabled for c in CONTROLLERS):
        return None
    why = _writable(parent)
    if why:
        for controller in CONTROLLERS:
            missing[controller] = why
        return None
    return parent


def detect() -> Support:
    """Probe the cgroup hierarchies (makes and removes one empty child cgroup per hierarchy)."""
    own = _own_paths()
    missing: dict[str, str] = {c: "no cgroup hierarchy with this controller" for c in CONTROLLERS}
    found: dict[str, Hierarchy] = {}
    for mount, root, kind, _options in _mounts():
        if kind == "cgroup2" and "2" in own:
            parent = _v2_parent(mount, root, own["2"], missing)
            if parent is not None:
                enabled = set((parent / "cgroup.subtree_control").read_text().split())
                for controller in CONTROLLERS:
                    if controller in enabled and controller not in found:
                        found[controller] = Hierarchy(controller, "v2", parent)
    for mount, root, kind, options in _mounts():
        for controller in CONTROLLERS:
            if kind != "cgroup" or controller not in options or controller in found:
                continue
            if controller not in own:
                continue
            parent = _join(mount, root, own[controller])
            why = _writable(parent)
            if why:
                missing[controller] = why
            else:
                found[controller] = Hierarchy(controller, "v1", parent)
    for controller in found:
        missing.pop(controller, None)
    return Support(tuple(found.values()), missing)


_support: list[Support] = []


def support() -> Support:
    """:func:`detect`, once per process."""
    if not _support:
        try:
            found = detect()
        except OSError as err:  # an odd cgroup mount: no cgroups rather than no test runs
            found = Support((), {c: f"cgroups unreadable: {err}" for c in CONTROLLERS})
        _support.append(found)
    return _support[0]


class TaskCgroup:
    """The child cgroup(s) of one run: join them before ``exec``, kill and remove after."""

    def __init__(self, dirs: dict[Path, Hierarchy], memory: bool, pids: bool) -> None:
        self.dirs = dirs
        self.memory_capped = memory
        self.pids_capped = pids

    @classmethod
    def create(cls, found: Support, memory_bytes: int, pids_max: int) -> TaskCgroup | None:
        """Make the run's cgroups with their caps; None when the machine has none to give."""
        name = f"swarm-sandbox-{os.getpid()}-{secrets.token_hex(4)}"
        dirs: dict[Path, Hierarchy] = {}
        memory = pids = False
        for hierarchy in found.hierarchies:
            path = hierarchy.parent / name
            try:
                if path not in dirs:
                    path.mkdir()
                    dirs[path] = hierarchy
                if hierarchy.controller == "memory":
                    _write_memory(path, hierarchy.version, memory_bytes)
                    memory = True
                else:
                    (path / "pids.max").write_text(str(pids_max))
                    pids = True
            except OSError:
                continue
        if not dirs:
            return None
        return cls(dirs, memory, pids)

    @property
    def procs_files(self) -> list[str]:
        return [str(path / "cgroup.procs") for path in self.dirs]

    def oom_kills(self) -> int:
        """How many processes the kernel killed at the memory cap."""
        total = 0
        for path, hierarchy in self.dirs.items():
            name = "memory.events" if hierarchy.version == "v2" else "memory.oom_control"
            with contextlib.suppress(OSError, ValueError):
                for line in (path / name).read_text().splitlines():
                    key, _, value = line.partition(" ")
                    if key == "oom_kill":
                        total += int(value)
        return total

    def pids(self) -> set[int]:
        found: set[int] = set()
        for path in self.dirs:
            with contextlib.suppress(OSError, ValueError):
                found.update(int(p) for p in (path / "cgroup.procs").read_text().split())
        return found

    def kill(self) -> None:
        """SIGKILL every process in the run's cgroups."""
        for path in self.dirs:
            kill_file = path / "cgroup.kill"
            if kill_file.exists():
                with contextlib.suppress(OSError):
                    kill_file.write_text("1")
        for pid in self.pids():
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGKILL)

    async def remove(self, timeout_s: float = 5.0) -> None:
        """Kill what is left and remove the cgroups (they can only go once empty)."""
        deadline = time.monotonic() + timeout_s
        pending = list(self.dirs)
        pause = 0.001  # the kernel lets go of a killed run's cgroup within a few ms, mostly
        while pending:
            self.kill()
            for path in list(pending):
                try:
                    path.rmdir()
                    pending.remove(path)
                except FileNotFoundError:
                    pending.remove(path)
                except OSError:
                    pass
            if not pending or time.monotonic() > deadline:
                return
            await asyncio.sleep(pause)
            pause = min(0.05, pause * 2)


def _write_memory(path: Path, version: str, limit: int) -> None:
    if version == "v2":
        (path / "memory.max").write_text(str(limit))
        with contextlib.suppress(OSError):
            (path / "memory.swap.max").write_text("0")
        return
    (path / "memory.limit_in_bytes").write_text(str(limit))
    with contextlib.suppress(OSError):  # only with swap accounting on
        (path / "memory.memsw.limit_in_bytes").write_text(str(limit))


# -- without a memory cgroup: watch the process tree ---------------------------------------


def process_tree(root_pid: int) -> set[int]:
    """``root_pid`` and every descendant (through each thread's ``children`` list)."""
    seen: set[int] = set()
    todo = [root_pid]
    while todo:
        pid = todo.pop()
        if pid in seen:
            continue
        seen.add(pid)
        try:
            tasks = os.listdir(f"/proc/{pid}/task")
        except OSError:
            continue
        for tid in tasks:
            with contextlib.suppress(OSError, ValueError):
                children = Path(f"/proc/{pid}/task/{tid}/children").read_text().split()
                todo.extend(int(c) for c in children)
    return seen


_PAGE = os.sysconf("SC_PAGE_SIZE")


def private_memory(pids: set[int]) -> int:
    """Bytes of resident memory not shared with files, summed over ``pids``."""
    total = 0
    for pid in pids:
        with contextlib.suppress(OSError, ValueError, IndexError):
            fields = Path(f"/proc/{pid}/statm").read_text().split()
            total += max(0, int(fields[1]) - int(fields[2])) * _PAGE
    return total


class MemoryWatch:
    """Kills a run whose process tree holds more than ``limit`` bytes (polled every 100 ms)."""

    def __init__(self, root_pid: int, limit: int, interval_s: float = 0.1) -> None:
        self.root_pid = root_pid
        self.limit = limit
        self.interval_s = interval_s
        self.exceeded = False
        self.peak = 0

    async def watch(self) -> None:
        while True:
            tree = process_tree(self.root_pid)
            used = private_memory(tree)
            self.peak = max(self.peak, used)
            if used > self.limit:
                self.exceeded = True
                for pid in tree:
                    with contextlib.suppress(ProcessLookupError, PermissionError):
                        os.kill(pid, signal.SIGKILL)
                return
            await asyncio.sleep(self.interval_s)
