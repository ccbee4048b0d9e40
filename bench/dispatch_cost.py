"""What one dispatched task costs, in figures that do not depend on the machine's load.

For each tree (an old commit, another commit, this working tree) and each throughput path
of ``bench/dispatch.py`` (unary ``SubmitTask``, the pipelined ``SubmitStream``, ``SubmitTasks``
batches), a fresh coordinator and 4 echo workers run ``--tasks`` tasks with ``--window`` in
flight, and per task this prints:

- CPU time of the coordinator, the workers (together) and the client (``/proc``, rusage);
- the task store's commits (explicit ``COMMIT`` and autocommitted writes), SQL statements and
  WAL checkpoints, counted inside the coordinator by a ``sitecustomize`` hook (a SQLite trace
  callback) that this script puts on the coordinator's ``PYTHONPATH``;
- the coordinator's event-loop passes (``BaseEventLoop._run_once`` calls);
- with ``--strace``: fsync/fdatasync calls of the coordinator (``strace -f -c``), a separate
  run since tracing slows it;
- with ``--py-spy DIR``: a py-spy profile of the coordinator during each measured phase,
  ``DIR/<tree>-<mode>.txt`` (collapsed stacks, ``--nonblocking``, 200 Hz).

Trees run one after another, rounds rotate the order; medians over ``--rounds``. Tasks/s is
printed too but, unlike the rest, depends on the load.

    .venv/bin/python bench/dispatch_cost.py [--tree old=d39e7e0] [--tree main=main] \\
        [--tree new=.] [--tasks 3000] [--rounds 3] [--modes unary,pipelined,batched] \\
        [--strace] [--py-spy DIR]

``--tree NAME=COMMIT`` (repeatable; ``.`` is this working tree). Default: d39e7e0, main, ``.``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from dispatch_compare import _export  # a sibling script: bench/ is on the path when run

REPO = Path(__file__).resolve().parent.parent
MODES = ("unary", "pipelined", "batched")

# Installed as sitecustomize.py for the coordinator only (SWARM_COST_FILE set). SIGUSR2
# writes the counters to SWARM_COST_FILE as JSON.
HOOK = r"""
import asyncio.base_events
import json
import os
import signal
import sqlite3

_FILE = os.environ.get("SWARM_COST_FILE")
if _FILE:
    _counts = {"commits": 0, "statements": 0, "checkpoints": 0, "loop_passes": 0, "dumps": 0}
    _connect = sqlite3.connect

    def _tracked(database, *args, **kwargs):
        conn = _connect(database, *args, **kwargs)
        if str(database).endswith("tasks.sqlite3"):
            def trace(sql, conn=conn):
                head = sql.lstrip()[:8].upper()
                if "WAL_CHECK" in sql.upper()[:40]:
                    _counts["checkpoints"] += 1
                    return
                _counts["statements"] += 1
                if head.startswith("COMMIT") or head.startswith("END"):
                    _counts["commits"] += 1
                elif head.startswith(("INSERT", "UPDATE", "DELETE")) and not conn.in_transaction:
                    _counts["commits"] += 1
            conn.set_trace_callback(trace)
        return conn

    sqlite3.connect = _tracked
    _run_once = asyncio.base_events.BaseEventLoop._run_once

    def _counted(self):
        _counts["loop_passes"] += 1
        return _run_once(self)

    asyncio.base_events.BaseEventLoop._run_once = _counted

    def _dump(signum, frame):
        _counts["dumps"] += 1
        with open(_FILE + ".tmp", "w") as out:
            json.dump(_counts, out)
        os.replace(_FILE + ".tmp", _FILE)

    signal.signal(signal.SIGUSR2, _dump)
"""


def _ticks(pid: int) -> int:
    """utime + stime of a process (all its threads, live and gone), in clock ticks."""
    stat = Path(f"/proc/{pid}/stat").read_text()
    fields = stat[stat.rindex(")") + 2 :].split()
    return int(fields[11]) + int(fields[12])


def _split(pid: int) -> tuple[int, int, int]:
    """user ticks, system ticks, context switches (all live threads) of a process."""
    stat = Path(f"/proc/{pid}/stat").read_text()
    fields = stat[stat.rindex(")") + 2 :].split()
    switches = 0
    for status in Path(f"/proc/{pid}/task").glob("*/status"):
        try:
            for line in status.read_text().splitlines():
                if "ctxt_switches:" in line:
                    switches += int(line.split()[1])
        except OSError:  # a thread that ended meanwhile
            pass
    return int(fields[11]), int(fields[12]), switches


def _client_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


class Swarm:
    """A coordinator (counted, optionally under strace) and 4 echo workers, from PYTHONPATH."""

    def __init__(self, root: Path, strace: bool) -> None:
        self.root = root
        self.procs: list[subprocess.Popen[bytes]] = []
        self.count_file = root / "counts.json"
        self.strace_file = root / "strace.txt"
        env = {**os.environ, "SWARM_COST_FILE": str(self.count_file)}
        ready = root / "ready"
        prefix = (
            ["strace", "-f", "-c", "-o", str(self.strace_file), "-e", "trace=fsync,fdatasync"]
            if strace
            else []
        )
        self.coordinator = self._spawn(
            "coordinator",
            [
                *prefix,
                *(sys.executable, "-m", "swarm_lsp.cli", "coordinator", "--listen", "127.0.0.1:0"),
                *("--state-dir", str(root / "state"), "--ready-file", str(ready)),
            ],
            env,
        )
        while not ready.exists():
            time.sleep(0.05)
        self.address = ready.read_text().strip()
        self.pid = self._python_pid(self.coordinator.pid) if strace else self.coordinator.pid
        self.workers = [
            self._spawn(
                f"worker{i}",
                [
                    *(sys.executable, "-m", "swarm_lsp.cli", "worker"),
                    *("--coordinator", self.address, "--role", "echo", "--name", f"echo{i}"),
                    *("--capacity", "16", "--cache-dir", str(root / f"cache{i}")),
                ],
                dict(os.environ),
            )
            for i in range(4)
        ]

    @staticmethod
    def _python_pid(strace_pid: int) -> int:
        children = Path(f"/proc/{strace_pid}/task/{strace_pid}/children").read_text().split()
        return int(children[0])

    def _spawn(self, name: str, argv: list[str], env: dict[str, str]) -> subprocess.Popen[bytes]:
        with open(self.root / f"{name}.log", "ab") as log:
            proc = subprocess.Popen(
                argv, cwd=self.root, stdout=log, stderr=subprocess.STDOUT, env=env
            )
        self.procs.append(proc)
        return proc

    def counts(self) -> dict[str, float]:
        before = json.loads(self.count_file.read_text())["dumps"] if self.count_file.exists() else 0
        os.kill(self.pid, signal.SIGUSR2)
        for _ in range(500):
            if self.count_file.exists():
                counts = json.loads(self.count_file.read_text())
                if counts["dumps"] > before:
                    return {k: float(v) for k, v in counts.items() if k != "dumps"}
            time.sleep(0.01)
        raise RuntimeError("the coordinator did not write its counters (no sitecustomize hook?)")

    def cpu(self) -> tuple[int, int]:
        return _ticks(self.pid), sum(_ticks(w.pid) for w in self.workers)

    def stop(self) -> dict[str, float]:
        os.kill(self.pid, signal.SIGTERM)  # (not strace's: it writes its summary as it ends)
        for proc in self.procs[1:]:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in self.procs:
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
        syscalls: dict[str, float] = {}
        if self.strace_file.exists():
            for line in self.strace_file.read_text().splitlines():
                parts = line.split()
                if parts and parts[-1] in ("fsync", "fdatasync"):
                    syscalls[parts[-1]] = float(parts[3])
        return syscalls


async def _measure(
    mode: str, tasks: int, window: int, root: Path, strace: bool, profile: Path | None
) -> dict[str, float]:
    from swarm_lsp.config import Settings
    from swarm_lsp.dispatch import codec
    from swarm_lsp.dispatch.client import DispatchClient
    from swarm_lsp.dispatch.proto import swarm_pb2 as pb

    swarm = Swarm(root, strace)
    try:
        client = await DispatchClient.connect(Settings(), swarm.address)
        while len((await client.status()).machines) < 4:
            await asyncio.sleep(0.05)
        for _ in range(50):  # warm up
            await client.wait((await client.submit("echo", {"n": 0})).task_id)
        await asyncio.sleep(0.5)
        spy = None
        if profile is not None:
            spy = subprocess.Popen(
                [
                    *("py-spy", "record", "--nonblocking", "-r", "200", "-f", "raw"),
                    *("-o", str(profile), "-p", str(swarm.pid)),
                ],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            await asyncio.sleep(1)
        split0 = _split(swarm.pid)
        counts0, (coord0, workers0), client0 = swarm.counts(), swarm.cpu(), _client_cpu()
        start = time.perf_counter()
        if mode == "batched":
            batches = asyncio.Semaphore(max(1, window // 32))

            async def batch(first: int) -> None:
                async with batches:
                    count = min(32, tasks - first)
                    answers = await client.submit_many(
                        "echo", [{"n": first + i, "text": "x"} for i in range(count)]
                    )
                    waits = (client.wait(a.task_id) for a in answers)  # type: ignore[union-attr]
                    results = await asyncio.gather(*waits)
                    assert all(r.state == "SUCCEEDED" for r in results)

            await asyncio.gather(*(batch(i) for i in range(0, tasks, 32)))
        else:
            slots = asyncio.Semaphore(window)

            async def one(i: int) -> None:
                async with slots:
                    task = pb.Task(type="echo", context=codec.encode_json({"n": i, "text": "x"}))
                    receipt = await client.submit_task(task, pipelined=mode == "pipelined")
                    result = await client.wait(receipt.task_id)
                    assert result.state == "SUCCEEDED", result

            await asyncio.gather(*(one(i) for i in range(tasks)))
        elapsed = time.perf_counter() - start
        await asyncio.sleep(0.3)  # the last commits and checkpoint
        counts1, (coord1, workers1), client1 = swarm.counts(), swarm.cpu(), _client_cpu()
        split1 = _split(swarm.pid)
        if spy is not None:
            spy.send_signal(signal.SIGINT)
            spy.wait(timeout=60)
        await client.close()
    finally:
        syscalls = swarm.stop()
    hz = os.sysconf("SC_CLK_TCK")
    figures = {
        "tasks_per_s": tasks / elapsed,
        "coordinator_cpu_us": (coord1 - coord0) / hz / tasks * 1e6,
        "coordinator_user_us": (split1[0] - split0[0]) / hz / tasks * 1e6,
        "coordinator_system_us": (split1[1] - split0[1]) / hz / tasks * 1e6,
        "coordinator_context_switches": (split1[2] - split0[2]) / tasks,
        "workers_cpu_us": (workers1 - workers0) / hz / tasks * 1e6,
        "client_cpu_us": (client1 - client0) / tasks * 1e6,
        **{f"{k}_per_task": (counts1[k] - counts0[k]) / tasks for k in counts1},
    }
    figures["tasks_per_commit"] = (
        1 / figures["commits_per_task"] if figures["commits_per_task"] else 0
    )
    if strace:  # whole life of the coordinator (start-up included): a rough per-task figure
        for name, calls in syscalls.items():
            figures[f"{name}_per_task_strace"] = calls / tasks
    return figures


def _child(args: argparse.Namespace) -> int:
    out: dict[str, dict[str, float]] = {}
    with tempfile.TemporaryDirectory(prefix="dispatch-cost-") as tmp:
        os.environ.setdefault("SWARM_LSP_CACHE", str(Path(tmp) / "cache"))
        for mode in args.modes.split(","):
            root = Path(tmp) / mode
            root.mkdir()
            profile = Path(args.py_spy) / f"{args.label}-{mode}.txt" if args.py_spy else None
            out[mode] = asyncio.run(
                _measure(mode, args.tasks, args.window, root, args.strace, profile)
            )
    print(json.dumps(out))
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tree", action="append", default=[], help="NAME=COMMIT ('.': here)")
    parser.add_argument("--tasks", type=int, default=3000)
    parser.add_argument("--window", type=int, default=128)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--modes", default=",".join(MODES), help="comma-separated")
    parser.add_argument("--strace", action="store_true", help="count fsyncs (slower runs)")
    parser.add_argument("--py-spy", default="", help="profile the coordinator into this folder")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--label", default="", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        return _child(args)
    specs = args.tree or ["old=d39e7e0", "main=main", "new=."]
    runs: dict[str, list[dict[str, dict[str, float]]]] = {}
    with tempfile.TemporaryDirectory(prefix="dispatch-cost-trees-") as tmp:
        hook = Path(tmp) / "hook"
        hook.mkdir()
        (hook / "sitecustomize.py").write_text(HOOK)
        trees = {}
        for spec in specs:
            name, _, commit = spec.partition("=")
            trees[name] = _export(commit or name, Path(tmp), name)
            runs[name] = []
        names = list(trees)
        for round_ in range(args.rounds):
            order = names[round_ % len(names) :] + names[: round_ % len(names)]
            for name in order:
                load = os.getloadavg()[0]
                env = {**os.environ, "PYTHONPATH": f"{trees[name]}:{hook}"}
                child = [sys.executable, __file__, "--child", "--tasks", str(args.tasks)]
                child += ["--window", str(args.window), "--modes", args.modes, "--label", name]
                child += ["--strace"] if args.strace else []
                child += ["--py-spy", str(Path(args.py_spy).resolve())] if args.py_spy else []
                done = subprocess.run(
                    child, cwd=trees[name], env=env, capture_output=True, text=True, timeout=3600
                )
                if done.returncode:
                    sys.stderr.write(done.stderr)
                    return done.returncode
                figures = json.loads(done.stdout.strip().splitlines()[-1])
                runs[name].append(figures)
                print(f"# round {round_ + 1} {name} (load {load:.1f}): {json.dumps(figures)}")
    _table(runs)
    return 0


def _table(runs: dict[str, list[dict[str, dict[str, float]]]]) -> None:
    names = list(runs)
    print(f"\nmedians over {len(runs[names[0]])} rounds")
    for mode in runs[names[0]][0]:
        keys: list[str] = []
        for name in names:
            for key in runs[name][0][mode]:
                if key not in keys:
                    keys.append(key)
        print(f"\n{mode}\n")
        print("| per task | " + " | ".join(names) + " |")
        print("|---" * (len(names) + 1) + "|")
        for key in keys:
            cells: list[Any] = []
            for name in names:
                values = [run[mode].get(key, float("nan")) for run in runs[name]]
                cells.append(f"{statistics.median(values):.3g}")
            print(f"| {key} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    sys.exit(main())
