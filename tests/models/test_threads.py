"""The machine's inference budget: thread counts, claims between processes, env limits."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from swarm_lsp import threads
from swarm_lsp.threads import BACKGROUND, INTERACTIVE, Claim


def claim(key: str, role: str, n: int, active: bool) -> Claim:
    return Claim(key=key, pid=os.getpid(), role=role, threads=n, active=active)


def test_alone_on_a_quiet_machine_an_engine_takes_every_core() -> None:
    for role in threads.ROLES:
        budget = threads.plan(role, cores=4, load=0.0, others=[])
        assert (budget.n_threads, budget.n_threads_batch) == (4, 4)
        assert budget.torch_threads == budget.blas_threads == 4
    assert threads.plan(INTERACTIVE, cores=4, load=0.0, others=[]).nice == 0
    assert threads.plan(BACKGROUND, cores=4, load=0.0, others=[]).nice == threads.BACKGROUND_NICE


def test_two_cores_with_the_local_swarm_busy_never_oversubscribe() -> None:
    # The LSP server's completion engine and a swarm worker's model on a 2-core machine.
    background = threads.plan(
        BACKGROUND, cores=2, load=0.0, others=[claim("lsp-completion", INTERACTIVE, 2, False)]
    )
    assert background.threads == 1
    assert background.nice == threads.BACKGROUND_NICE
    interactive = threads.plan(
        INTERACTIVE, cores=2, load=1.0, others=[claim("worker", BACKGROUND, 1, True)]
    )
    assert interactive.threads == 1
    assert background.threads + interactive.threads <= 2


def test_interactive_engines_busy_at_once_share_the_cores() -> None:
    others = [claim("chat", INTERACTIVE, 4, True), claim("worker", BACKGROUND, 1, True)]
    budget = threads.plan(INTERACTIVE, cores=8, load=5.0, others=others)
    assert budget.threads == (8 - 1) // 2
    # Idle engines take nothing from the interactive one.
    idle = [claim("chat", INTERACTIVE, 4, False), claim("worker", BACKGROUND, 1, False)]
    assert threads.plan(INTERACTIVE, cores=8, load=0.0, others=idle).threads == 8


def test_background_engines_split_what_is_free_when_no_editor_runs() -> None:
    first = threads.plan(BACKGROUND, cores=2, load=0.0, others=[])
    second = threads.plan(
        BACKGROUND, cores=2, load=2.0, others=[claim("first", BACKGROUND, first.threads, True)]
    )
    # The first re-plans before its next job and sees the second.
    again = threads.plan(
        BACKGROUND,
        cores=2,
        load=3.0,
        others=[claim("second", BACKGROUND, second.threads, True)],
        own_threads=first.threads,
    )
    assert second.threads == 1
    assert again.threads + second.threads <= 2


def test_load_from_other_programs_takes_cores_away() -> None:
    assert threads.plan(INTERACTIVE, cores=2, load=3.8, others=[]).threads == 1
    assert threads.plan(INTERACTIVE, cores=8, load=3.0, others=[]).threads == 5
    # Our own threads are in the load average and are not someone else's load.
    assert threads.plan(INTERACTIVE, cores=4, load=4.0, others=[], own_threads=4).threads == 4


def test_fixed_setting_wins_and_threads_are_capped() -> None:
    assert threads.plan(INTERACTIVE, cores=2, load=9.0, others=[], fixed=3).threads == 3
    assert threads.plan(INTERACTIVE, cores=64, load=0.0, others=[]).threads == threads.MAX_THREADS
    with pytest.raises(ValueError, match="unknown inference role"):
        threads.plan("urgent", cores=2, load=0.0, others=[])


def test_slots_see_each_other_and_forget_dead_processes(tmp_path: Path) -> None:
    completion = threads.Slot("completion", INTERACTIVE, folder=tmp_path)
    worker = threads.Slot("refactor", BACKGROUND, folder=tmp_path)
    assert worker.refresh(active=False).threads == 1  # the editor's engine lives
    seen = {c.key: c for c in threads.read_claims(tmp_path, exclude=completion.key)}
    assert set(seen) == {worker.key}
    with worker.active():
        busy = threads.read_claims(tmp_path, exclude=completion.key)
        assert [c.active for c in busy] == [True]
    assert [c.active for c in threads.read_claims(tmp_path, exclude=completion.key)] == [False]

    # A claim left by a process that has exited is removed by the next reader.
    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        capture_output=True,
        text=True,
        check=True,
    )
    pid = int(dead.stdout)
    stale = tmp_path / f"{pid}-chat.json"
    stale.write_text(
        f'{{"key": "{pid}-chat", "pid": {pid}, "role": "background", "threads": 2, "active": true}}'
    )
    (tmp_path / "garbage.json").write_text("{not json")
    keys = {c.key for c in threads.read_claims(tmp_path)}
    assert keys == {completion.key, worker.key}
    assert not stale.exists()

    worker.close()
    completion.close()
    assert threads.read_claims(tmp_path) == []


def test_claims_live_in_the_user_cache_unless_overridden(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SWARM_LSP_CACHE", str(tmp_path / "cache"))
    assert threads.claims_dir() == tmp_path / "cache" / "inference"
    monkeypatch.setenv("SWARM_LSP_INFERENCE_DIR", str(tmp_path / "shared"))
    assert threads.claims_dir() == tmp_path / "shared"


def test_env_limits_cap_blas_and_torch(monkeypatch: pytest.MonkeyPatch) -> None:
    for var in threads.BLAS_ENV_VARS:
        monkeypatch.delenv(var, raising=False)
    budget = threads.plan(BACKGROUND, cores=2, load=0.0, others=[], fixed=1)
    torch = sys.modules.get("torch")
    before = torch.get_num_threads() if torch is not None else None
    try:
        threads.apply_env_limits(budget)
        assert all(os.environ[v] == "1" for v in threads.BLAS_ENV_VARS)
        if torch is not None:
            assert torch.get_num_threads() == 1
    finally:
        if torch is not None and before is not None:
            torch.set_num_threads(before)


def test_env_limits_reach_torch_imported_afterwards(tmp_path: Path) -> None:
    pytest.importorskip("torch")
    script = (
        "from swarm_lsp import threads\n"
        "slot = threads.limit_process('embedder')\n"
        "import os, torch\n"
        "print(torch.get_num_threads(), os.environ['OMP_NUM_THREADS'], slot.budget.threads,"
        " os.getpriority(os.PRIO_PROCESS, 0))\n"
    )
    env = {**os.environ, "SWARM_LSP_INFERENCE_DIR": str(tmp_path)}
    (tmp_path / "1-lsp.json").write_text(
        f'{{"key": "lsp", "pid": {os.getpid()}, "role": "interactive", "threads": 2, '
        '"active": false}'
    )
    out = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, env=env, check=True
    ).stdout.split()
    torch_threads, omp, planned, nice = (int(x) for x in out)
    assert torch_threads == omp == planned == 1  # an editor's engine lives: background keeps 1
    assert nice >= threads.BACKGROUND_NICE


def test_lower_priority_touches_only_the_calling_thread() -> None:
    seen: list[int] = []

    def work() -> None:
        threads.lower_priority(threads.BACKGROUND_NICE)
        threads.lower_priority(threads.BACKGROUND_NICE)  # idempotent
        seen.append(os.getpriority(os.PRIO_PROCESS, threading.get_native_id()))

    main_before = os.getpriority(os.PRIO_PROCESS, 0)
    worker = threading.Thread(target=work)
    worker.start()
    worker.join()
    assert seen == [max(main_before, threads.BACKGROUND_NICE)]
    assert os.getpriority(os.PRIO_PROCESS, 0) == main_before


def test_the_last_second_of_cpu_use_wins_over_the_minute_long_load_average() -> None:
    # Other work ended seconds ago: the load average still says 5, the cores are idle now.
    assert threads.plan(INTERACTIVE, cores=2, load=5.0, others=[], busy=0.3).threads == 2
    assert threads.plan(INTERACTIVE, cores=2, load=0.0, others=[], busy=1.9).threads == 1
    # Another process's busy engine is in ``busy`` and is accounted for by its claim.
    worker = Claim(key="w", pid=os.getpid() + 1, role=BACKGROUND, threads=1, active=True)
    assert threads.plan(INTERACTIVE, cores=4, load=0.0, others=[worker], busy=1.0).threads == 3


def test_a_burst_that_has_ended_leaves_its_cores_to_the_editor() -> None:
    # Another program ran on both cores in the last second (llama-server answering just
    # before, a compiler step) but nothing else is runnable now: the editor's engine takes both.
    assert threads.plan(INTERACTIVE, cores=2, load=0.0, others=[], busy=1.6, running=0).threads == 2
    # Still running: the core stays taken. And "running now" never adds load the second did
    # not see (a thread that happens to be runnable for an instant).
    assert threads.plan(INTERACTIVE, cores=2, load=0.0, others=[], busy=1.6, running=2).threads == 1
    assert threads.plan(INTERACTIVE, cores=2, load=0.0, others=[], busy=0.1, running=3).threads == 2
    now = threads.running_elsewhere()
    assert now is None or now >= 0


def test_a_claim_is_rewritten_in_place_at_a_fixed_size(tmp_path: Path) -> None:
    slot = threads.Slot("completion", INTERACTIVE, folder=tmp_path)
    inode = slot.path.stat().st_ino
    with slot.active():
        (seen,) = threads.read_claims(tmp_path)
        assert seen.active and seen.key == slot.key
        assert slot.path.stat().st_size == threads.CLAIM_BYTES
    assert slot.path.stat().st_ino == inode  # written over, not replaced
    assert [c.active for c in threads.read_claims(tmp_path)] == [False]
    slot.path.unlink()  # someone cleaned the folder: the next write puts the claim back
    with slot.active():
        assert [c.active for c in threads.read_claims(tmp_path)] == [True]
    slot.close()
    assert threads.read_claims(tmp_path) == []


def test_a_background_engine_that_yields_leaves_the_editor_every_core() -> None:
    worker = Claim(key="w", pid=os.getpid(), role=BACKGROUND, threads=1, active=True, yields=True)
    assert threads.plan(INTERACTIVE, cores=2, load=0.0, others=[worker]).threads == 2
    # One that cannot pause (an embedder inside torch) keeps its core.
    embedder = claim("embedder", BACKGROUND, 1, True)
    assert threads.plan(INTERACTIVE, cores=2, load=0.0, others=[worker, embedder]).threads == 1


def test_an_answer_takes_the_free_cores_while_the_editor_engine_is_idle(tmp_path: Path) -> None:
    # The real claims of a machine with an editor's completion engine, a research answer's
    # model (pauses between decodes) and an embedder (cannot pause inside torch).
    editor = threads.Slot("completion", INTERACTIVE, folder=tmp_path)
    answer = threads.Slot("answer", BACKGROUND, folder=tmp_path, yields=True)
    embedder = threads.Slot("embedder", BACKGROUND, folder=tmp_path)

    def on_quiet_two_cores(slot: threads.Slot) -> threads.Budget:
        others = threads.read_claims(tmp_path, exclude=slot.key)
        return threads.plan(slot.role, cores=2, load=0.0, others=others, yields=slot.yields)

    # The editor's engine lives but is idle: the answer's prompt takes both cores (its one-token
    # decodes keep one thread: they collapse as soon as anything else wants a core); the
    # embedder keeps one.
    budget = on_quiet_two_cores(answer)
    assert (budget.n_threads_batch, budget.n_threads) == (2, 1)
    assert on_quiet_two_cores(embedder).threads == 1
    alone = threads.plan(BACKGROUND, cores=2, load=0.0, others=[], yields=True)
    assert (alone.n_threads_batch, alone.n_threads) == (2, 2)  # no editor: unchanged
    assert "interactive" not in answer.refresh(active=False).reason  # the machine as it is
    with answer.active():
        # A completion that starts meanwhile still takes every free core (the answer pauses
        # between its decodes, test below), and the answer re-plans to one thread.
        with editor.active():
            assert on_quiet_two_cores(editor).threads == 2
            assert on_quiet_two_cores(answer).threads == 1
            assert answer.refresh(active=True).threads == 1
            assert "running a job" in answer.budget.reason
        assert on_quiet_two_cores(answer).threads == 2  # the completion is done
    for slot in (editor, answer, embedder):
        slot.close()


def test_a_yielding_background_slot_waits_while_the_editor_runs_a_job(tmp_path: Path) -> None:
    editor = threads.Slot("completion", INTERACTIVE, folder=tmp_path)
    worker = threads.Slot("ask", BACKGROUND, folder=tmp_path, yields=True)
    assert worker.yield_to_interactive(every=0.0) == 0.0  # nobody to wait for
    started, release = threading.Event(), threading.Event()

    def job() -> None:
        with editor.active():
            started.set()
            release.wait(5)

    runner = threading.Thread(target=job)
    runner.start()
    started.wait(5)
    time.sleep(0.02)  # past the throttle of the first look (at most one look per 10 ms)
    paused = threading.Event()

    def watch() -> None:
        # While it waits its claim says so (it takes no core, no planner counts it); then
        # the editor's job ends.
        for _ in range(1000):
            if any(c.key == worker.key and not c.active for c in threads.read_claims(tmp_path)):
                paused.set()
                break
            time.sleep(0.005)
        release.set()

    # The worker is inside a job of its own (its claim says busy), as between two decodes; the
    # watcher must not see an idle claim before the pause (a new slot's claim is idle: the
    # watcher used to release the editor before the worker looked, so it never waited).
    with worker.active():
        watcher = threading.Thread(target=watch)
        watcher.start()
        waited = worker.yield_to_interactive(every=0.01)
        runner.join()
        watcher.join()
        assert paused.is_set()
        assert 0.0 < waited < 2.0
        assert [c.active for c in threads.read_claims(tmp_path) if c.key == worker.key] == [True]
    # A slot that does not yield never waits.
    other = threads.Slot("embedder", BACKGROUND, folder=tmp_path)
    with editor.active():
        assert other.yield_to_interactive(every=0.0) == 0.0
    for slot in (editor, worker, other):
        slot.close()


def test_cpu_meter_counts_other_processes_not_this_one() -> None:
    meter = threads.CpuMeter()
    if meter.busy_elsewhere() is None and not Path("/proc/stat").exists():
        pytest.skip("no /proc/stat on this system")
    before = os.times()
    child = subprocess.run(
        [
            sys.executable,
            "-c",
            "import time\nend = time.process_time() + 0.4\nwhile time.process_time() < end: pass",
        ],
        check=True,
    )
    assert child.returncode == 0
    after = os.times()
    child_cpu = (after.children_user + after.children_system) - (
        before.children_user + before.children_system
    )
    busy = meter.busy_elsewhere()
    assert busy is not None
    # The child's CPU time is someone else's; /proc/stat counts it (to a clock tick).
    assert busy * (after.elapsed - before.elapsed) >= child_cpu - 0.05
