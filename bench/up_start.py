"""Start-up time of the swarm of one (`swarm-lsp up`), two source trees side by side.

Each run starts ``swarm-lsp up --port 0 --role echo --role sleep`` from one tree (its own
PYTHONPATH and a fresh state folder), measures the time until the ready file appears (the
coordinator or node listening and both workers registered), then stops it with SIGINT. The
trees take turns, so the machine's load falls on both alike.

Run:  python bench/up_start.py OLD_TREE NEW_TREE [--runs 7]
"""

from __future__ import annotations

import argparse
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def start_once(tree: Path, folder: Path) -> float:
    ready = folder / "ready"
    env = {**os.environ, "PYTHONPATH": str(tree), "XDG_CACHE_HOME": str(folder / "cache")}
    command = [sys.executable, "-m", "swarm_lsp.cli", "up", "--port", "0"]
    command += ["--role", "echo", "--role", "sleep", "--state-dir", str(folder / "state")]
    started = time.monotonic()
    proc = subprocess.Popen(
        [*command, "--ready-file", str(ready)],
        cwd=folder,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        while not ready.exists():
            if proc.poll() is not None or time.monotonic() - started > 60:
                raise RuntimeError(f"{tree}: up did not start")
            time.sleep(0.01)
        return time.monotonic() - started
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=30)


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("old", type=Path)
    parser.add_argument("new", type=Path)
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args()
    times: dict[str, list[float]] = {"old": [], "new": []}
    load_before = Path("/proc/loadavg").read_text().split()[:3]
    for run in range(args.runs):
        order = ("old", "new") if run % 2 == 0 else ("new", "old")
        for name in order:
            with tempfile.TemporaryDirectory(prefix="up-start-") as folder:
                times[name].append(start_once(getattr(args, name).resolve(), Path(folder)))
    load_after = Path("/proc/loadavg").read_text().split()[:3]
    print(f"load average before {' '.join(load_before)}, after {' '.join(load_after)}")
    print("| tree | median s | p95 (max) s | runs |\n|---|---|---|---|")
    for name, values in times.items():
        shown = ", ".join(f"{v:.2f}" for v in values)
        print(f"| {name} | {statistics.median(values):.2f} | {max(values):.2f} | {shown} |")
    ratio = statistics.median(times["new"]) / statistics.median(times["old"])
    print(f"new/old (medians): {ratio:.2f}x")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
