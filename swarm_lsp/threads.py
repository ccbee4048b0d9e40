"""One inference budget per machine: how many threads llama.cpp, torch and BLAS may use.

llama.cpp's threads spin while they wait for each other; two engines whose threads together
outnumber the cores collapse (0.3 tokens/s measured where one thread alone makes 100). Every
model that runs on this machine — the LSP server's completion and chat models, the local swarm's
refactor model, the research embedder — therefore takes its thread counts from here, and
registers a *claim* (a small JSON file per engine in :func:`claims_dir`) so the others can
see it.

The rules (:func:`plan`, a pure function):

- the cores are the ones this process may run on (``os.sched_getaffinity``), less the load
  other programs put on them (the 1-minute load average minus what swarm engines account for);
- an interactive engine (completion, chat in the editor) takes the free cores left over by the
  background engines that are running a job right now, shared with the other interactive
  engines that are busy;
- a background engine (a swarm worker's model, the embedder) runs at a lower priority
  (``nice`` +10) and takes the free cores left over by the other busy background engines,
  except: one thread while an interactive engine runs a job; and one thread while any
  interactive engine lives on this machine if it cannot pause between decodes (an embedder
  inside torch). One that yields (a llama.cpp model: it pauses between decodes while the
  editor's engine runs a job) takes the free cores of a machine whose editor is idle for its
  prompt, and one thread for its generation;
- each engine gets at least one thread and at most :data:`MAX_THREADS`, so with fewer cores
  than busy engines the sum can exceed the cores by the engines beyond the cores, never more.

Engines re-plan before every job (llama.cpp's thread counts can change between decodes), so
a background generation drops to one thread as soon as the editor asks for a completion.
Environment limits for torch and BLAS (:func:`apply_env_limits`) must be set before those
libraries are imported; :func:`limit_process` does the whole set-up for a background process.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
import math
import os
import sys
import threading
import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import BinaryIO

from swarm_lsp import paths

log = logging.getLogger(__name__)

INTERACTIVE = "interactive"
BACKGROUND = "background"
ROLES = (INTERACTIVE, BACKGROUND)

BACKGROUND_NICE = 10  # niceness a background engine's threads run at
MAX_THREADS = 8  # small models gain nothing from more; llama.cpp's own cap is similar
CLAIM_BYTES = 512  # a claim file's fixed size (JSON padded with spaces)

# Variables read by OpenMP, OpenBLAS, MKL, Accelerate and numexpr when they start their pools.
BLAS_ENV_VARS = (
    "OMP_NUM_THREADS",
    "OPENBLAS_NUM_THREADS",
    "MKL_NUM_THREADS",
    "VECLIB_MAXIMUM_THREADS",
    "NUMEXPR_NUM_THREADS",
)


@dataclasses.dataclass(frozen=True)
class Claim:
    """One engine's entry in the machine's budget."""

    key: str  # "<pid>-<engine name>"
    pid: int
    role: str
    threads: int
    active: bool  # running a job right now
    yields: bool = False  # pauses between decodes while an interactive engine runs a job


@dataclasses.dataclass(frozen=True)
class Budget:
    """Thread counts and priority for one engine, and why."""

    role: str
    n_threads: int  # llama.cpp generation threads
    n_threads_batch: int  # llama.cpp prompt (batch) threads
    torch_threads: int
    blas_threads: int
    nice: int  # niceness increment for the threads that run the model
    reason: str

    @property
    def threads(self) -> int:
        """The most threads this engine runs at once."""
        return max(self.n_threads, self.n_threads_batch)


# -- the machine ----------------------------------------------------------------------------
def usable_cores() -> int:
    """Cores this process may run on (its CPU affinity), at least 1."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):  # not Linux
        return max(1, os.cpu_count() or 1)


def load_average() -> float:
    """The 1-minute load average (runnable and uninterruptible tasks), 0.0 when unknown."""
    try:
        return os.getloadavg()[0]
    except (AttributeError, OSError):
        pass
    try:
        return float(Path("/proc/loadavg").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 0.0


class CpuMeter:
    """Cores other programs kept busy lately: ``/proc/stat`` less this process's own CPU time.

    The load average is a minute long: after a burst of other work ends it still says the
    cores are taken for tens of seconds, and an editor's engine would run on one thread where
    two are free. This looks at the last second or so instead (samples taken whenever an
    engine plans, so after a pause the window reaches back to the last plan; the very first
    plan has none and falls back to the load average).
    """

    MIN_WINDOW_S = 0.25  # shorter windows are too noisy to plan with
    KEEP_S = 2.0

    def __init__(self) -> None:
        self._samples: list[tuple[float, float, float]] = []  # (time, busy s, own CPU s)
        self._lock = threading.Lock()
        try:
            self._tick = float(os.sysconf("SC_CLK_TCK"))
        except (AttributeError, ValueError, OSError):
            self._tick = 100.0

    def _read(self) -> tuple[float, float, float] | None:
        try:
            with open("/proc/stat", encoding="ascii") as stat:
                fields = [float(x) for x in stat.readline().split()[1:9]]
        except (OSError, ValueError):
            return None
        if len(fields) < 5:
            return None
        busy = (sum(fields) - fields[3] - fields[4]) / self._tick  # less idle and iowait
        times = os.times()
        return time.monotonic(), busy, times.user + times.system

    def busy_elsewhere(self) -> float | None:
        """Cores used by other processes over the last ~second (None: not known yet)."""
        sample = self._read()
        if sample is None:
            return None
        now = sample[0]
        with self._lock:
            # After a long quiet spell the newest old sample still beats a minute's average.
            recent = [s for s in self._samples if now - s[0] <= self.KEEP_S]
            self._samples = recent or self._samples[-1:]
            base = next((s for s in self._samples if now - s[0] >= self.MIN_WINDOW_S), None)
            if not self._samples or now - self._samples[-1][0] >= 0.05:
                self._samples.append(sample)
        if base is None:
            return None
        elapsed = now - base[0]
        return max(0.0, ((sample[1] - base[1]) - (sample[2] - base[2])) / elapsed)


METER = CpuMeter()


def running_elsewhere() -> int | None:
    """Threads runnable on the machine right now besides the caller (``/proc/loadavg``).

    The meter's second looks back: the burst another program ran a moment ago (a compiler
    step, another engine's request) still counts there after it ended. Planning takes the
    smaller of the two, so cores free now are used now.
    """
    try:
        with open("/proc/loadavg", encoding="ascii") as loadavg:
            running = int(loadavg.read().split()[3].split("/")[0])
    except (OSError, ValueError, IndexError):
        return None
    return max(0, running - 1)


# -- the policy -----------------------------------------------------------------------------
def plan(
    role: str,
    *,
    cores: int,
    load: float,
    others: Iterable[Claim],
    own_threads: int = 0,
    fixed: int = 0,
    busy: float | None = None,
    pid: int = 0,
    running: int | None = None,
    yields: bool = False,
) -> Budget:
    """The budget for a ``role`` engine given the machine and the other engines' claims.

    ``own_threads`` is what this engine itself ran with lately (it is inside the load average
    and is not someone else's load). ``busy``, when known, is the cores other processes kept
    busy over the last second (:class:`CpuMeter`) and replaces the minute-long ``load``;
    ``pid`` is this process (its own engines are not in ``busy``); ``running``, when known,
    is the threads other than the caller runnable right now (:func:`running_elsewhere`): a
    burst that has ended leaves its cores free. ``fixed`` > 0 is a user's
    explicit thread count: it wins, but a background engine still gets its lower priority.
    Background engines that yield (pause while an interactive engine runs a job) leave an
    interactive engine every free core; ``yields`` says the caller is one, so an idle
    interactive engine does not hold it to one thread.
    """
    if role not in ROLES:
        raise ValueError(f"unknown inference role {role!r}; expected one of {ROLES}")
    claims = list(others)
    if busy is not None:
        elsewhere = sum(c.threads for c in claims if c.active and c.pid != pid)
        source = f"{busy:.1f} cores busy elsewhere"
        if running is not None and running < busy:
            busy = float(running)
            source += f", {running} running now"
        external = max(0.0, busy - elsewhere)
    else:
        ours = own_threads + sum(c.threads for c in claims if c.active)
        external = max(0.0, load - ours)
        source = f"load {load:.1f}"
    free = max(1, cores - math.floor(external + 0.25))  # a mostly busy core counts as taken
    busy_background = sum(
        c.threads
        for c in claims
        if c.role == BACKGROUND and c.active and not (role == INTERACTIVE and c.yields)
    )
    nice = 0 if role == INTERACTIVE else BACKGROUND_NICE
    generation = MAX_THREADS  # llama.cpp's threads for one-token decodes: n unless said here
    if fixed > 0:
        n, reason = fixed, f"fixed at {fixed} by settings"
    elif role == INTERACTIVE:
        peers = 1 + sum(1 for c in claims if c.role == INTERACTIVE and c.active)
        n = max(1, (free - busy_background) // peers)
        reason = (
            f"{free} of {cores} cores free ({source}), {busy_background} to busy "
            f"background engines, shared by {peers} interactive"
        )
    elif any(c.role == INTERACTIVE and c.active for c in claims):
        n, reason = 1, "an interactive engine is running a job: background keeps 1 thread"
    elif not yields and any(c.role == INTERACTIVE for c in claims):
        n, reason = 1, "an interactive engine lives and this engine cannot pause: 1 thread"
    else:
        n = max(1, free - busy_background)
        reason = (
            f"{free} of {cores} cores free ({source}), {busy_background} to other "
            "busy background engines"
        )
        if n > 1 and any(c.role == INTERACTIVE for c in claims):
            # Prompt batches are compute-bound and take the free cores; one-token decodes
            # synchronise the threads at every layer and collapse when anything else wants a
            # core (an answer at load 2: 45 tokens/s on 2 threads, 78 on 1).
            generation = 1
            reason += "; 1 for generation while an editor's engine lives"
    n = min(n, MAX_THREADS)
    generation = min(generation, n)
    return Budget(role, generation, n, n, n, nice, reason)


# -- claims ---------------------------------------------------------------------------------
def claims_dir() -> Path:
    """Where this machine's engines register (``$SWARM_LSP_INFERENCE_DIR`` overrides)."""
    override = os.environ.get("SWARM_LSP_INFERENCE_DIR")
    if override:
        return Path(override)
    return paths.user_cache_dir() / "inference"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def read_claims(folder: Path | None = None, *, exclude: str = "") -> list[Claim]:
    """Every live engine's claim except ``exclude``; claims of dead processes are removed."""
    folder = folder or claims_dir()
    found: list[Claim] = []
    try:
        entries = list(folder.glob("*.json"))
    except OSError:
        return found
    for path in entries:
        try:
            raw = json.loads(path.read_text())
            claim = Claim(
                key=str(raw["key"]),
                pid=int(raw["pid"]),
                role=str(raw["role"]),
                threads=max(1, int(raw["threads"])),
                active=bool(raw["active"]),
                yields=bool(raw.get("yields", False)),
            )
        except (OSError, ValueError, KeyError, TypeError):
            continue  # being replaced or not ours: skip it this time
        if not _alive(claim.pid):
            with contextlib.suppress(OSError):
                path.unlink()
            continue
        if claim.key != exclude:
            found.append(claim)
    return found


class Slot:
    """One engine's place in the budget: plan before a job, mark it busy while it runs.

    ``plan()`` reads the other claims and the load (a few small files: well under a
    millisecond); ``active()`` wraps a job so others see this engine busy.
    """

    def __init__(
        self,
        name: str,
        role: str,
        *,
        fixed: int = 0,
        folder: Path | None = None,
        yields: bool = False,
    ):
        if role not in ROLES:
            raise ValueError(f"unknown inference role {role!r}; expected one of {ROLES}")
        self.role = role
        self.fixed = fixed
        self.yields = yields and role == BACKGROUND
        self._checked_at = 0.0
        self.key = f"{os.getpid()}-{name}"
        self.folder = folder or claims_dir()
        self._lock = threading.Lock()
        self._file: BinaryIO | None = None  # the claim, kept open to rewrite in place
        self.budget = self.plan()
        self._write(active=False)

    @property
    def path(self) -> Path:
        return self.folder / f"{self.key}.json"

    def plan(self) -> Budget:
        """A fresh budget from the machine as it is now (does not publish it)."""
        previous = getattr(self, "budget", None)
        return plan(
            self.role,
            cores=usable_cores(),
            load=load_average(),
            others=read_claims(self.folder, exclude=self.key),
            own_threads=previous.threads if previous is not None else 0,
            fixed=self.fixed,
            busy=METER.busy_elsewhere(),
            pid=os.getpid(),
            running=running_elsewhere(),
            yields=self.yields,
        )

    def _write(self, *, active: bool) -> None:
        """Publish the claim: created once, then rewritten in place at a fixed size.

        Twice per job (busy, idle): a rename over the old file costs 0.3 to 2 ms on ext4 under
        load (it flushes the new file's data); writing the same number of bytes over the old
        ones costs microseconds. A reader that catches a write half done skips the claim once.
        """
        data = json.dumps(
            {
                "key": self.key,
                "pid": os.getpid(),
                "role": self.role,
                "threads": self.budget.threads,
                "active": active,
                "yields": self.yields,
            }
        ).encode()
        with self._lock:
            try:
                file = self._file
                if (
                    file is not None
                    and len(data) <= CLAIM_BYTES
                    and os.fstat(file.fileno()).st_nlink
                ):
                    os.pwrite(file.fileno(), data.ljust(CLAIM_BYTES), 0)
                    return
                self.folder.mkdir(parents=True, exist_ok=True)
                tmp = self.path.with_suffix(f".{threading.get_ident()}.tmp")
                tmp.write_bytes(data.ljust(CLAIM_BYTES))
                os.replace(tmp, self.path)
                if file is not None:
                    file.close()
                self._file = open(self.path, "r+b", buffering=0)  # noqa: SIM115 - kept open
            except OSError as err:  # a read-only cache must not stop inference
                log.debug("cannot write inference claim %s: %s", self.path, err)

    def refresh(self, *, active: bool) -> Budget:
        """Re-plan, publish the new budget, and return it."""
        self.budget = self.plan()
        self._write(active=active)
        return self.budget

    @contextlib.contextmanager
    def active(self) -> Iterator[Budget]:
        """Run a job: re-plan, mark this engine busy, and idle again afterwards."""
        budget = self.refresh(active=True)
        try:
            yield budget
        finally:
            self._write(active=False)

    def interactive_busy(self) -> bool:
        """An interactive engine (on any process of this machine) is running a job now."""
        return any(
            c.role == INTERACTIVE and c.active for c in read_claims(self.folder, exclude=self.key)
        )

    def yield_to_interactive(self, *, every: float = 0.02, longest: float = 2.0) -> float:
        """Between two decodes of a yielding background engine: wait while the editor's runs.

        Looks at most every ``every`` seconds (a few small files); waits at most ``longest``
        seconds at a time, so a stuck claim cannot starve background work. Returns the time
        spent waiting.
        """
        if not self.yields:
            return 0.0
        start = time.monotonic()
        if start - self._checked_at < every:
            return 0.0
        self._checked_at = start
        if not self.interactive_busy():
            return 0.0
        self._write(active=False)  # paused: no core of anyone's is taken by this engine now
        waited = 0.0
        try:
            while waited < longest:
                time.sleep(every)
                waited = time.monotonic() - start
                if not self.interactive_busy():
                    break
        finally:
            self._write(active=True)
        return waited

    def close(self) -> None:
        with self._lock:
            file, self._file = self._file, None
        if file is not None:
            file.close()
        with contextlib.suppress(OSError):
            self.path.unlink()


# -- applying a budget ----------------------------------------------------------------------
def apply_env_limits(budget: Budget) -> None:
    """Cap OpenMP/BLAS pools (read when those libraries load) and torch if it is loaded.

    Call before importing torch, numpy-backed BLAS or sentence-transformers; calling again
    later still sets torch's intra-op threads.
    """
    for var in BLAS_ENV_VARS:
        os.environ[var] = str(budget.blas_threads)
    torch = sys.modules.get("torch")
    if torch is not None:
        apply_torch(budget, torch)


def apply_torch(budget: Budget, torch: object | None = None) -> None:
    """``torch.set_num_threads`` (and one inter-op thread while torch still allows it)."""
    module = torch if torch is not None else sys.modules.get("torch")
    if module is None:
        return
    module.set_num_threads(budget.torch_threads)  # type: ignore[attr-defined]
    with contextlib.suppress(RuntimeError):  # only before torch's first parallel work
        module.set_num_interop_threads(1)  # type: ignore[attr-defined]


def lower_priority(nice: int) -> None:
    """Make the calling thread's niceness at least ``nice`` (idempotent; never raises priority).

    On Linux niceness belongs to a thread and threads inherit it from the thread that starts
    them, so calling this on the thread that runs llama.cpp (or at the start of a background
    process, before other threads exist) covers the threads the model starts.
    """
    if nice <= 0:
        return
    try:
        current = os.getpriority(os.PRIO_PROCESS, 0)
        if current < nice:
            os.setpriority(os.PRIO_PROCESS, 0, min(19, nice))
    except (AttributeError, OSError) as err:
        log.debug("cannot lower priority: %s", err)


def limit_process(name: str, role: str = BACKGROUND) -> Slot:
    """Set a whole process up for ``role`` inference before it imports torch or BLAS.

    Plans a budget, caps OpenMP/BLAS/torch threads, lowers the priority of a background
    process, and returns the registered :class:`Slot` (wrap jobs in ``slot.active()``).
    """
    slot = Slot(name, role)
    apply_env_limits(slot.budget)
    lower_priority(slot.budget.nice)
    return slot
