"""Which test runner and build check a project uses, from the files it has.

Each detector returns a :class:`Plan`: the command to run (relative to the project root), the
parser that turns its output into diagnostics, and where a JUnit XML report will be written
when the runner can write one.
"""

from __future__ import annotations

import dataclasses
import json
import sys
from pathlib import Path

from swarm_lsp.errors import WorkerError

#: Where inside the sandbox copy runners write their reports.
REPORT_DIR = ".swarm-report"
JUNIT_FILE = f"{REPORT_DIR}/junit.xml"


@dataclasses.dataclass(frozen=True)
class Plan:
    """One command to run on the project copy and how to read its results."""

    kind: str  # test | build | quality
    runner: str  # pytest | unittest | npm | cargo | go | compileall | tsc | ruff | custom ...
    argv: tuple[str, ...]
    junit: str | None = None  # relative path of a JUnit XML report, when the runner writes one


def _has_python_tests(root: Path) -> bool:
    for pattern in ("test_*.py", "*_test.py"):
        for path in root.rglob(pattern):
            if not any(part.startswith(".") or part == "node_modules" for part in path.parts):
                return True
    return False


def _uses_pytest(root: Path) -> bool:
    if (root / "pytest.ini").is_file() or (root / "conftest.py").is_file():
        return True
    for name in ("pyproject.toml", "setup.cfg", "tox.ini"):
        path = root / name
        if path.is_file():
            text = path.read_text(encoding="utf-8", errors="replace")
            if "pytest" in text:
                return True
    # Without a hint either way: pytest runs unittest-style tests too, so prefer it when
    # it is installed where the worker runs.
    try:
        import importlib.util

        return importlib.util.find_spec("pytest") is not None
    except ValueError:  # pragma: no cover
        return False


def _package_json(root: Path) -> dict[str, object] | None:
    path = root / "package.json"
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def detect_test(root: Path) -> Plan:
    """The project's test command."""
    package = _package_json(root)
    if (root / "Cargo.toml").is_file():
        return Plan("test", "cargo", ("cargo", "test", "--offline", "--color", "never"))
    if (root / "go.mod").is_file():
        return Plan("test", "go", ("go", "test", "./..."))
    if package is not None:
        scripts = package.get("scripts")
        if isinstance(scripts, dict) and isinstance(scripts.get("test"), str):
            return Plan("test", "npm", ("npm", "test", "--silent"))
    if _has_python_tests(root) or (root / "pyproject.toml").is_file():
        if _uses_pytest(root):
            return Plan(
                "test",
                "pytest",
                (
                    sys.executable,
                    "-m",
                    "pytest",
                    "-q",
                    "--tb=short",
                    "-p",
                    "no:cacheprovider",
                    "-o",
                    "junit_family=xunit1",
                    f"--junitxml={JUNIT_FILE}",
                ),
                junit=JUNIT_FILE,
            )
        argv = [sys.executable, "-m", "unittest", "discover", "-v"]
        if (root / "tests").is_dir() and not (root / "tests" / "__init__.py").is_file():
            argv += ["-s", "tests"]
        return Plan("test", "unittest", tuple(argv))
    raise WorkerError(
        f"no test runner found in {root.name or root}: looked for pytest/unittest tests, "
        "package.json scripts.test, Cargo.toml and go.mod; pass an explicit `command`"
    )


def detect_build(root: Path) -> Plan:
    """The project's build (or compile) check."""
    package = _package_json(root)
    if (root / "Cargo.toml").is_file():
        return Plan(
            "build",
            "cargo",
            ("cargo", "check", "--offline", "--color", "never", "--message-format", "short"),
        )
    if (root / "go.mod").is_file():
        return Plan("build", "go", ("go", "vet", "./..."))
    if (root / "tsconfig.json").is_file():
        local_tsc = root / "node_modules" / ".bin" / "tsc"
        argv = (str(local_tsc),) if local_tsc.exists() else ("npx", "--no-install", "tsc")
        return Plan("build", "tsc", (*argv, "--noEmit", "--pretty", "false"))
    if package is not None:
        scripts = package.get("scripts")
        if isinstance(scripts, dict) and isinstance(scripts.get("build"), str):
            return Plan("build", "npm", ("npm", "run", "--silent", "build"))
    if any(root.rglob("*.py")):
        return Plan("build", "compileall", (sys.executable, "-m", "compileall", "-q", "."))
    raise WorkerError(
        f"no build check found in {root.name or root}: looked for Cargo.toml, go.mod, "
        "tsconfig.json, package.json scripts.build and Python files; pass an explicit `command`"
    )


def ruff_plan() -> Plan:
    """ruff from the worker's own environment, JSON output, never failing on findings."""
    return Plan(
        "quality",
        "ruff",
        (
            sys.executable,
            "-m",
            "ruff",
            "check",
            "--no-cache",
            "--exit-zero",
            "--output-format",
            "json",
            ".",
        ),
    )
