"""Which isolation a sandboxed run can have on this machine, found by real trial runs.

``bwrap`` (the strict sandbox of :mod:`.jail`, with its seccomp filter when it takes one),
``unshare`` (a network namespace) or ``env``; probed once per process (see :mod:`.sandbox`).
"""

from __future__ import annotations

import os
import platform
import shutil
import sys
from collections.abc import Mapping
from pathlib import Path

from swarm_lsp.workers.testing import jail, seccomp
from swarm_lsp.workers.testing.workspace import clean_environment


def isolation_level() -> str:
    """``bwrap``, ``unshare`` or ``env``: the strongest isolation this machine offers."""
    if not strict_problem():
        return "bwrap"
    if shutil.which("unshare") and not _probe(["unshare", "-n", "true"]):
        return "unshare"
    return "env"


_level_cache: dict[str, str] = {}


def available_level() -> str:
    """:func:`isolation_level`, probed once per process."""
    level = _level_cache.get("level")
    if level is None:
        level = _level_cache["level"] = isolation_level()
    return level


def strict_problem() -> str:
    """Why the strict sandbox cannot run here (empty when it can), from a real trial run."""
    cached = _level_cache.get("strict")
    if cached is not None:
        return cached
    problem = ""
    if not shutil.which("bwrap"):
        problem = "bubblewrap (bwrap) is not installed"
    elif jail.as_root() and not shutil.which("setpriv"):
        problem = "setpriv (util-linux) is not installed"
    else:
        import tempfile

        with tempfile.TemporaryDirectory(prefix="swarm-probe-") as folder:
            copy = Path(folder) / "project"
            copy.mkdir()
            env = clean_environment(copy)
            trial = jail.prepare(copy, env)
            # The interpreter, not just ``true``: its folders are the binds most likely missed.
            problem = _probe(trial.argv([sys.executable, "-c", "pass"]), env)
            _level_cache["seccomp"] = problem or _seccomp_problem(trial, env)
            trial.release()
    _level_cache["strict"] = problem
    return problem


def seccomp_problem() -> str:
    """Why the strict sandbox runs without its seccomp filter (empty when it has it)."""
    strict_problem()
    return _level_cache.get("seccomp", "")


def _seccomp_problem(trial: jail.Jail, env: Mapping[str, str]) -> str:
    if not seccomp.supported():
        return f"no seccomp filter written for {platform.machine()}"
    fd = seccomp.open_program()
    try:
        # With the filter, a new user namespace must be refused and the rest must work.
        refused = _probe(trial.argv(["unshare", "-U", "true"], seccomp_fd=fd), env, (fd,))
        os.lseek(fd, 0, os.SEEK_SET)
        works = _probe(trial.argv(["true"], seccomp_fd=fd), env, (fd,))
    finally:
        os.close(fd)
    if works:
        return f"bubblewrap did not take the seccomp filter: {works}"
    return "" if refused else "the seccomp filter did not refuse a new user namespace"


def _probe(
    argv: list[str], env: Mapping[str, str] | None = None, pass_fds: tuple[int, ...] = ()
) -> str:
    """Empty when ``argv`` runs and exits 0, else what went wrong."""
    import subprocess

    try:
        done = subprocess.run(
            argv,
            capture_output=True,
            timeout=10,
            check=False,
            env=dict(env) if env else None,
            pass_fds=pass_fds,
        )
    except (OSError, subprocess.SubprocessError) as err:
        return str(err)
    if done.returncode == 0:
        return ""
    said = done.stderr.decode("utf-8", "replace").strip().splitlines()
    return f"{argv[0]} failed: {said[-1] if said else f'exit code {done.returncode}'}"
