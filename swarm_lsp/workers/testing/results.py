"""Runner output → diagnostics.

A diagnostic is a JSON object ``{"path", "line", "character", "end_line", "severity",
"message", "source": "swarm", "code"}``. ``path`` is relative to the project root with ``/``
separators; ``line``, ``character`` and ``end_line`` are 0-based, as in LSP. ``severity`` is
``error``, ``warning``, ``information`` or ``hint``.

JUnit XML (pytest ``-o junit_family=xunit1`` writes ``file`` and ``line`` on each test case)
gives each failing test at its own line with the assertion message; the failure text's
traceback frames that point into the project become diagnostics too. Runners without JUnit
output are read from their text: Python tracebacks, ``path:line:col: message`` (compilers,
go vet, cargo short messages, tsc), Rust panics and Go test failures.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path, PurePosixPath
from typing import Any

from swarm_lsp.workers.testing.suspects import suspect

Diagnostic = dict[str, Any]

_MAX_MESSAGE = 2000


def diagnostic(
    path: str,
    line: int,
    message: str,
    *,
    severity: str = "error",
    code: str = "",
    character: int = 0,
    end_line: int | None = None,
) -> Diagnostic:
    """One diagnostic in the role's JSON shape (0-based line and character)."""
    line = max(0, line)
    return {
        "path": path,
        "line": line,
        "character": max(0, character),
        "end_line": line if end_line is None else max(line, end_line),
        "severity": severity,
        "message": message.strip()[:_MAX_MESSAGE] or code,
        "source": "swarm",
        "code": code,
    }


def project_path(raw: str, root: Path) -> str | None:
    """``raw`` as a path relative to ``root``, or None when it is outside the project.

    Accepts relative paths and absolute paths inside ``root``; files of installed packages and
    the standard library are not the user's and give None.
    """
    raw = raw.strip().strip('"')
    if not raw:
        return None
    candidate = Path(raw)
    try:
        resolved_root = root.resolve()
        absolute = candidate.resolve() if candidate.is_absolute() else (root / candidate).resolve()
        relative = absolute.relative_to(resolved_root)
    except (ValueError, OSError):
        return None
    text = PurePosixPath(*relative.parts).as_posix()
    if text in {"", "."} or "site-packages" in relative.parts:
        return None
    if not absolute.is_file():
        # Go prints paths relative to the package folder: find the one file they can mean.
        return _unique_suffix_match(raw, resolved_root) if not candidate.is_absolute() else None
    return text


def _unique_suffix_match(raw: str, root: Path) -> str | None:
    suffix = "/" + raw.replace("\\", "/").lstrip("./")
    matches = [
        p.relative_to(root).as_posix()
        for p in root.rglob(PurePosixPath(raw).name)
        if p.is_file()
        and ("/" + p.relative_to(root).as_posix()).endswith(suffix)
        and "node_modules" not in p.parts
    ]
    return matches[0] if len(matches) == 1 else None


# tests/test_x.py:15: in test_name   |   tests/test_x.py:15: AssertionError
_PYTEST_FRAME = re.compile(r"^(?P<path>[^\s:][^:\n]*\.py):(?P<line>\d+): (?P<rest>.*)$", re.M)
# File "path", line 12, in name
_PY_FRAME = re.compile(
    r'^\s*File "(?P<path>[^"]+)", line (?P<line>\d+)(?:, in (?P<rest>.*))?$', re.M
)
# path:line:col: message   or   path(line,col): error TS...: message
_COLON_LOCATION = re.compile(
    r"^(?P<path>[^\s:()][^:()\n]*\.[A-Za-z0-9+]+):(?P<line>\d+)(?::(?P<col>\d+))?:\s*(?P<msg>.+)$",
    re.M,
)
_TSC_LOCATION = re.compile(
    r"^(?P<path>[^\s(][^(\n]*\.[jt]sx?)\((?P<line>\d+),(?P<col>\d+)\):\s*(?P<msg>.+)$", re.M
)
# thread 'tests::it_works' panicked at src/lib.rs:10:5:
_RUST_PANIC = re.compile(
    r"panicked at (?P<path>[^\s:]+):(?P<line>\d+):(?P<col>\d+):?\s*\n?(?P<msg>.*)"
)
# JavaScript stack frames: "at fn (/abs/test/x.test.js:5:10)" or "(file:///abs/x.js:5:10)"
_JS_FRAME = re.compile(
    r"(?:\(|\bat )(?:file://)?(?P<path>/[^\s():]+\.[cm]?[jt]sx?):(?P<line>\d+):(?P<col>\d+)"
)
# go test: "    sum_test.go:8: got 3, want 4"
_GO_TEST = re.compile(r"^\s+(?P<path>[\w./-]+\.go):(?P<line>\d+): (?P<msg>.+)$", re.M)
# TAP (node --test): "not ok 1 - name" then an indented YAML block ending in "..."
_TAP_FAIL = re.compile(r"^(?P<indent>\s*)not ok \d+ - (?P<name>.+)$", re.M)
_TAP_LOCATION = re.compile(
    r"^\s*location: '(?:file://)?(?P<path>.+?):(?P<line>\d+):(?P<col>\d+)'", re.M
)
# Python exception line at the end of a traceback: "ValueError: bad"
_PY_EXCEPTION = re.compile(
    r"^(?:E\s+)?(?P<exc>[A-Za-z_][\w.]*(?:Error|Exception|Exit|Interrupt)\b.*)$", re.M
)


def _failure_message(message_attr: str, text: str) -> str:
    first = message_attr.strip()
    if first:
        return first
    errors = [line[1:].strip() for line in text.splitlines() if line.startswith("E ")]
    if errors:
        return "\n".join(errors[:6])
    lines = [line for line in text.strip().splitlines() if line.strip()]
    return lines[-1] if lines else "failed"


def frames(text: str, root: Path) -> list[tuple[str, int, str]]:
    """Traceback frames (path, 1-based line, description) that point into the project."""
    found: list[tuple[str, int, str]] = []
    for pattern in (_PYTEST_FRAME, _PY_FRAME):
        for match in pattern.finditer(text):
            rel = project_path(match["path"], root)
            if rel is None:
                continue
            entry = (rel, int(match["line"]), (match["rest"] or "").strip())
            if entry not in found:
                found.append(entry)
    return found


def parse_junit(xml_path: Path, root: Path) -> tuple[list[Diagnostic], dict[str, int]]:
    """Diagnostics and counts (tests, failures, errors, skipped) from a JUnit XML report."""
    counts = {"tests": 0, "failures": 0, "errors": 0, "skipped": 0}
    diagnostics: list[Diagnostic] = []
    try:
        tree = ET.parse(xml_path)
    except (OSError, ET.ParseError):
        return diagnostics, counts
    for case in tree.iter("testcase"):
        counts["tests"] += 1
        problem = None
        for tag in ("failure", "error"):
            problem = case.find(tag)
            if problem is not None:
                counts["failures" if tag == "failure" else "errors"] += 1
                break
        if problem is None:
            if case.find("skipped") is not None:
                counts["skipped"] += 1
            continue
        name = case.get("name", "test")
        text = problem.text or ""
        message = _failure_message(problem.get("message", ""), text)
        case_path = project_path(case.get("file", ""), root) if case.get("file") else None
        case_frames = frames(text, root)
        if case_path is None and case_frames:
            case_path = case_frames[0][0]
        line_attr = case.get("line")
        if case_path is not None:
            # xunit1 writes the 0-based line of the test's ``def``.
            line = int(line_attr) if line_attr and line_attr.isdigit() else 0
            if not line_attr and case_frames:
                line = case_frames[0][1] - 1
            failed = diagnostic(
                case_path,
                line,
                f"{name} {'failed' if problem.tag == 'failure' else 'errored'}: {message}",
                code="test-failed" if problem.tag == "failure" else "test-error",
            )
            diagnostics.append(failed)
            # Where the bug probably is (the code under test): related information on the
            # test's diagnostic, and a diagnostic there when no traceback frame marks it.
            cause = suspect(text, case_frames, root)
            if cause is not None:
                cause_path, cause_line, what, from_frame = cause
                failed["related"] = [
                    {"path": cause_path, "line": cause_line - 1, "message": f"failure in {what}"}
                ]
                if not from_frame:
                    diagnostics.append(
                        diagnostic(
                            cause_path,
                            cause_line - 1,
                            f"{name} failed: {message} (the test checks {what})",
                            severity="warning",
                            code="test-suspect",
                        )
                    )
        for index, (path, frame_line, where) in enumerate(case_frames):
            deepest = index == len(case_frames) - 1
            diagnostics.append(
                diagnostic(
                    path,
                    frame_line - 1,
                    f"{name}: {message}" if deepest else f"{name} passes through here ({where})",
                    severity="error" if deepest else "information",
                    code="traceback",
                )
            )
    return _dedupe(diagnostics), counts


def _in_project(
    pattern: re.Pattern[str], output: str, root: Path
) -> Iterator[tuple[str, int, re.Match[str]]]:
    """(project path, 0-based line, match) of each match of ``pattern`` inside the project."""
    for match in pattern.finditer(output):
        rel = project_path(match["path"], root)
        if rel is not None:
            yield rel, int(match["line"]) - 1, match


def parse_text(output: str, root: Path) -> list[Diagnostic]:
    """Diagnostics from plain runner output (tracebacks, compiler-style locations)."""
    diagnostics: list[Diagnostic] = []
    exceptions = [m["exc"].strip() for m in _PY_EXCEPTION.finditer(output)]
    last_exception = exceptions[-1] if exceptions else "error"
    for path, line, where in frames(output, root):
        diagnostics.append(
            diagnostic(
                path, line - 1, f"{last_exception} (in {where or 'module'})", code="traceback"
            )
        )
    for pattern in (_COLON_LOCATION, _TSC_LOCATION):
        for rel, line, match in _in_project(pattern, output, root):
            message = match["msg"].strip()
            severity = "warning" if message.lower().startswith("warning") else "error"
            col = int(match["col"]) - 1 if match["col"] else 0
            diagnostics.append(
                diagnostic(rel, line, message, severity=severity, character=col, code="build")
            )
    for rel, line, match in _in_project(_GO_TEST, output, root):
        diagnostics.append(diagnostic(rel, line, match["msg"].strip(), code="test-failed"))
    diagnostics.extend(_tap_failures(output, root))
    for rel, line, match in _in_project(_JS_FRAME, output, root):
        diagnostics.append(
            diagnostic(
                rel,
                line,
                "stack frame of a failure",
                severity="information",
                character=int(match["col"]) - 1,
                code="traceback",
            )
        )
    for rel, line, match in _in_project(_RUST_PANIC, output, root):
        diagnostics.append(
            diagnostic(
                rel,
                line,
                f"panicked: {match['msg'].strip()}",
                character=int(match["col"]) - 1,
                code="panic",
            )
        )
    return _dedupe(diagnostics)


def _tap_failures(output: str, root: Path) -> list[Diagnostic]:
    """Failing tests of a TAP stream (``node --test``) at their ``location`` with the error."""
    found: list[Diagnostic] = []
    matches = list(_TAP_FAIL.finditer(output))
    for index, match in enumerate(matches):
        end = matches[index + 1].start() if index + 1 < len(matches) else len(output)
        block = output[match.end() : end]
        block = block.split("\n" + match["indent"] + "  ...", 1)[0]
        location = _TAP_LOCATION.search(block)
        if location is None:
            continue
        rel = project_path(location["path"], root)
        if rel is None:
            continue
        lines = block.splitlines()
        message: list[str] = []
        for number, line in enumerate(lines):
            if line.strip().startswith("error:"):
                head = line.strip()[len("error:") :].strip().strip("'\"")
                if head and head not in {"|-", "|", ">-"}:
                    message.append(head)
                indent = len(line) - len(line.lstrip())
                for follow in lines[number + 1 :]:
                    if follow.strip() and len(follow) - len(follow.lstrip()) <= indent:
                        break
                    if follow.strip():
                        message.append(follow.strip())
                break
        found.append(
            diagnostic(
                rel,
                int(location["line"]) - 1,
                f"{match['name'].strip()} failed: {' '.join(message) or 'not ok'}",
                character=int(location["col"]) - 1,
                code="test-failed",
            )
        )
    return found


_COUNT_PATTERNS = (
    # cargo: "test result: FAILED. 0 passed; 1 failed; 0 ignored"
    re.compile(r"test result: \w+\. (?P<passed>\d+) passed; (?P<failed>\d+) failed"),
    # pytest / plain: "1 failed, 2 passed"
    re.compile(r"(?P<failed>\d+) failed, (?P<passed>\d+) passed"),
    re.compile(r"(?P<passed>\d+) passed, (?P<failed>\d+) failed"),
)
_TAP_COUNTS = re.compile(r"^# pass (?P<passed>\d+)\s*\n# fail (?P<failed>\d+)", re.M)
_UNITTEST_RAN = re.compile(r"^Ran (?P<tests>\d+) tests?", re.M)
_UNITTEST_FAILED = re.compile(r"^FAILED \((?P<detail>[^)]*)\)", re.M)


def text_counts(output: str) -> dict[str, int]:
    """Test counts read from a runner's closing lines (summed over all such lines)."""
    passed = failed = 0
    seen = False
    for pattern in (*_COUNT_PATTERNS, _TAP_COUNTS):
        for match in pattern.finditer(output):
            passed += int(match["passed"])
            failed += int(match["failed"])
            seen = True
        if seen:
            break
    if not seen:
        ran = _UNITTEST_RAN.search(output)
        if ran is None:
            return {}
        total = int(ran["tests"])
        detail = _UNITTEST_FAILED.search(output)
        failed = sum(int(n) for n in re.findall(r"=(\d+)", detail["detail"])) if detail else 0
        passed = total - failed
    return {"tests": passed + failed, "failures": failed, "errors": 0, "skipped": 0}


def _dedupe(diagnostics: list[Diagnostic]) -> list[Diagnostic]:
    seen: set[tuple[str, int, str]] = set()
    out: list[Diagnostic] = []
    for item in diagnostics:
        key = (item["path"], item["line"], item["message"])
        if key not in seen:
            seen.add(key)
            out.append(item)
    return out


def parse_ruff(output: str, root: Path) -> list[Diagnostic]:
    """ruff's ``--output-format json`` → warning diagnostics."""
    import json

    start = output.find("[")
    if start < 0:
        return []
    try:
        items = json.loads(output[start : output.rfind("]") + 1])
    except ValueError:
        return []
    diagnostics: list[Diagnostic] = []
    for item in items:
        rel = project_path(str(item.get("filename", "")), root)
        if rel is None:
            continue
        location = item.get("location") or {}
        end = item.get("end_location") or location
        diagnostics.append(
            diagnostic(
                rel,
                int(location.get("row", 1)) - 1,
                str(item.get("message", "")),
                severity="warning",
                code=f"ruff:{item.get('code') or 'syntax'}",
                character=int(location.get("column", 1)) - 1,
                end_line=int(end.get("row", location.get("row", 1))) - 1,
            )
        )
    return diagnostics
