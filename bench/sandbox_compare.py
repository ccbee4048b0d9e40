"""Sandbox start-up overhead: an older commit's sandbox against this tree's, interleaved.

Loads ``swarm_lsp/workers/testing/sandbox.py`` of ``--old`` (default: the commit before the
strict sandbox) next to the current one and times the same commands through each, in
alternating order, with a bare asyncio subprocess as the baseline: ``true``,
``python -c pass`` and ``python -m pytest -q`` on a copy of the bundled sample project.
Prints a Markdown report with medians, p95, the overhead over bare and new/old ratios.

    .venv/bin/python bench/sandbox_compare.py [--old COMMIT] [--runs 30] [--pytest-runs 10]
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
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
    ratio = (new - bare) / (old - bare) if old > bare else float("nan")
    print(f"\nnew/old: {new / old:.2f}x total, {ratio:.2f}x overhead over bare.\n")


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
                "bare": lambda a=argv, f=folder: _bare(a, f),
                "old": lambda a=argv, f=folder: old_sandbox.run_sandboxed(a, f, isolation="bwrap"),
                "new": lambda a=argv, f=folder: new_sandbox.run_sandboxed(a, f),
            }
            await _interleaved(runners, 2)  # warm caches and the one-off probes
            _table(f"`{label}`, {args.runs} runs each", await _interleaved(runners, args.runs))

        pytest_argv = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"]

        def fresh() -> Path:
            target = Path(tempfile.mkdtemp(dir=work)) / "sample"
            shutil.copytree(SAMPLE, target)
            return target

        runners = {
            "bare": lambda: _bare(pytest_argv, fresh()),
            "old": lambda: old_sandbox.run_sandboxed(pytest_argv, fresh(), isolation="bwrap"),
            "new": lambda: new_sandbox.run_sandboxed(pytest_argv, fresh()),
        }
        samples = await _interleaved(runners, args.pytest_runs)
        _table(
            f"`python -m pytest -q` on a fresh copy of the sample project (copy included), "
            f"{args.pytest_runs} runs each",
            samples,
        )
        load = subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()
        print(f"`uptime` after: {load}.")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
