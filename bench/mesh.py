"""Star vs mesh in network namespaces, side by side in one run (root only); mesh membership times.

Four hosts on a bridge (``tests/mesh/netmesh.py``), mTLS, echo tasks, both topologies running at
once and measured in turn (interleaved rounds, the order alternating):
- star: one coordinator on p1 (port 50061), one echo worker (capacity 2) on each of p1..p4,
  one client dialling p1;
- mesh: a ``swarm-lsp node --role echo --capacity 2`` on each of p1..p4 (each machine works for
  every peer, 2 tasks at once for all of them together), one client per peer, each submitting
  a quarter of the tasks to its peer.
Each client submits its tasks, then follows them all to their results; throughput is tasks over
the wall time from the first submit to the last result, latency each task's result time from
the first submit. Then, per round, a fifth peer joins (time until in every view, until it runs
a task for p1), has its cable cut (until out of every view), healed (until merged), and is
SIGKILLed (until out of every view, and out of p1's machines: no ghost).

Run:  sudo .venv/bin/python bench/mesh.py [--tasks 800] [--rounds 5]
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
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.mesh.netmesh import Mesh, MeshNetwork, machines, tls_env  # noqa: E402
from tests.multihost import netns  # noqa: E402
from tests.multihost.conftest import Agent  # noqa: E402

HOSTS = ("p1", "p2", "p3", "p4")
STAR_PORT = 50061


def spawn(mesh: Mesh, host: str, log: str, args: list[str], cert: str) -> subprocess.Popen[bytes]:
    command = ["ip", "netns", "exec", mesh.net.namespace(host), sys.executable, "-m", *args]
    with open(mesh.root / f"{log}.log", "ab") as out:
        proc = subprocess.Popen(
            command,
            cwd=mesh.root,
            env=tls_env(mesh.root / "certs", cert),
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=out,
        )
    mesh.procs[log] = proc
    return proc


def star_agent(mesh: Mesh, target: str) -> Agent:
    command = ["ip", "netns", "exec", mesh.net.namespace("cli"), sys.executable, "-m"]
    with open(mesh.root / "agent-star.log", "ab") as err:
        proc = subprocess.Popen(
            [*command, "tests.multihost.agent", target],
            cwd=mesh.root,
            env=tls_env(mesh.root / "certs", "client-cli"),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=err,
        )
    mesh.procs["agent-star"] = proc
    agent = Agent(proc)
    assert agent.answer(60).get("ready")
    return agent


def until(predicate: Callable[[], object], timeout: float, what: str) -> float:
    started = time.monotonic()
    while not predicate():
        if time.monotonic() - started > timeout:
            raise TimeoutError(what)
        time.sleep(0.02)
    return time.monotonic() - started


def measure(agents: list[Agent], tasks: int) -> tuple[float, list[float]]:
    """(tasks/s, each task's result time in ms from the first submit)."""
    share = tasks // len(agents)
    started = time.time()
    for agent in agents:
        agent.send(op="submit", type="echo", payloads=[{"text": f"t{i}"} for i in range(share)])
    ids = [agent.answer(120)["ids"] for agent in agents]
    for agent, mine in zip(agents, ids, strict=True):
        agent.send(op="wait", ids=mine, timeout=300)
    results = [r for agent in agents for r in agent.answer(400)["results"]]
    elapsed = time.time() - started
    failed = [r for r in results if r.get("client_error") or r.get("error_code")]
    assert not failed, failed[:3]
    return share * len(agents) / elapsed, [(r["at"] - started) * 1000 for r in results]


def p95(values: list[float]) -> float:
    return sorted(values)[max(0, round(0.95 * len(values)) - 1)]


def membership_round(mesh: Mesh, joiner: str, at_p1: Agent) -> dict[str, float]:
    figures: dict[str, float] = {}
    started = time.monotonic()
    mesh.start(joiner, mesh.root / "certs")
    until(
        lambda: all(joiner in mesh.view(h) for h in HOSTS) and set(HOSTS) <= mesh.view(joiner),
        60,
        "joiner not in every view",
    )
    figures["join: in every view (process start included)"] = time.monotonic() - started
    while at_p1.call(op="sequential", type="echo", payload={}, count=1)["workers"] != [joiner]:
        if time.monotonic() - started > 60:
            raise TimeoutError("the joiner never ran a task for p1")
    figures["join: first task run for p1 (process start included)"] = time.monotonic() - started
    mesh.net.link(joiner, up=False)
    figures["cable cut: out of every view"] = until(
        lambda: all(joiner not in mesh.view(h) for h in HOSTS), 10, "cut joiner still in a view"
    )
    mesh.net.link(joiner, up=True)
    figures["cable back: views merged"] = until(
        lambda: all(joiner in mesh.view(h) for h in HOSTS), 30, "views did not merge"
    )
    until(lambda: joiner in machines(at_p1), 30, "joiner not back at p1")
    for pid in netns._ip("netns", "pids", mesh.net.namespace(joiner)).split():
        os.kill(int(pid), signal.SIGKILL)
    killed = time.monotonic()
    figures["SIGKILL: out of every view"] = until(
        lambda: all(joiner not in mesh.view(h) for h in HOSTS), 10, "killed joiner in a view"
    )
    until(lambda: joiner not in machines(at_p1), 10, "a ghost machine at p1")
    figures["SIGKILL: out of p1's machines (no ghost)"] = time.monotonic() - killed
    return figures


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--tasks", type=int, default=800)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="swmesh-bench-"))
    joiners = [f"j{n}" for n in range(1, min(args.rounds, 3) + 1)]
    load_before = Path("/proc/loadavg").read_text().split()[:3]
    net = MeshNetwork("swmb", "10.217.0")
    with net:
        addresses = {h: net.add_host(h) for h in (*HOSTS, *joiners, "cli")}
        cli = [sys.executable, "-m", "swarm_lsp.cli", "certs", "--out", str(root / "certs")]
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        quiet = {"env": env, "check": True, "timeout": 120, "capture_output": True}
        hosts = [f"--host={addresses[h]}" for h in (*HOSTS, *joiners)]
        subprocess.run([*cli, *hosts], **quiet)  # type: ignore[call-overload]
        subprocess.run([*cli, "--role", "client", "--name", "cli"], **quiet)  # type: ignore[call-overload]
        roles: dict[str, tuple[str, ...]] = {h: ("echo",) for h in (*HOSTS, *joiners)}
        mesh = Mesh(net, root, roles, set(roles))
        try:
            target = f"{addresses['p1']}:{STAR_PORT}"
            star = ["swarm_lsp.cli", "coordinator", "--listen", target, "--no-local-fallback"]
            spawn(
                mesh,
                "p1",
                "star-coordinator",
                [*star, "--state-dir", str(root / "star")],
                addresses["p1"],
            )
            for host in HOSTS:
                worker = ["swarm_lsp.cli", "worker", "--coordinator", target, "--name", host]
                worker += ["--role", "echo", "--capacity", "2"]
                worker += ["--cache-dir", str(root / f"star-cache-{host}")]
                spawn(mesh, host, f"star-{host}", worker, addresses[host])
                mesh.start(host, root / "certs")
            topologies = {
                "star": [star_agent(mesh, target)],
                "mesh": [mesh.agent(h) for h in HOSTS],
            }
            for agents in topologies.values():
                for agent in agents:
                    until(lambda a=agent: len(machines(a)) >= 4, 120, "machines missing")  # type: ignore[misc]
                measure(agents, 80)  # warm up
            rates: dict[str, list[float]] = {"star": [], "mesh": []}
            latencies: dict[str, list[float]] = {"star": [], "mesh": []}
            for round_ in range(args.rounds):
                order = ("star", "mesh") if round_ % 2 == 0 else ("mesh", "star")
                for name in order:
                    rate, times = measure(topologies[name], args.tasks)
                    rates[name].append(rate)
                    latencies[name].extend(times)
            member: dict[str, list[float]] = {}
            for joiner in joiners:
                for what, seconds in membership_round(mesh, joiner, topologies["mesh"][0]).items():
                    member.setdefault(what, []).append(seconds)
        finally:
            mesh.stop_all()
    load_after = Path("/proc/loadavg").read_text().split()[:3]
    print(f"load average before {' '.join(load_before)}, after {' '.join(load_after)}")
    print("\n| topology | tasks/s median | p95 | per round | result time p50 ms | p95 ms |")
    print("|---|---|---|---|---|---|")
    for name, values in rates.items():
        times = latencies[name]
        print(
            f"| {name} | {statistics.median(values):.0f} | {p95(values):.0f} | "
            f"{', '.join(f'{v:.0f}' for v in values)} | {statistics.median(times):.0f} | "
            f"{p95(times):.0f} |"
        )
    ratio = statistics.median(rates["mesh"]) / statistics.median(rates["star"])
    print(f"\nmesh/star throughput (medians): {ratio:.2f}x ({args.tasks} tasks per round)")
    print("\n| event (a fifth peer) | median s | max s | per round |\n|---|---|---|---|")
    for what, values in member.items():
        shown = ", ".join(f"{v:.2f}" for v in values)
        print(f"| {what} | {statistics.median(values):.2f} | {max(values):.2f} | {shown} |")
    print(f"\nlogs in {root}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
