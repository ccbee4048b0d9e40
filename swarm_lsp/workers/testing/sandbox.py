"""Run an untrusted command on a throw-away copy of a workspace.

Isolation levels, strongest first:

- ``bwrap`` (bubblewrap, Debian package ``bubblewrap``): the strict sandbox of :mod:`.jail`:
  an unprivileged uid with no capabilities, only the copy writable, nothing of the host
  visible but the system folders, the interpreter and the toolchains (read-only); its own
  PID, IPC, UTS and network (loopback only) namespaces;
- ``unshare -n`` (we run as root on workers): a network namespace with loopback up, but the
  file system is shared and the command keeps the worker's privileges;
- ``env``: only an environment without proxy variables.

The strict sandbox is the only one used unless the settings say ``swarm.sandbox = "weak"``;
without it a run is refused with the fix (:data:`REFUSAL`).

Every level adds whole-task caps (:mod:`.cgroups`: a cgroup for memory and processes, or
``RLIMIT_NPROC`` under the run's own uid and a polled memory watch), resource limits applied
by ``prlimit`` before ``exec`` (CPU seconds, address space, file size per process), a
wall-clock limit, an output cap (the first and the last bytes are kept, the count of dropped
bytes is reported) and a new process group that is killed as a whole on timeout or
cancellation.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import os
import shutil
import signal
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

from swarm_lsp.errors import SandboxError
from swarm_lsp.workers.testing import cgroups, jail, seccomp
from swarm_lsp.workers.testing.isolation import (
    available_level,
    isolation_level,
    seccomp_problem,
    strict_problem,
)
from swarm_lsp.workers.testing.workspace import SKIP_DIRS, clean_environment, copy_workspace

__all__ = [  # the levels and the workspace copy live in their own modules; importable here too
    "POLICIES",
    "REFUSAL",
    "SKIP_DIRS",
    "Limits",
    "SandboxResult",
    "available_level",
    "clean_environment",
    "copy_workspace",
    "isolation_level",
    "run_sandboxed",
    "seccomp_problem",
    "strict_problem",
]

#: Why a run is refused when the strict sandbox cannot be had, and what fixes it.
REFUSAL = (
    "test tasks run only in the bubblewrap sandbox, which this machine cannot start{why}: "
    "install it (apt-get install bubblewrap), or accept weaker isolation with the setting "
    'swarm.sandbox = "weak" (SWARM_LSP_SWARM__SANDBOX=weak)'
)
POLICIES = ("strict", "weak")


@dataclasses.dataclass(frozen=True, kw_only=True)
class Limits:
    """Resource limits of one sandboxed run."""

    timeout_s: float = 300.0
    cpu_s: int = 600
    memory_mb: int = 4096
    file_size_mb: int = 512
    output_head_bytes: int = 16 * 1024
    output_tail_bytes: int = 64 * 1024
    processes: int = 512  # whole task (processes and threads)
    task_memory_mb: int = 6144  # whole task


@dataclasses.dataclass(kw_only=True)
class SandboxResult:
    """What a sandboxed command did."""

    argv: list[str]
    exit_code: int | None
    output_head: str
    output_tail: str
    output_bytes: int
    dropped_bytes: int
    timed_out: bool
    cancelled: bool
    duration_s: float
    isolation: str
    memory_exceeded: bool = False  # the polled watch killed the whole run
    oom_kills: int = 0  # processes the kernel killed at the memory cgroup's cap

    @property
    def output(self) -> str:
        """Head and tail of the output, with a marker where bytes were dropped."""
        if not self.dropped_bytes:
            return self.output_head + self.output_tail
        marker = f"\n[... {self.dropped_bytes} bytes of output dropped ...]\n"
        return self.output_head + marker + self.output_tail


def _wrap(argv: Sequence[str], level: str) -> list[str]:
    if level == "unshare":
        # A new network namespace has loopback down; bring it up, then run the command.
        script = 'ip link set lo up 2>/dev/null; exec "$@"'
        return ["unshare", "-n", "sh", "-c", script, "sh", *argv]
    return list(argv)


def _limited(argv: list[str], limits: Limits, nproc: int | None) -> list[str]:
    """``argv`` behind resource limits (CPU seconds, address space, file size, no core and,
    when given, the number of processes of the run's uid).

    The limits are set by ``prlimit`` (util-linux) or, without it, by a tiny Python
    ``exec`` wrapper. Not by ``preexec_fn``: that makes Python fork instead of vfork and run
    fork handlers in the child, and gRPC's handlers in a worker process can crash it.
    """
    cpu = max(1, int(limits.cpu_s))
    memory = limits.memory_mb * 1024 * 1024
    fsize = limits.file_size_mb * 1024 * 1024
    if shutil.which("prlimit"):
        return [
            "prlimit",
            f"--cpu={cpu}:{cpu + 5}",
            f"--as={memory}",
            f"--fsize={fsize}",
            "--core=0",
            *([f"--nproc={nproc}"] if nproc else []),
            "--",
            *argv,
        ]
    script = (
        "import os, resource, sys\n"
        f"resource.setrlimit(resource.RLIMIT_CPU, ({cpu}, {cpu + 5}))\n"
        f"resource.setrlimit(resource.RLIMIT_AS, ({memory}, {memory}))\n"
        f"resource.setrlimit(resource.RLIMIT_FSIZE, ({fsize}, {fsize}))\n"
        "resource.setrlimit(resource.RLIMIT_CORE, (0, 0))\n"
        + (f"resource.setrlimit(resource.RLIMIT_NPROC, ({nproc}, {nproc}))\n" if nproc else "")
        + "os.execvp(sys.argv[1], sys.argv[1:])\n"
    )
    return [sys.executable, "-c", script, *argv]


class _OutputCap:
    """Keeps the first ``head`` and the last ``tail`` bytes of a stream."""

    def __init__(self, head: int, tail: int) -> None:
        self.head_limit = head
        self.tail_limit = tail
        self.head = bytearray()
        self.tail = bytearray()
        self.total = 0

    def feed(self, data: bytes) -> None:
        self.total += len(data)
        room = self.head_limit - len(self.head)
        if room > 0:
            self.head += data[:room]
            data = data[room:]
        if data:
            self.tail += data
            if len(self.tail) > self.tail_limit:
                del self.tail[: len(self.tail) - self.tail_limit]

    @property
    def dropped(self) -> int:
        return self.total - len(self.head) - len(self.tail)


def _kill_group(process: asyncio.subprocess.Process) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, signal.SIGKILL)


_JOIN_CGROUPS = 'while [ "$1" != -- ]; do echo $$ > "$1" || exit 125; shift; done; shift; exec "$@"'


def _nproc(limits: Limits, level: str) -> int | None:
    """RLIMIT_NPROC for the run: its own uid's count as root, on top of the user's otherwise."""
    if jail.as_root():
        # The kernel never applies it to uid 0: only the strict sandbox's own uid is capped.
        return limits.processes if level == "bwrap" else None
    uid = os.getuid()
    mine = 0
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            with contextlib.suppress(OSError):
                mine += os.stat(f"/proc/{entry}").st_uid == uid
    return mine + limits.processes


def _refuse_unless_allowed(policy: str) -> str:
    level = available_level()
    if level != "bwrap" and policy != "weak":
        why = strict_problem()
        raise SandboxError(REFUSAL.format(why=f" ({why})" if why else ""))
    return level


async def run_sandboxed(
    argv: Sequence[str],
    workdir: Path,
    *,
    limits: Limits | None = None,
    cancel_event: asyncio.Event | None = None,
    env: Mapping[str, str] | None = None,
    isolation: str | None = None,
    policy: str = "strict",
) -> SandboxResult:
    """Run ``argv`` in ``workdir`` (which the command may change) under the sandbox.

    ``policy`` ``"strict"`` refuses to run without the bubblewrap sandbox; ``"weak"`` falls
    back to the strongest level available. ``isolation`` forces a level (tests, benchmarks).
    Never raises for what the command does (exit code, timeout, cancellation are reported in
    the result); raises :class:`SandboxError` when the command cannot be started.
    """
    limits = limits or Limits()
    level = isolation or _refuse_unless_allowed(policy)
    if not argv:
        raise SandboxError("empty command")
    workdir = workdir.resolve()
    environment = dict(env) if env is not None else clean_environment(workdir)
    built: jail.Jail | None = None
    group: cgroups.TaskCgroup | None = None

    def setup() -> tuple[jail.Jail | None, cgroups.TaskCgroup | None, int | None]:
        made = jail.prepare(workdir, environment) if level == "bwrap" else None
        task_memory = limits.task_memory_mb * 1024 * 1024
        caps = cgroups.TaskCgroup.create(cgroups.support(), task_memory, limits.processes + 8)
        return made, caps, _nproc(limits, level)

    filter_fd: int | None = None
    try:
        built, group, nproc = await asyncio.to_thread(setup)
        if built is not None and not seccomp_problem():
            filter_fd = seccomp.open_program()
        command = _wrap(argv, level)
        if built is not None:
            command = built.argv(argv, seccomp_fd=filter_fd)
        wrapped = _limited(command, limits, nproc)
        if group is not None:
            wrapped = ["sh", "-c", _JOIN_CGROUPS, "swarm-join", *group.procs_files, "--", *wrapped]
        watch_memory = group is None or not group.memory_capped
        result = await _supervise(
            wrapped,
            argv,
            workdir,
            environment,
            limits,
            level,
            cancel_event,
            watch_memory,
            () if filter_fd is None else (filter_fd,),
        )
        if group is not None and group.memory_capped:
            result.oom_kills = group.oom_kills()
        if built is not None:
            # Nothing of the run outlives its result (daemons on their way out included).
            await asyncio.to_thread(jail.reap, built.uid)
        return result
    finally:
        if filter_fd is not None:
            os.close(filter_fd)
        if group is not None:
            await group.remove()
        if built is not None:
            built.release()


async def _supervise(
    wrapped: list[str],
    argv: Sequence[str],
    workdir: Path,
    env: Mapping[str, str],
    limits: Limits,
    level: str,
    cancel_event: asyncio.Event | None,
    watch_memory: bool,
    pass_fds: tuple[int, ...],
) -> SandboxResult:
    cap = _OutputCap(limits.output_head_bytes, limits.output_tail_bytes)
    start = time.perf_counter()
    try:
        process = await asyncio.create_subprocess_exec(
            *wrapped,
            cwd=str(workdir),
            env=dict(env),
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
            start_new_session=True,
            pass_fds=pass_fds,
        )
    except OSError as err:
        raise SandboxError(f"cannot start {argv[0]!r}: {err}") from err

    async def pump() -> None:
        assert process.stdout is not None
        while True:
            data = await process.stdout.read(65536)
            if not data:
                return
            cap.feed(data)

    timed_out = cancelled = False
    watch = cgroups.MemoryWatch(process.pid, limits.task_memory_mb * 1024 * 1024)
    watch_task = asyncio.ensure_future(watch.watch()) if watch_memory else None
    pump_task = asyncio.ensure_future(pump())
    wait_task = asyncio.ensure_future(process.wait())
    cancel_task = asyncio.ensure_future(cancel_event.wait()) if cancel_event else None
    try:
        watched: set[asyncio.Future[object]] = {wait_task}  # type: ignore[arg-type]
        if cancel_task is not None:
            watched.add(cancel_task)  # type: ignore[arg-type]
        done, _ = await asyncio.wait(
            watched, timeout=limits.timeout_s, return_when=asyncio.FIRST_COMPLETED
        )
        if wait_task not in done:
            if cancel_task is not None and cancel_task in done:
                cancelled = True
            else:
                timed_out = True
            _kill_group(process)
            await wait_task
        # Children that outlived the main process (daemons, stuck grandchildren) go too.
        _kill_group(process)
        try:
            await asyncio.wait_for(pump_task, timeout=5)
        except TimeoutError:
            pump_task.cancel()
    except asyncio.CancelledError:
        _kill_group(process)
        raise
    finally:
        for task in (cancel_task, watch_task):
            if task is not None:
                task.cancel()
        if not pump_task.done():
            pump_task.cancel()
    return SandboxResult(
        argv=list(argv),
        exit_code=None if (timed_out or cancelled) else process.returncode,
        output_head=cap.head.decode("utf-8", "replace"),
        output_tail=cap.tail.decode("utf-8", "replace"),
        output_bytes=cap.total,
        dropped_bytes=cap.dropped,
        timed_out=timed_out,
        cancelled=cancelled,
        duration_s=time.perf_counter() - start,
        isolation=level,
        memory_exceeded=watch.exceeded,
    )
