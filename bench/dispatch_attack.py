"""The amplification attacks of issue 10 against a real coordinator: memory and disk stay bounded.

1. N tasks whose 2-6 KB zstd context expands to 60 MB of JSON each (an echo worker would send
   back twice that);
2. one PutBlobs of ~30 KB that expands to 50 blobs of 16 MiB (800 MiB);
3. a manifest naming ``a`` and ``a/b`` (a file that is also a folder), then one ordinary echo
   task, which must still run (the issue's leak left "all workers for role 'echo' are busy").

Reports the coordinator's RSS (now and peak, from /proc), its state folder on disk, and the
worker's cache on disk. ``--tree`` runs the coordinator and worker from another checkout
(e.g. an export of the commit before the fix) for a side-by-side figure.

Run:  .venv/bin/python bench/dispatch_attack.py [--tasks 30] [--tree /tmp/old-checkout]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import grpc

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from swarm_lsp.dispatch import codec  # noqa: E402
from swarm_lsp.dispatch.proto import swarm_pb2 as pb  # noqa: E402
from swarm_lsp.dispatch.proto import swarm_pb2_grpc as pb_grpc  # noqa: E402
from swarm_lsp.dispatch.snapshot import blob_hash  # noqa: E402

MIB = 1024 * 1024


def rss_mib(pid: int) -> tuple[float, float]:
    """(current, peak) resident set size of ``pid`` in MiB."""
    fields = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        fields[key] = value.strip()
    return int(fields["VmRSS"].split()[0]) / 1024, int(fields["VmHWM"].split()[0]) / 1024


def disk_mib(path: Path) -> float:
    total = 0
    for folder, _dirs, files in os.walk(path):
        for name in files:
            with contextlib.suppress(FileNotFoundError):
                total += os.lstat(os.path.join(folder, name)).st_blocks * 512
    return total / MIB


async def attack(address: str, tasks: int) -> dict[str, object]:
    found: dict[str, object] = {}
    async with grpc.aio.insecure_channel(
        address, options=[("grpc.max_receive_message_length", 64 * MIB)]
    ) as channel:
        stub = pb_grpc.SwarmCoordinatorStub(channel)
        bomb = codec.compress(b'{"text": "' + b"a" * (60 * MIB) + b'"}')
        found["bomb_bytes"] = len(bomb)
        accepted: list[str] = []
        refusals: set[str] = set()
        for _ in range(tasks):
            try:
                receipt = await stub.SubmitTask(pb.Task(type="echo", context=bomb), timeout=60)
                accepted.append(receipt.task_id)
            except grpc.aio.AioRpcError as err:
                refusals.add(err.code().name)
        found["bombs_accepted"] = len(accepted)
        found["bomb_refusals"] = ",".join(sorted(refusals)) or "-"

        batch = pb.BlobBatch()
        for i in range(50):
            raw = bytes([i]) * (16 * MIB)
            batch.blobs.append(pb.Blob(hash=blob_hash(raw), data=codec.compress(raw)))
        found["putblobs_bytes"] = batch.ByteSize()
        try:
            await stub.PutBlobs(batch, timeout=120)
            found["putblobs"] = "accepted"
        except grpc.aio.AioRpcError as err:
            found["putblobs"] = err.code().name

        digest = blob_hash(b"x")
        bad = pb.Task(type="echo", snapshot=pb.SnapshotManifest(files={"a": digest, "a/b": digest}))
        try:
            await stub.SubmitTask(bad, timeout=30)
            found["file_and_folder"] = "accepted"
        except grpc.aio.AioRpcError as err:
            found["file_and_folder"] = err.code().name

        deadline = time.monotonic() + 120
        states: dict[str, str] = {}
        while time.monotonic() < deadline:
            for task_id in accepted:
                status = await stub.GetTaskStatus(pb.TaskId(id=task_id), timeout=30)
                states[task_id] = pb.TaskState.Name(status.state)
            if all(s not in ("QUEUED", "RUNNING") for s in states.values()):
                break
            await asyncio.sleep(1)
        found["bomb_states"] = ",".join(sorted(set(states.values()))) or "-"

        ordinary = await stub.SubmitTask(
            pb.Task(type="echo", context=codec.encode_json({"text": "still here"})), timeout=30
        )
        final = None
        for _ in range(300):
            status = await stub.GetTaskStatus(pb.TaskId(id=ordinary.task_id), timeout=30)
            final = pb.TaskState.Name(status.state)
            if final not in ("QUEUED", "RUNNING"):
                break
            await asyncio.sleep(0.1)
        found["ordinary_task"] = f"{final} ({ordinary.note or 'no note'})"
    return found


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=30)
    parser.add_argument("--tree", type=Path, default=ROOT, help="checkout to run the swarm from")
    parser.add_argument(
        "--local-fallback", action="store_true", help="no worker; the coordinator runs echo"
    )
    args = parser.parse_args()
    env = {**os.environ, "PYTHONPATH": str(args.tree)}
    with tempfile.TemporaryDirectory(prefix="swarm-attack-") as tmp:
        root = Path(tmp)
        ready = root / "ready"
        procs: list[subprocess.Popen[bytes]] = []

        def spawn(name: str, *cli: str) -> subprocess.Popen[bytes]:
            with open(root / f"{name}.log", "ab") as log:
                proc = subprocess.Popen(
                    [sys.executable, "-m", "swarm_lsp.cli", *cli],
                    cwd=root,
                    env=env,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                )
            procs.append(proc)
            return proc

        try:
            coordinator = spawn(
                "coordinator",
                "coordinator",
                "--listen",
                "127.0.0.1:0",
                "--state-dir",
                str(root / "state"),
                "--ready-file",
                str(ready),
                *([] if args.local_fallback else ["--no-local-fallback"]),
            )
            while not ready.exists():
                time.sleep(0.05)
            address = ready.read_text().strip()
            if not args.local_fallback:
                spawn(
                    "worker",
                    "worker",
                    "--coordinator",
                    address,
                    "--role",
                    "echo",
                    "--name",
                    "w1",
                    "--capacity",
                    "4",
                    "--cache-dir",
                    str(root / "worker-cache"),
                )
            time.sleep(3)
            before = rss_mib(coordinator.pid)
            found = asyncio.run(attack(address, args.tasks))
            now, peak = rss_mib(coordinator.pid)
            mode = "local fallback" if args.local_fallback else "one echo worker"
            print(f"tree: {args.tree}  ({mode})  load: {os.getloadavg()}")
            print(
                f"coordinator RSS before: {before[0]:.0f} MiB; after: {now:.0f} MiB; "
                f"peak: {peak:.0f} MiB"
            )
            print(
                f"coordinator state on disk: {disk_mib(root / 'state'):.1f} MiB; "
                f"worker cache: {disk_mib(root / 'worker-cache'):.1f} MiB"
            )
            for key, value in found.items():
                print(f"{key}: {value}")
        finally:
            for proc in procs:
                proc.terminate()
            for proc in procs:
                try:
                    proc.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    proc.kill()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
