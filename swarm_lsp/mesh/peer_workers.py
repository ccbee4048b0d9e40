"""Placement across the mesh: this machine's roles work for every peer.

For each peer in the view (and for this peer itself) the node runs one ``swarm-lsp worker``
process dialling that peer's coordinator with this machine's roles, under the node's id. So a
task submitted to *any* peer is placed by that peer's routing table (latency-aware, least
loaded, local fallback, queue, ask the user) over the machines of the whole mesh, and the peer
that accepted it owns its durable record; if the executing machine dies, the owner's lease
reaper runs the task elsewhere, as in the star. A peer out of the view for 10 s has its worker
stopped (a passing failure must not kill the tasks running for it); a dead node's own workers
exit with it, so no coordinator keeps a ghost machine.

The workers share one capacity, the machine's: a task runs only while its worker holds one
of the node's slot files (``swarm_lsp.workers.machine_slots``; the node names the folder in
``$SWARM_LSP_MACHINE_SLOTS``, which its workers and its coordinator's local fallback
inherit), and each worker tells its coordinator how many slots the others hold, so a
machine never runs more than ``capacity`` tasks at once, whichever peers they are for.

The workers for the other peers journal each success on this machine before reporting it, so
a result outlives an owner killed before it told anyone (``dispatch/result_journal.py``).
"""

from __future__ import annotations

import contextlib
import logging
import os
import subprocess
import sys
from pathlib import Path

from swarm_lsp.dispatch.result_journal import JOURNAL_FILE

log = logging.getLogger(__name__)


class PeerWorkers:
    def __init__(
        self, *, node_id: str, roles: tuple[str, ...], capacity: int, state_dir: Path
    ) -> None:
        self.node_id = node_id
        self.roles = roles
        self.capacity = capacity
        self.state_dir = state_dir
        self.procs: dict[str, subprocess.Popen[bytes]] = {}

    def start(self, address: str, *, journal: bool = True) -> None:
        """A worker for ``address``'s coordinator (no-op without roles or when one runs).

        With ``journal`` (a peer's, not this node's own coordinator) it journals each success
        in this node's state folder before reporting it (``dispatch/result_journal.py``).
        """
        proc = self.procs.get(address)
        if not self.roles or (proc is not None and proc.poll() is None):
            return
        folder = self.state_dir / "peer-workers" / address.replace(":", "_")
        folder.mkdir(parents=True, exist_ok=True)
        args = [sys.executable, "-m", "swarm_lsp.cli", "worker", "--coordinator", address]
        args += ["--name", self.node_id, "--capacity", str(self.capacity)]
        args += ["--cache-dir", str(folder / "cache")]
        if journal:
            args += ["--result-journal", str(self.state_dir / JOURNAL_FILE)]
        for role in self.roles:
            args += ["--role", role]
        # The worker exits within a second when this node dies, even by SIGKILL: no orphan
        # keeps working for the peers under the name of a node that is gone.
        env = {**os.environ, "SWARM_LSP_PARENT_PID": str(os.getpid())}
        with open(folder / "worker.log", "ab") as out:
            self.procs[address] = subprocess.Popen(
                args, stdin=subprocess.DEVNULL, stdout=out, stderr=out, env=env
            )
        log.info("mesh: working for %s with roles %s", address, ",".join(self.roles))

    def stop(self, address: str) -> None:
        proc = self.procs.pop(address, None)
        if proc is not None and proc.poll() is None:
            proc.terminate()

    def stop_all(self) -> None:
        procs = list(self.procs.values())
        self.procs.clear()
        for proc in procs:
            if proc.poll() is None:
                proc.terminate()
        for proc in procs:
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=5)
            if proc.poll() is None:
                proc.kill()
