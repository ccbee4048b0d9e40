"""The test role on real projects in the real sandbox (bubblewrap when installed)."""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import socket
import sys
import textwrap
import threading
from pathlib import Path

import pytest

from swarm_lsp.config import Settings
from swarm_lsp.errors import WorkerError
from swarm_lsp.workers.base import TaskRequest
from swarm_lsp.workers.testing import detect, metrics, results
from swarm_lsp.workers.testing import role as test_role
from swarm_lsp.workers.testing.sandbox import Limits, isolation_level, run_sandboxed
from tests.workers.conftest import RecordingReporter

ISOLATION = isolation_level()


def _task(kind: str, snapshot: Path | None, **payload: object) -> TaskRequest:
    return TaskRequest(
        id=f"t-{kind}", type=kind, payload={"kind": kind, **payload}, snapshot_dir=snapshot
    )


async def test_failing_test_reported_at_its_line(
    sample_project: Path, reporter: RecordingReporter
) -> None:
    result = await test_role.create(Settings()).run(_task("test", sample_project), reporter)
    assert result["runner"] == "pytest"
    assert result["passed"] is False
    assert result["exit_code"] == 1
    assert "1 failed, 2 passed" in result["summary"]
    failing = [d for d in result["diagnostics"] if d["code"] == "test-failed"]
    assert len(failing) == 1
    (diag,) = failing
    source_lines = (sample_project / "tests/test_geometry.py").read_text().splitlines()
    assert diag["path"] == "tests/test_geometry.py"
    assert source_lines[diag["line"]].startswith("def test_perimeter")
    assert "assert 5 == 10" in diag["message"]
    assert diag["source"] == "swarm"
    # The traceback frame at the failing assertion, in the user's file.
    frames = [d for d in result["diagnostics"] if d["code"] == "traceback"]
    assert any(source_lines[d["line"]].strip().startswith("assert Rectangle(2, 3)") for d in frames)
    # Where the bug is: the function the failing assertion checks, related and marked.
    geometry = (sample_project / "shapes/geometry.py").read_text().splitlines()
    (related,) = diag["related"]
    assert related["path"] == "shapes/geometry.py"
    assert geometry[related["line"]].strip().startswith("def perimeter")
    (suspect,) = [d for d in result["diagnostics"] if d["code"] == "test-suspect"]
    assert (suspect["path"], suspect["line"]) == ("shapes/geometry.py", related["line"])
    assert "test_perimeter" in suspect["message"] and suspect["severity"] == "warning"
    # The snapshot itself is untouched: the run happened on a copy.
    assert not (sample_project / ".swarm-report").exists()
    assert reporter.progress_messages


async def test_passing_project_and_build_check(
    sample_project: Path, reporter: RecordingReporter
) -> None:
    geometry = sample_project / "shapes/geometry.py"
    geometry.write_text(
        geometry.read_text().replace("self.width + self.height", "2 * (self.width + self.height)")
    )
    result = await test_role.create(Settings()).run(_task("test", sample_project), reporter)
    assert result["passed"] is True, result["output_tail"]
    assert result["diagnostics"] == []

    build = await test_role.create(Settings()).run(_task("build", sample_project), reporter)
    assert build["runner"] == "compileall" and build["passed"] is True

    (sample_project / "shapes/broken.py").write_text("def oops(:\n    pass\n")
    broken = await test_role.create(Settings()).run(_task("build", sample_project), reporter)
    assert broken["passed"] is False
    assert any(d["path"] == "shapes/broken.py" and d["line"] == 0 for d in broken["diagnostics"])


@pytest.mark.skipif(ISOLATION == "env", reason="needs bubblewrap or a network namespace")
async def test_tests_cannot_reach_the_network_or_write_outside(
    tmp_path: Path, reporter: RecordingReporter
) -> None:
    # A listening socket on the host's loopback: inside the sandbox it must be unreachable.
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen()
    port = server.getsockname()[1]
    accepted: list[object] = []

    def accept() -> None:
        server.settimeout(5)
        with contextlib.suppress(OSError):
            accepted.append(server.accept())

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    outside = tmp_path / "outside.txt"
    host_file = Path("/var/tmp") / f"swarm-escape-{port}.txt"
    project = tmp_path / "project"
    (project / "tests").mkdir(parents=True)
    (project / "tests/test_escape.py").write_text(
        textwrap.dedent(
            f"""
            import socket

            import pytest


            def test_loopback_of_the_host_is_unreachable():
                with pytest.raises(OSError):
                    socket.create_connection(("127.0.0.1", {port}), timeout=2)


            def test_outside_address_is_unreachable():
                with pytest.raises(OSError):
                    socket.create_connection(("10.255.255.1", 80), timeout=2)


            def test_write_outside_the_copy():
                with open({str(outside)!r}, "w") as handle:
                    handle.write("escaped")


            def test_write_to_the_host_file_system():
                with open({str(host_file)!r}, "w") as handle:
                    handle.write("escaped")
            """
        )
    )
    result = await test_role.create(Settings()).run(_task("test", project), reporter)
    server.close()
    thread.join(6)
    assert accepted == []
    assert "2 passed" in result["summary"], result["output_tail"]
    if ISOLATION == "bwrap":
        # Outside the copy the host's folders are absent or read-only: the writes fail.
        assert not outside.exists() and not host_file.exists()
        assert "2 failed" in result["summary"]
        failing = {
            d["message"].split()[0]: d for d in result["diagnostics"] if d["code"] == "test-failed"
        }
        assert set(failing) == {"test_write_outside_the_copy", "test_write_to_the_host_file_system"}
        message = failing["test_write_to_the_host_file_system"]["message"]
        assert any(
            why in message for why in ("Read-only file system", "No such file", "Permission denied")
        ), message


async def test_hanging_command_is_killed_at_its_limit(
    tmp_path: Path, reporter: RecordingReporter
) -> None:
    (tmp_path / "p").mkdir()
    hang = [
        sys.executable,
        "-c",
        "import subprocess, time; subprocess.Popen(['sleep', '600']); time.sleep(600)",
    ]
    result = await test_role.create(Settings()).run(
        _task("test", tmp_path / "p", command=hang, limits={"timeout_s": 1.5}), reporter
    )
    assert result["timed_out"] is True
    assert result["passed"] is False
    assert result["exit_code"] is None
    assert "time limit" in result["summary"]
    assert result["duration_s"] < 10


async def test_cancellation_kills_the_process_group(tmp_path: Path) -> None:
    cancel = asyncio.Event()
    asyncio.get_running_loop().call_later(0.5, cancel.set)
    result = await run_sandboxed(
        ["sleep", "600"], tmp_path, cancel_event=cancel, limits=Limits(timeout_s=60)
    )
    assert result.cancelled and result.exit_code is None and result.duration_s < 10


async def test_output_flood_is_capped_but_the_ends_are_kept(
    tmp_path: Path, reporter: RecordingReporter
) -> None:
    (tmp_path / "p").mkdir()
    flood = [
        sys.executable,
        "-c",
        "print('FIRST LINE')\nfor i in range(400000): print('x' * 60)\n"
        "print('LAST LINE')\nraise SystemExit(3)",
    ]
    result = await test_role.create(Settings()).run(
        _task("test", tmp_path / "p", command=flood), reporter
    )
    assert result["exit_code"] == 3 and result["passed"] is False
    assert result["output_bytes"] > 20_000_000
    assert result["dropped_bytes"] > 0
    assert "LAST LINE" in result["output_tail"]
    assert "output capped" in result["summary"]
    assert len(result["output_tail"]) <= test_role.OUTPUT_TAIL_CHARS


async def test_quality_ruff_and_metrics(tmp_path: Path, reporter: RecordingReporter) -> None:
    project = tmp_path / "q"
    project.mkdir()
    (project / "lint.py").write_text("import os\n\n\ndef fine():\n    return 1\n")
    nested = (
        "def deep(a):\n"
        + "".join("    " * (i + 1) + f"if a > {i}:\n" for i in range(6))
        + "    " * 7
        + "return a\n    return 0\n"
    )
    (project / "deep.py").write_text(nested)
    js_branches = " ".join(f"if (x === {i}) {{ y += {i}; }}" for i in range(12))
    (project / "app.js").write_text(
        f"function busy(x) {{\n  let y = 0;\n  {js_branches}\n  return y;\n}}\n"
    )
    result = await test_role.create(Settings()).run(_task("quality", project), reporter)
    codes = {(d["path"], d["code"]) for d in result["diagnostics"]}
    assert ("lint.py", "ruff:F401") in codes
    hints = {d["path"]: d for d in result["diagnostics"] if d["code"] == "metrics"}
    assert (
        "nesting depth 6" in hints["deep.py"]["message"] and hints["deep.py"]["severity"] == "hint"
    )
    assert "cyclomatic complexity about 13" in hints["app.js"]["message"]
    assert hints["app.js"]["line"] == 0
    assert "lint.py" not in hints
    assert result["passed"] is False


async def test_bad_input_is_a_clear_error(tmp_path: Path, reporter: RecordingReporter) -> None:
    role = test_role.create(Settings())
    with pytest.raises(WorkerError, match="no snapshot"):
        await role.run(_task("test", None), reporter)
    with pytest.raises(WorkerError, match="does not exist"):
        await role.run(_task("test", tmp_path / "missing"), reporter)
    with pytest.raises(WorkerError, match="no test runner found"):
        (tmp_path / "empty").mkdir()
        await role.run(_task("test", tmp_path / "empty"), reporter)
    with pytest.raises(WorkerError, match="command must be"):
        await role.run(_task("test", tmp_path / "empty", command="rm -rf /"), reporter)


# -- other runners -----------------------------------------------------------------------


async def test_unittest_output_gives_the_failing_assertion_line(
    fixtures_dir: Path, reporter: RecordingReporter
) -> None:
    command = [sys.executable, "-m", "unittest", "discover", "-s", "tests", "-v"]
    result = await test_role.create(Settings()).run(
        _task("test", fixtures_dir / "unittest_project", command=command), reporter
    )
    assert result["summary"].startswith("custom: 1 failed, 1 passed")
    (diag,) = [d for d in result["diagnostics"] if d["code"] == "traceback"]
    assert (diag["path"], diag["line"]) == ("tests/test_money.py", 12)
    assert "AssertionError: 28 != 29" in diag["message"]


@pytest.mark.skipif(shutil.which("cargo") is None, reason="no Rust toolchain on this machine")
async def test_cargo_test_and_check_in_the_sandbox(
    fixtures_dir: Path, reporter: RecordingReporter
) -> None:
    role = test_role.create(Settings())
    result = await role.run(_task("test", fixtures_dir / "rust_crate"), reporter)
    assert result["runner"] == "cargo", result["output_tail"]
    assert result["summary"].startswith("cargo: 1 failed, 0 passed"), result["output_tail"]
    (panic,) = [d for d in result["diagnostics"] if d["code"] == "panic"]
    assert (panic["path"], panic["line"]) == ("src/lib.rs", 10)
    build = await role.run(_task("build", fixtures_dir / "rust_crate"), reporter)
    assert build["passed"] is True and build["runner"] == "cargo"


@pytest.mark.skipif(shutil.which("npm") is None, reason="no Node.js on this machine")
async def test_npm_test_with_node_test_runner(
    fixtures_dir: Path, reporter: RecordingReporter
) -> None:
    result = await test_role.create(Settings()).run(
        _task("test", fixtures_dir / "node_project"), reporter
    )
    assert result["runner"] == "npm" and result["passed"] is False
    assert result["summary"].startswith("npm: 1 failed, 0 passed")
    failing = [d for d in result["diagnostics"] if d["code"] == "test-failed"]
    assert [(d["path"], d["line"]) for d in failing] == [("test/sum.test.js", 3)]
    assert "2 !== 3" in failing[0]["message"]
    frames = [d for d in result["diagnostics"] if d["code"] == "traceback"]
    assert [(d["path"], d["line"]) for d in frames] == [("test/sum.test.js", 4)]


def test_go_tsc_and_compiler_output_parse_to_project_lines(tmp_path: Path) -> None:
    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg/sum_test.go").write_text("package pkg\n")
    (tmp_path / "src").mkdir()
    (tmp_path / "src/app.ts").write_text("let x: number = 'a';\n")
    output = (
        "--- FAIL: TestSum (0.00s)\n"
        "    sum_test.go:8: got 3, want 4\n"
        "FAIL\n"
        "src/app.ts(1,5): error TS2322: Type 'string' is not assignable to type 'number'.\n"
        "/usr/include/stdio.h:10:1: error: not ours\n"
    )
    found = {(d["path"], d["line"], d["character"]) for d in results.parse_text(output, tmp_path)}
    assert found == {("pkg/sum_test.go", 7, 0), ("src/app.ts", 0, 4)}
    assert results.text_counts("test result: FAILED. 3 passed; 2 failed; 0 ignored") == {
        "tests": 5,
        "failures": 2,
        "errors": 0,
        "skipped": 0,
    }


def test_detection_of_runners_and_build_checks(tmp_path: Path) -> None:
    (tmp_path / "go.mod").write_text("module x\n")
    assert detect.detect_test(tmp_path).runner == "go"
    assert detect.detect_build(tmp_path).argv[:2] == ("go", "vet")
    (tmp_path / "go.mod").unlink()
    (tmp_path / "tsconfig.json").write_text("{}")
    assert detect.detect_build(tmp_path).runner == "tsc"
    (tmp_path / "package.json").write_text('{"scripts": {"test": "vitest run"}}')
    assert detect.detect_test(tmp_path).argv == ("npm", "test", "--silent")


METRIC_CASES = {
    "python": "def f(a):\n    if a and a > 1:\n        return 1\n    return 0\n",
    "javascript": "function f(a) {\n  if (a && a > 1) { return 1; }\n  return 0;\n}\n",
    "typescript": (
        "function f(a: number): number {\n  if (a > 1 || a < 0) { return 1; }\n  return 0;\n}\n"
    ),
    "go": (
        "package p\n\nfunc f(a int) int {\n\tif a > 1 && a < 5 {\n\t\treturn 1\n\t}\n"
        "\treturn 0\n}\n"
    ),
    "rust": "fn f(a: i32) -> i32 {\n    if a > 1 && a < 5 { return 1; }\n    0\n}\n",
    "java": (
        "class A {\n  int f(int a) {\n    if (a > 1 && a < 5) { return 1; }\n"
        "    return 0;\n  }\n}\n"
    ),
    "c": "int f(int a) {\n  if (a > 1 && a < 5) { return 1; }\n  return 0;\n}\n",
    "cpp": "int f(int a) {\n  if (a > 1 && a < 5) { return 1; }\n  return 0;\n}\n",
    "lua": "function f(a)\n  if a > 1 and a < 5 then\n    return 1\n  end\n  return 0\nend\n",
}


@pytest.mark.parametrize("language", sorted(METRIC_CASES))
def test_metrics_in_every_language(language: str) -> None:
    (found,) = metrics.function_metrics(METRIC_CASES[language].encode(), language)
    source_line = METRIC_CASES[language].splitlines()[found.line]
    assert found.name == "f" and source_line[found.character :].startswith("f")
    # one if plus one boolean operator: nesting 1, cyclomatic 1 + 2
    assert (found.nesting, found.complexity) == (1, 3)


async def test_flooding_test_output_loses_no_diagnostics(
    tmp_path: Path, reporter: RecordingReporter
) -> None:
    (tmp_path / "tests").mkdir()
    (tmp_path / "tests/test_noisy.py").write_text(
        "def test_noisy_and_failing():\n"
        "    for i in range(80000):\n"
        "        print('noise line', i, 'x' * 40)\n"
        "    assert 1 + 1 == 3\n"
    )
    result = await test_role.create(Settings()).run(_task("test", tmp_path), reporter)
    assert result["dropped_bytes"] > 0 and "output capped" in result["summary"]
    (failing,) = [d for d in result["diagnostics"] if d["code"] == "test-failed"]
    assert (failing["path"], failing["line"]) == ("tests/test_noisy.py", 0)
    assert "assert (1 + 1) == 3" in failing["message"]


async def test_memory_and_cpu_limits_stop_greedy_commands(tmp_path: Path) -> None:
    greedy = [sys.executable, "-c", "blob = bytearray(2 * 1024**3)"]
    memory = await run_sandboxed(greedy, tmp_path, limits=Limits(memory_mb=512))
    assert memory.exit_code == 1 and "MemoryError" in memory.output
    spin = [sys.executable, "-c", "while True: pass"]
    cpu = await run_sandboxed(spin, tmp_path, limits=Limits(cpu_s=1, timeout_s=30))
    assert cpu.exit_code is not None and cpu.exit_code != 0 and not cpu.timed_out
    assert cpu.duration_s < 20
