"""Dispatch benchmarks on loopback, with real processes.

1. Submit latency (p50/p99): one client, one request at a time; the unary SubmitTask RPC and
   the client's default pipelined submit (SubmitStream).
2. Sustained submit -> complete throughput with 4 echo workers: a window of tasks in flight,
   each submitted on its own and followed to its final result, with unary SubmitTask and
   with the default pipelined submit; then with SubmitTasks batches.
3. Failover: a worker SIGKILLed mid-task -> the task running on another worker.

Run:  .venv/bin/python bench/dispatch.py [--tasks 3000] [--window 128] [--latency 1000]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from swarm_lsp.config import Settings  # noqa: E402
from swarm_lsp.dispatch import codec  # noqa: E402
from swarm_lsp.dispatch.client import DispatchClient  # noqa: E402
from swarm_lsp.dispatch.proto import swarm_pb2 as pb  # noqa: E402


class Procs:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.procs: list[subprocess.Popen[bytes]] = []

    def spawn(self, name: str, *args: str) -> subprocess.Popen[bytes]:
        with open(self.root / f"{name}.log", "ab") as log:
            proc = subprocess.Popen(
                [sys.executable, "-m", "swarm_lsp.cli", *args],
                cwd=self.root,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        self.procs.append(proc)
        return proc

    def coordinator(self, *extra: str) -> str:
        ready = self.root / "ready"
        self.spawn(
            "coordinator",
            "coordinator",
            "--listen",
            "127.0.0.1:0",
            "--state-dir",
            str(self.root / "state"),
            "--ready-file",
            str(ready),
            *extra,
        )
        while not ready.exists():
            time.sleep(0.05)
        return ready.read_text().strip()

    def worker(self, address: str, name: str, role: str, capacity: int) -> subprocess.Popen[bytes]:
        return self.spawn(
            f"worker-{name}",
            "worker",
            "--coordinator",
            address,
            "--role",
            role,
            "--name",
            name,
            "--capacity",
            str(capacity),
            "--cache-dir",
            str(self.root / f"cache-{name}"),
        )

    def stop(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                proc.terminate()
        for proc in self.procs:
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()


async def wait_workers(client: DispatchClient, count: int) -> None:
    while len((await client.status()).machines) < count:
        await asyncio.sleep(0.05)


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


async def bench_latency_and_throughput(args: argparse.Namespace, root: Path) -> dict[str, float]:
    procs = Procs(root)
    try:
        address = procs.coordinator()
        for i in range(4):
            procs.worker(address, f"echo{i}", "echo", args.capacity)
        client = await DispatchClient.connect(Settings(), address)
        await wait_workers(client, 4)
        # warm up
        for _ in range(50):
            await client.wait((await client.submit("echo", {"n": 0})).task_id)

        latencies: dict[bool, list[float]] = {False: [], True: []}
        for pipelined in (False, True):
            for i in range(args.latency):
                task = pb.Task(type="echo", context=codec.encode_json({"n": i}))
                start = time.perf_counter()
                await client.submit_task(task, pipelined=pipelined)
                latencies[pipelined].append((time.perf_counter() - start) * 1000)
        # let those finish before measuring throughput
        while (await client.status()).queue_depth or any(
            m.running for m in (await client.status()).machines
        ):
            await asyncio.sleep(0.1)

        async def one_by_one(pipelined: bool) -> float:
            window = asyncio.Semaphore(args.window)

            async def one(i: int) -> None:
                async with window:
                    task = pb.Task(type="echo", context=codec.encode_json({"n": i, "text": "x"}))
                    receipt = await client.submit_task(task, pipelined=pipelined)
                    result = await client.wait(receipt.task_id)
                    assert result.state == "SUCCEEDED", result

            start = time.perf_counter()
            await asyncio.gather(*(one(i) for i in range(args.tasks)))
            return args.tasks / (time.perf_counter() - start)

        unary_tps = await one_by_one(False)
        pipelined_tps = await one_by_one(True)

        # The same work with SubmitTasks: batches of --batch tasks, each task followed.
        batches = asyncio.Semaphore(max(1, args.window // args.batch))
        batched_done = 0

        async def batch(first: int) -> None:
            nonlocal batched_done
            async with batches:
                count = min(args.batch, args.tasks - first)
                answers = await client.submit_many(
                    "echo", [{"n": first + i, "text": "x"} for i in range(count)]
                )
                for answer in answers:
                    assert not isinstance(answer, Exception), answer
                results = await asyncio.gather(*(client.wait(a.task_id) for a in answers))  # type: ignore[union-attr]
                assert all(r.state == "SUCCEEDED" for r in results)
                batched_done += count

        start = time.perf_counter()
        await asyncio.gather(*(batch(i) for i in range(0, args.tasks, args.batch)))
        batched_elapsed = time.perf_counter() - start
        status = await client.status()
        per_worker = {m.name: m.completed for m in status.machines}
        await client.close()
        return {
            "submit_unary_p50_ms": statistics.median(latencies[False]),
            "submit_unary_p99_ms": pct(latencies[False], 99),
            "submit_pipelined_p50_ms": statistics.median(latencies[True]),
            "submit_pipelined_p99_ms": pct(latencies[True], 99),
            "throughput_unary_tasks_s": unary_tps,
            "throughput_pipelined_tasks_s": pipelined_tps,
            "batched_throughput_tasks_s": batched_done / batched_elapsed,
            "batched_elapsed_s": batched_elapsed,
            **{f"completed_{k}": float(v) for k, v in per_worker.items()},
        }
    finally:
        procs.stop()


async def bench_failover(root: Path, runs: int, mode: str) -> list[float]:
    """Worker death (SIGKILL) or a hung worker (SIGSTOP) -> the task running elsewhere.

    Default coordinator settings (heartbeat 500 ms, lease timeout 2000 ms).
    """
    procs = Procs(root)
    times = []
    try:
        address = procs.coordinator()
        workers = {name: procs.worker(address, name, "sleep", 1) for name in ("a", "b")}
        client = await DispatchClient.connect(Settings(), address)
        markers = root / "markers"
        markers.mkdir()
        for run in range(runs):
            await wait_workers(client, 2)
            receipt = await client.submit("sleep", {"seconds": 1.0, "marker_dir": str(markers)})
            started = markers / f"started-{receipt.task_id}"
            while not started.exists():
                await asyncio.sleep(0.005)
            victim = (await client.task_status(receipt.task_id)).worker
            started.unlink()
            killed = time.perf_counter()
            if mode == "kill":
                workers[victim].send_signal(signal.SIGKILL)
                workers[victim].wait()
            else:
                workers[victim].send_signal(signal.SIGSTOP)
            while not started.exists():
                await asyncio.sleep(0.002)
            times.append(time.perf_counter() - killed)
            if mode == "stop":
                workers[victim].send_signal(signal.SIGCONT)
            result = await client.wait(receipt.task_id)
            assert result.state == "SUCCEEDED" and result.worker != victim, result
            if mode == "kill":
                workers[victim] = procs.worker(address, f"{victim}", "sleep", 1)
            del run
        await client.close()
        return times
    finally:
        procs.stop()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=3000)
    parser.add_argument("--window", type=int, default=128)
    parser.add_argument("--latency", type=int, default=1000)
    parser.add_argument("--capacity", type=int, default=16, help="tasks per echo worker")
    parser.add_argument("--batch", type=int, default=32, help="tasks per SubmitTasks call")
    parser.add_argument("--failover-runs", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="swarm-bench-") as tmp:
        root = Path(tmp)
        for name in ("a", "b", "c"):
            (root / name).mkdir()
        os.environ.setdefault("SWARM_LSP_CACHE", str(root / "cache"))
        figures = asyncio.run(bench_latency_and_throughput(args, root / "a"))
        failover = asyncio.run(bench_failover(root / "b", args.failover_runs, "kill"))
        hung = asyncio.run(bench_failover(root / "c", args.failover_runs, "stop"))
    print(f"machine: {platform.machine()} {os.cpu_count()} cpus, {platform.platform()}")
    print(f"python {platform.python_version()}")
    for key, value in figures.items():
        print(f"{key}: {value:.2f}")
    for label, times in (("failover_sigkill_s", failover), ("failover_sigstop_s", hung)):
        print(
            f"{label}: "
            + ", ".join(f"{t:.3f}" for t in times)
            + f" (max {max(times):.3f}, median {statistics.median(times):.3f})"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
