"""Sandbox start-up overhead: an older commit's sandbox against this tree's, interleaved.

Loads ``swarm_lsp/workers/testing/sandbox.py`` of ``--old`` (default: the commit before the
strict sandbox) next to the current one and times the same commands through each, in
alternating order, with a bare asyncio subprocess as the baseline: ``true`` and
``python -c pass``. Then a whole ``test`` task (copy the snapshot, sandboxed pytest with
JUnit XML, parse) on the bundled sample project through each commit's own test role, each in
a long-lived process of its own (one-off probes done before timing), against a bare
``python -m pytest -q``. Prints a Markdown report with medians, p95, the overhead over bare
and new/old ratios.

    .venv/bin/python bench/sandbox_compare.py [--old COMMIT] [--runs 30] [--pytest-runs 10]
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from functools import partial
from pathlib import Path
from types import ModuleType

from swarm_lsp.workers.testing import sandbox as new_sandbox

REPO = Path(__file__).resolve().parent.parent
SAMPLE = REPO / "swarm_lsp" / "demo" / "sample_project"
OLD_DEFAULT = "2b70d4c~1"


def _old_module(commit: str, folder: Path) -> ModuleType:
    source = subprocess.run(
        ["git", "-C", str(REPO), "show", f"{commit}:swarm_lsp/workers/testing/sandbox.py"],
        capture_output=True,
        check=True,
        text=True,
    ).stdout
    path = folder / "old_sandbox.py"
    path.write_text(source)
    spec = importlib.util.spec_from_file_location("old_sandbox", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["old_sandbox"] = module
    spec.loader.exec_module(module)
    return module


ROLE_LOOP = """
import asyncio, json, sys, time
from pathlib import Path
from swarm_lsp.config import Settings
from swarm_lsp.workers.base import TaskRequest
from swarm_lsp.workers.testing import role

class Quiet:
    async def partial(self, text, data=None): pass
    async def progress(self, message, percentage=None): pass

async def main():
    handler = role.create(Settings())
    for line in sys.stdin:
        task = TaskRequest(id="b", type="test", payload={"kind": "test"},
                           snapshot_dir=Path(line.strip()))
        start = time.perf_counter()
        result = await handler.run(task, Quiet())
        ms = (time.perf_counter() - start) * 1000
        print(json.dumps({"ms": ms, "isolation": result["isolation"],
                          "summary": result["summary"]}), flush=True)

asyncio.run(main())
"""


class RoleProcess:
    """A test role of one commit's tree in a process of its own, run one task per call."""

    def __init__(self, tree: Path) -> None:
        env = {**os.environ, "PYTHONPATH": str(tree)}
        self.process = subprocess.Popen(
            [sys.executable, "-c", ROLE_LOOP],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            env=env,
            cwd=tree,
        )
        self.last: dict[str, object] = {}

    def run(self, snapshot: Path) -> float:
        assert self.process.stdin is not None and self.process.stdout is not None
        self.process.stdin.write(f"{snapshot}\n")
        self.process.stdin.flush()
        self.last = json.loads(self.process.stdout.readline())
        return float(str(self.last["ms"]))

    def close(self) -> None:
        if self.process.stdin is not None:
            self.process.stdin.close()
        self.process.wait(timeout=30)


def _tree(commit: str, folder: Path) -> Path:
    folder.mkdir()
    archive = subprocess.run(
        ["git", "-C", str(REPO), "archive", commit, "swarm_lsp"], capture_output=True, check=True
    ).stdout
    subprocess.run(["tar", "-x", "-C", str(folder)], input=archive, check=True)
    return folder


async def _bare(argv: list[str], cwd: Path) -> None:
    process = await asyncio.create_subprocess_exec(
        *argv, cwd=cwd, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT
    )
    await process.communicate()


def _stats(samples: list[float]) -> tuple[float, float]:
    ordered = sorted(samples)
    return statistics.median(ordered), ordered[
        min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))
    ]


async def _interleaved(
    runners: dict[str, Callable[[], Awaitable[object]]], runs: int
) -> dict[str, list[float]]:
    samples: dict[str, list[float]] = {name: [] for name in runners}
    names = list(runners)
    for index in range(runs):
        order = names if index % 2 == 0 else list(reversed(names))
        for name in order:
            start = time.perf_counter()
            await runners[name]()
            samples[name].append((time.perf_counter() - start) * 1000)
    return samples


def _table(title: str, samples: dict[str, list[float]]) -> None:
    bare, _ = _stats(samples["bare"])
    old, _ = _stats(samples["old"])
    new, _ = _stats(samples["new"])
    print(f"{title}:\n")
    print("| how | median | p95 | overhead vs bare |")
    print("| --- | --- | --- | --- |")
    for name, label in (
        ("bare", "bare asyncio subprocess"),
        ("old", "old sandbox (bwrap as root, host / read-only)"),
        ("new", "new sandbox (strict: tmpfs root, setpriv uid, cgroups)"),
    ):
        median, p95 = _stats(samples[name])
        extra = "—" if name == "bare" else f"+{median - bare:.1f} ms"
        print(f"| {label} | {median:.1f} ms | {p95:.1f} ms | {extra} |")
    if old > bare and new > bare:
        overhead = f"{(new - bare) / (old - bare):.2f}x the old overhead over bare"
    else:
        overhead = "no overhead ratio (a sandboxed median was not above bare's: noise)"
    print(f"\nnew/old: {new / old:.2f}x total median; {overhead}.\n")


async def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--old", default=OLD_DEFAULT)
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--pytest-runs", type=int, default=10)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="swarm-bench-compare-"))
    try:
        old_sandbox = _old_module(args.old, work)
        load = subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()
        print(f"### Sandbox start-up: {args.old} against this tree, interleaved\n")
        print(f"`uptime` before: {load}; {os.cpu_count()} cores.\n")
        print(f"New sandbox caps here: {new_sandbox.strict_problem() or 'strict sandbox'}.\n")
        for label, argv in (("true", ["true"]), ("python -c pass", [sys.executable, "-c", "pass"])):
            folder = work / "cmd"
            folder.mkdir(exist_ok=True)
            runners: dict[str, Callable[[], Awaitable[object]]] = {
                "bare": partial(_bare, argv, folder),
                "old": partial(old_sandbox.run_sandboxed, argv, folder, isolation="bwrap"),
                "new": partial(new_sandbox.run_sandboxed, argv, folder),
            }
            await _interleaved(runners, 2)  # warm caches and the one-off probes
            _table(f"`{label}`, {args.runs} runs each", await _interleaved(runners, args.runs))

        pytest_argv = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"]

        def fresh() -> Path:
            target = Path(tempfile.mkdtemp(dir=work)) / "sample"
            shutil.copytree(SAMPLE, target)
            return target

        old_role = RoleProcess(_tree(args.old, work / "old-tree"))
        new_role = RoleProcess(REPO)
        try:
            for role in (old_role, new_role):  # probes, imports, first-run caches
                role.run(fresh())

            async def bare_pytest() -> None:
                await _bare(pytest_argv, fresh())

            async def through(role: RoleProcess) -> None:
                await asyncio.to_thread(role.run, fresh())

            samples = await _interleaved(
                {
                    "bare": bare_pytest,
                    "old": lambda: through(old_role),
                    "new": lambda: through(new_role),
                },
                args.pytest_runs,
            )
            isolation = f"old: {old_role.last['isolation']}, new: {new_role.last['isolation']}"
        finally:
            old_role.close()
            new_role.close()
        _table(
            f"`test` task on the sample project (copy + sandboxed pytest + JUnit parse, "
            f"{isolation}) vs bare `python -m pytest -q`, {args.pytest_runs} runs each",
            samples,
        )
        load = subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()
        print(f"`uptime` after: {load}.")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
