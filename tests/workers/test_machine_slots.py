"""One capacity per machine: slot files shared by worker processes (real flock, two processes)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from swarm_lsp.dispatch.coordinator.scheduler import choose
from swarm_lsp.workers.machine_slots import MachineSlots, prepare
from tests.dispatch.test_scheduler import _task, _worker

HOLDER = """
import sys, time
from pathlib import Path
from swarm_lsp.workers.machine_slots import MachineSlots
slots = MachineSlots(Path(sys.argv[1]))
assert slots.try_acquire() is not None
print("held", flush=True)
sys.stdin.readline()
"""


def test_slots_are_shared_between_processes_and_freed_when_one_dies(tmp_path: Path) -> None:
    folder = prepare(tmp_path / "slots", 2)
    ours = MachineSlots(folder)
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(folder)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        assert ours.held_elsewhere() == 1
        mine = ours.try_acquire()
        assert mine is not None
        assert ours.try_acquire() is None  # the machine is full: one here, one there
        assert ours.held_elsewhere() == 1  # probing never counts our own slot
        holder.kill()  # the kernel drops its lock, even for SIGKILL
        holder.wait(timeout=10)
        assert ours.held_elsewhere() == 0
        assert ours.try_acquire() is not None
        ours.release(mine)
    finally:
        if holder.poll() is None:
            holder.kill()
        ours.close()


def test_prepare_sets_the_machines_capacity(tmp_path: Path) -> None:
    folder = prepare(tmp_path / "slots", 3)
    assert MachineSlots(folder).capacity == 3
    assert MachineSlots(prepare(folder, 1)).capacity == 1


def test_a_worker_whose_machine_is_busy_elsewhere_gets_no_lease() -> None:
    busy = _worker("busy", capacity=2, running=0)
    busy.elsewhere = 2  # its machine's other workers hold both slots
    idle = _worker("idle", capacity=2, running=1)
    assert choose(_task(), [busy, idle]) is idle
    idle.elsewhere = 1
    assert choose(_task(), [busy, idle]) is None  # all busy: the task waits in the queue
