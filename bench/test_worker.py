"""Test role benchmark: what the sandbox costs on top of a bare subprocess.

Runs the same trivial command (``python -c pass`` and ``true``) many times as a bare asyncio
subprocess and through :func:`swarm_lsp.workers.testing.sandbox.run_sandboxed` at each
isolation level this machine has (bwrap, unshare, env-only), then one full ``test`` task on
the bundled sample project against a bare ``pytest`` run of it.

    .venv/bin/python bench/test_worker.py [--runs 30]

Prints a Markdown report on stdout.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

from swarm_lsp.config import Settings
from swarm_lsp.workers.base import TaskRequest
from swarm_lsp.workers.testing import role as test_role
from swarm_lsp.workers.testing.sandbox import isolation_level, run_sandboxed

SAMPLE = Path(__file__).resolve().parent.parent / "swarm_lsp" / "demo" / "sample_project"


class _Quiet:
    async def partial(self, text: str, data: dict[str, object] | None = None) -> None:
        return None

    async def progress(self, message: str, percentage: int | None = None) -> None:
        return None


async def _bare(argv: list[str], cwd: Path) -> float:
    start = time.perf_counter()
    process = await asyncio.create_subprocess_exec(
        *argv, cwd=cwd, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT
    )
    await process.communicate()
    return (time.perf_counter() - start) * 1000


async def _sandboxed(argv: list[str], cwd: Path, level: str) -> float:
    start = time.perf_counter()
    await run_sandboxed(argv, cwd, isolation=level)
    return (time.perf_counter() - start) * 1000


def _row(name: str, samples: list[float], base: float | None) -> str:
    median = statistics.median(samples)
    p95 = sorted(samples)[min(len(samples) - 1, round(0.95 * (len(samples) - 1)))]
    extra = f"+{median - base:.1f} ms" if base is not None else "—"
    return f"| {name} | {median:.1f} ms | {p95:.1f} ms | {extra} |"


async def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=30)
    args = parser.parse_args()
    levels = ["env"]
    if shutil.which("unshare"):
        levels.insert(0, "unshare")
    best = isolation_level()
    if best == "bwrap":
        levels.insert(0, "bwrap")
    work = Path(tempfile.mkdtemp(prefix="swarm-bench-sandbox-"))
    try:
        print(f"### Sandbox start-up overhead ({args.runs} runs each; best level here: {best})\n")
        print(f"Load average at start: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores.\n")
        for label, argv in (("true", ["true"]), ("python -c pass", [sys.executable, "-c", "pass"])):
            print(f"`{label}`:\n")
            print("| how | median | p95 | overhead vs bare |")
            print("| --- | --- | --- | --- |")
            bare = [await _bare(argv, work) for _ in range(args.runs)]
            base = statistics.median(bare)
            print(_row("bare asyncio subprocess", bare, None))
            for level in levels:
                samples = [await _sandboxed(argv, work, level) for _ in range(args.runs)]
                print(_row(f"sandbox: {level}", samples, base))
            print()

        project = work / "sample"
        shutil.copytree(SAMPLE, project)
        pytest_argv = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"]
        bare_runs = [await _bare(pytest_argv, project) for _ in range(5)]
        role = test_role.create(Settings())
        role_runs = []
        for _ in range(5):
            start = time.perf_counter()
            task = TaskRequest(id="b", type="test", payload={"kind": "test"}, snapshot_dir=project)
            result = await role.run(task, _Quiet())
            role_runs.append((time.perf_counter() - start) * 1000)
        print("Sample project (3 tests, one failing), 5 runs each:\n")
        print("| how | median | p95 | overhead vs bare |")
        print("| --- | --- | --- | --- |")
        print(_row("bare `python -m pytest -q`", bare_runs, None))
        print(
            _row(
                f"`test` task: copy + sandbox ({result['isolation']}) + JUnit parse",
                role_runs,
                statistics.median(bare_runs),
            )
        )
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
