"""The test role: run tests, a build check or quality analysis on a workspace snapshot.

Task types ``test``, ``build`` and ``quality``. Payload (JSON)::

    {
      "kind": "test" | "build" | "quality",   # defaults to the task type
      "command": ["pytest", "-x"],            # optional; else detected from the project files
      "limits": {"timeout_s": 300, "cpu_s": 600, "memory_mb": 4096,    # optional, capped
                 "task_memory_mb": 6144, "processes": 256},
      "thresholds": {"max_lines": 60, "max_nesting": 4, "max_complexity": 10}  # quality
    }

The workspace files come in ``task.snapshot_dir`` and only there (a payload cannot name a
host folder); they are copied to a temporary folder and the command runs there in the
sandbox (:mod:`.sandbox`), so the snapshot is never changed. The sandbox is the strict one
(bubblewrap) unless the settings say ``swarm.sandbox = "weak"``; without it the task fails
with the fix.
Result::

    {
      "diagnostics": [{"path", "line", "character", "end_line", "severity", "message",
                       "source": "swarm", "code"}],     # 0-based lines, paths relative
      "summary": "pytest: 1 failed, 2 passed",
      "passed": bool, "exit_code": int | None, "output_tail": str,
      "runner": "pytest", "command": [...], "isolation": "bwrap" | "unshare" | "env",
      "timed_out": bool, "cancelled": bool, "duration_s": float, "output_bytes": int,
      "dropped_bytes": int
    }
"""

from __future__ import annotations

import asyncio
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

from swarm_lsp.config import Settings
from swarm_lsp.errors import SandboxError, WorkerError
from swarm_lsp.workers.base import TaskReporter, TaskRequest
from swarm_lsp.workers.testing import detect, metrics, results
from swarm_lsp.workers.testing.sandbox import (
    POLICIES,
    REFUSAL,
    SKIP_DIRS,
    Limits,
    SandboxResult,
    copy_workspace,
    run_sandboxed,
    strict_problem,
)

#: Upper bounds a payload cannot raise limits past.
MAX_LIMITS = Limits(
    timeout_s=1800.0, cpu_s=3600, memory_mb=16384, task_memory_mb=16384, processes=1024
)
LIMIT_NAMES = ("timeout_s", "cpu_s", "memory_mb", "task_memory_mb", "processes")
OUTPUT_TAIL_CHARS = 8000


def _limits(payload: dict[str, Any], default: Limits) -> Limits:
    raw = payload.get("limits") or {}
    if not isinstance(raw, dict):
        raise WorkerError(f"limits must be an object, got {raw!r}")
    values: dict[str, Any] = {}
    for name in LIMIT_NAMES:
        value = raw.get(name)
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
            raise WorkerError(f"limits.{name} must be a positive number, got {value!r}")
        values[name] = min(type(getattr(default, name))(value), getattr(MAX_LIMITS, name))
    import dataclasses

    return dataclasses.replace(default, **values)


def _summary(plan: detect.Plan, run: SandboxResult, counts: dict[str, int]) -> str:
    summary = _outcome(plan, run, counts)
    if run.oom_kills and not run.memory_exceeded:
        summary += f" ({run.oom_kills} killed at the whole-task memory cap)"
    return summary


def _outcome(plan: detect.Plan, run: SandboxResult, counts: dict[str, int]) -> str:
    if run.memory_exceeded:
        return f"{plan.runner}: killed at the whole-task memory cap"
    if run.timed_out:
        return f"{plan.runner}: killed at the time limit ({run.duration_s:.0f}s)"
    if run.cancelled:
        return f"{plan.runner}: cancelled"
    if counts.get("tests"):
        failed = counts["failures"] + counts["errors"]
        passed = counts["tests"] - failed - counts["skipped"]
        parts = [f"{failed} failed", f"{passed} passed"]
        if counts["skipped"]:
            parts.append(f"{counts['skipped']} skipped")
        return f"{plan.runner}: {', '.join(parts)} in {run.duration_s:.1f}s"
    state = "passed" if run.exit_code == 0 else f"failed (exit code {run.exit_code})"
    return f"{plan.runner}: {state} in {run.duration_s:.1f}s"


def _python_files(root: Path) -> bool:
    return any(
        not any(part in SKIP_DIRS or part == "node_modules" for part in p.parts)
        for p in root.rglob("*.py")
    )


def _metric_hints(root: Path, thresholds: metrics.Thresholds) -> list[results.Diagnostic]:
    hints: list[results.Diagnostic] = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = [
            d
            for d in dirnames
            if d not in SKIP_DIRS and d != "node_modules" and not d.startswith(".")
        ]
        for name in sorted(filenames):
            path = Path(dirpath) / name
            if path.is_symlink():  # the sandboxed command may have pointed it at a host file
                continue
            rel = path.relative_to(root).as_posix()
            hints.extend(metrics.metric_hints(path, rel, thresholds))
    return hints


def _report_file(root: Path, relative: str) -> Path | None:
    """The runner's report, only when it is a plain file inside the copy.

    The sandboxed command owns the copy: it may have replaced the report (or its folder) by
    a link to a host file, which the worker must not read for it.
    """
    path = root / relative
    try:
        if path.is_symlink() or not path.is_file():
            return None
        if path.resolve().parent != (root.resolve() / relative).parent:
            return None
    except OSError:
        return None
    return path


def sandbox_policy(settings: Settings) -> str:
    """``strict`` or ``weak`` from ``swarm.sandbox`` (anything else counts as strict)."""
    value = settings.swarm.sandbox.strip().lower()
    return value if value in POLICIES else "strict"


def check_policy(policy: str) -> None:
    """Raise the refusal (with its fix) when ``policy`` needs a sandbox this machine lacks."""
    problem = strict_problem()
    if policy == "strict" and problem:
        raise SandboxError(REFUSAL.format(why=f" ({problem})"))


class TestRole:
    """Runs ``test``, ``build`` and ``quality`` tasks in the sandbox."""

    role = "test"
    task_types: tuple[str, ...] = ("test", "build", "quality")
    __test__ = False  # not a pytest class

    def __init__(self, settings: Settings, *, limits: Limits | None = None) -> None:
        self.settings = settings
        self.limits = limits or Limits()
        self.policy = sandbox_policy(settings)

    async def run(self, task: TaskRequest, reporter: TaskReporter) -> dict[str, Any]:
        payload = task.payload or {}
        kind = str(payload.get("kind") or task.type)
        if kind not in self.task_types:
            raise WorkerError(f"unknown test task kind {kind!r} (test, build or quality)")
        source = task.snapshot_dir
        if source is None:
            raise WorkerError("a test task needs the workspace: no snapshot was sent with it")
        if not source.is_dir():
            raise WorkerError(f"workspace snapshot {source} does not exist or is not a folder")
        limits = _limits(payload, self.limits)
        await asyncio.to_thread(check_policy, self.policy)  # the refusal names the fix
        await reporter.progress(f"copying the workspace for {kind}", 0)
        workdir = Path(tempfile.mkdtemp(prefix=f"swarm-{kind}-"))
        try:
            root = workdir / "project"
            await asyncio.to_thread(copy_workspace, source, root)
            (root / detect.REPORT_DIR).mkdir(exist_ok=True)
            if kind == "quality":
                return await self._quality(task, reporter, root, payload, limits)
            return await self._run_plan(task, reporter, root, kind, payload, limits)
        finally:
            await asyncio.to_thread(shutil.rmtree, workdir, True)

    def _plan(self, root: Path, kind: str, payload: dict[str, Any]) -> detect.Plan:
        command = payload.get("command")
        if command is not None:
            if (
                not isinstance(command, list)
                or not command
                or not all(isinstance(a, str) for a in command)
            ):
                raise WorkerError(f"command must be a non-empty list of strings, got {command!r}")
            return detect.Plan(kind, "custom", tuple(command))
        return detect.detect_test(root) if kind == "test" else detect.detect_build(root)

    async def _sandboxed(
        self, plan: detect.Plan, task: TaskRequest, root: Path, limits: Limits
    ) -> SandboxResult:
        """``plan``'s command in the sandbox, stopped when the task is cancelled."""
        return await run_sandboxed(
            list(plan.argv), root, limits=limits, cancel_event=task.cancel_event, policy=self.policy
        )

    async def _run_plan(
        self,
        task: TaskRequest,
        reporter: TaskReporter,
        root: Path,
        kind: str,
        payload: dict[str, Any],
        limits: Limits,
    ) -> dict[str, Any]:
        plan = self._plan(root, kind, payload)
        await reporter.progress(f"running {' '.join(plan.argv[:4])}", 10)
        run = await self._sandboxed(plan, task, root, limits)
        counts: dict[str, int] = {}
        diagnostics: list[results.Diagnostic] = []
        report = _report_file(root, plan.junit) if plan.junit else None
        if report is not None:
            diagnostics, counts = await asyncio.to_thread(results.parse_junit, report, root)
        else:
            diagnostics = await asyncio.to_thread(results.parse_text, run.output, root)
            counts = results.text_counts(run.output) if kind == "test" else {}
        passed = run.exit_code == 0
        await reporter.progress("done", 100)
        return self._result(plan, run, diagnostics, _summary(plan, run, counts), passed)

    async def _quality(
        self,
        task: TaskRequest,
        reporter: TaskReporter,
        root: Path,
        payload: dict[str, Any],
        limits: Limits,
    ) -> dict[str, Any]:
        thresholds = metrics.thresholds_from(payload)
        diagnostics: list[results.Diagnostic] = []
        plan = detect.ruff_plan()
        run: SandboxResult | None = None
        if payload.get("command") is not None:
            plan = self._plan(root, "quality", payload)
        if plan.runner != "ruff" or await asyncio.to_thread(_python_files, root):
            await reporter.progress("running ruff", 10)
            run = await self._sandboxed(plan, task, root, limits)
            if plan.runner == "ruff":
                diagnostics.extend(results.parse_ruff(run.output, root))
            else:
                diagnostics.extend(results.parse_text(run.output, root))
        if task.cancelled:
            raise WorkerError("quality analysis cancelled")
        await reporter.progress("measuring functions", 60)
        hints = await asyncio.to_thread(_metric_hints, root, thresholds)
        diagnostics.extend(hints)
        findings = sum(1 for d in diagnostics if d["severity"] in {"error", "warning"})
        ok = run is None or (not run.timed_out and not run.cancelled and run.exit_code == 0)
        summary = f"quality: {findings} lint findings, {len(hints)} metric hints"
        if run is not None and not ok:
            summary += f"; {plan.runner} did not finish cleanly (exit code {run.exit_code})"
        await reporter.progress("done", 100)
        if run is None:
            return {
                "diagnostics": diagnostics,
                "summary": summary,
                "passed": True,
                "exit_code": 0,
                "output_tail": "",
                "runner": "metrics",
                "command": [],
                "isolation": "none",
                "timed_out": False,
                "cancelled": False,
                "duration_s": 0.0,
                "output_bytes": 0,
                "dropped_bytes": 0,
            }
        return self._result(plan, run, diagnostics, summary, ok and findings == 0)

    @staticmethod
    def _result(
        plan: detect.Plan,
        run: SandboxResult,
        diagnostics: list[results.Diagnostic],
        summary: str,
        passed: bool,
    ) -> dict[str, Any]:
        tail = run.output
        if len(tail) > OUTPUT_TAIL_CHARS:
            tail = tail[-OUTPUT_TAIL_CHARS:]
        if run.dropped_bytes:
            summary += f" (output capped: {run.dropped_bytes} of {run.output_bytes} bytes dropped)"
        return {
            "diagnostics": diagnostics,
            "summary": summary,
            "passed": passed and not run.timed_out and not run.cancelled,
            "exit_code": run.exit_code,
            "output_tail": tail,
            "runner": plan.runner,
            "command": list(plan.argv),
            "isolation": run.isolation,
            "timed_out": run.timed_out,
            "cancelled": run.cancelled,
            "duration_s": round(run.duration_s, 3),
            "output_bytes": run.output_bytes,
            "dropped_bytes": run.dropped_bytes,
        }


def create(settings: Settings) -> TestRole:
    """The registry's entry point: ``swarm_lsp.workers.testing.role:create``."""
    return TestRole(settings)
