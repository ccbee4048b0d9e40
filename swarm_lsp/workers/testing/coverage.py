"""What the test sandbox holds on this machine, and what it does not: for ``swarm-lsp doctor``."""

from __future__ import annotations

import dataclasses
import shutil

from swarm_lsp.workers.testing import cgroups, jail, sandbox

#: Never covered, whatever the level.
NOT_COVERED = (
    "the kernel is shared: a kernel bug reachable from the system calls left open is an escape "
    "(the seccomp filter is a short deny list, not an allow list)",
    "CPU time is capped per process (prlimit) and by the wall-clock limit, not shared out",
    "disk use inside the project copy is capped per file only",
)


@dataclasses.dataclass(frozen=True)
class Coverage:
    """The sandbox level a test task gets here under ``policy``."""

    policy: str
    level: str  # bwrap | unshare | env | refused
    summary: str
    processes: str
    memory: str
    not_covered: tuple[str, ...]
    fix: str = ""


def describe(policy: str) -> Coverage:
    """Probe this machine (a real sandboxed ``true``, one empty cgroup made and removed)."""
    problem = sandbox.strict_problem()
    found = cgroups.support()
    pids = found.for_controller("pids")
    memory_cgroup = found.for_controller("memory")
    gaps = list(NOT_COVERED)
    if not problem:
        level = "bwrap"
        who = (
            "a uid of its own per run (setpriv), no capabilities, no_new_privs"
            if jail.as_root()
            else "the worker's uid in a user namespace, no capabilities, no nested user namespaces"
        )
        filtered = sandbox.seccomp_problem()
        summary = (
            f"strict (bubblewrap): {who}; new PID, IPC, UTS, network and cgroup namespaces; "
            "only the project copy writable; the host shows only /usr, a few /etc files, the "
            "interpreter and toolchains, read-only"
        )
        if filtered:
            gaps.append(f"no seccomp filter ({filtered}): new user namespaces, the keyring")
        else:
            summary += "; seccomp: no new user namespaces, keyring, TIOCSTI or foreign ABIs"
    elif policy == "weak":
        level = sandbox.available_level()
        summary = (
            f"weak ({level}): {problem}; test commands run with the worker's privileges"
            + (" and no network" if level == "unshare" else " and the network")
            + ", and see and may change the host's files"
        )
        gaps.append("privileges, host files and (without unshare) the network")
    else:
        level = "refused"
        summary = f"test tasks are refused: {problem}"
    if pids is not None:
        processes = f"whole task, pids {found.describe('pids')}"
    elif level == "bwrap" and jail.as_root():
        processes = "whole task, RLIMIT_NPROC under the run's own uid"
    else:
        processes = "RLIMIT_NPROC on top of the worker user's own processes"
        gaps.append("a whole-task process cap (no pids cgroup here)")
    if memory_cgroup is not None:
        memory = f"whole task, hard: memory {found.describe('memory')}"
    else:
        memory = (
            "whole task, polled every 100 ms (sum of private resident memory; "
            f"{found.missing.get('memory', 'no memory cgroup')}), plus a per-process "
            "address-space limit"
        )
        gaps.append("a hard whole-task memory cap (a burst between two polls gets through)")
    fix = ""
    if problem:
        fix = "apt-get install bubblewrap" if not shutil.which("bwrap") else problem
    return Coverage(policy, level, summary, processes, memory, tuple(gaps), fix)
