"""Star vs mesh throughput in network namespaces, side by side in one run (root only).

Four hosts on a bridge (namespaces from tests/mesh), mTLS, echo tasks:
- star: one coordinator on p1, one echo worker (capacity 2) on each of p1..p4, one client
  dialling p1;
- mesh: a ``swarm-lsp node --role echo --capacity 2`` on each of p1..p4 (so each machine works
  for every peer), one client per peer, each submitting a quarter of the tasks to its peer.
Each client submits its tasks, then follows them all to their results; the figure is tasks
over the wall time from the first submit to the last result.

Run:  sudo .venv/bin/python bench/mesh.py [--tasks 800]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.mesh.netmesh import MeshNetwork  # noqa: E402
from tests.multihost.conftest import Agent  # noqa: E402

HOSTS = ("p1", "p2", "p3", "p4")


class Run:
    def __init__(self, net: MeshNetwork, root: Path) -> None:
        self.net, self.root = net, root
        self.procs: list[subprocess.Popen[bytes]] = []

    def env(self, cert: str) -> dict[str, str]:
        certs = self.root / "certs"
        return {
            **os.environ,
            "PYTHONPATH": str(ROOT),
            "SWARM_LSP_SWARM__TLS_CA": str(certs / "ca.pem"),
            "SWARM_LSP_SWARM__TLS_CERT": str(certs / f"{cert}.pem"),
            "SWARM_LSP_SWARM__TLS_KEY": str(certs / f"{cert}.key"),
        }

    def spawn(self, host: str, log: str, args: list[str], cert: str, pipe: bool = False) -> Agent:
        command = ["ip", "netns", "exec", self.net.namespace(host), sys.executable, "-m", *args]
        with open(self.root / f"{log}.log", "ab") as out:
            proc = subprocess.Popen(
                command,
                cwd=self.root,
                env=self.env(cert),
                stdin=subprocess.PIPE if pipe else subprocess.DEVNULL,
                stdout=subprocess.PIPE if pipe else out,
                stderr=out,
            )
        self.procs.append(proc)
        return Agent(proc)

    def agent(self, target: str) -> Agent:
        agent = self.spawn(
            "cli", f"agent-{target}", ["tests.multihost.agent", target], "client-cli", True
        )
        assert agent.answer(60).get("ready")
        return agent

    def stop(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                proc.kill()
        for proc in self.procs:
            proc.wait(timeout=10)
        self.procs.clear()


def wait_machines(agent: Agent, count: int) -> None:
    deadline = time.monotonic() + 120
    while len(agent.call(op="status")["machines"]) < count:
        assert time.monotonic() < deadline, "workers did not register"
        time.sleep(0.2)


def measure(agents: list[Agent], tasks: int) -> float:
    share = tasks // len(agents)
    started = time.monotonic()
    for agent in agents:
        agent.send(op="submit", type="echo", payloads=[{"text": f"t{i}"} for i in range(share)])
    ids = [agent.answer(120)["ids"] for agent in agents]
    for agent, mine in zip(agents, ids, strict=True):
        agent.send(op="wait", ids=mine, timeout=300)
    results = [r for agent in agents for r in agent.answer(400)["results"]]
    elapsed = time.monotonic() - started
    failed = [r for r in results if r.get("client_error") or r.get("error_code")]
    assert not failed, failed[:3]
    return share * len(agents) / elapsed


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--tasks", type=int, default=800)
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="swmesh-bench-"))
    with MeshNetwork("swmesh", "10.215.0") as net:
        addresses = {h: net.add_host(h) for h in (*HOSTS, "cli")}
        cli = [sys.executable, "-m", "swarm_lsp.cli", "certs", "--out", str(root / "certs")]
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        quiet = {"env": env, "check": True, "timeout": 120, "capture_output": True}
        subprocess.run([*cli, *(f"--host={addresses[h]}" for h in HOSTS)], **quiet)  # type: ignore[call-overload]
        subprocess.run([*cli, "--role", "client", "--name", "cli"], **quiet)  # type: ignore[call-overload]
        run = Run(net, root)
        figures: dict[str, float] = {}
        try:
            target = f"{addresses['p1']}:50061"
            run.spawn(
                "p1",
                "star-coordinator",
                [
                    "swarm_lsp.cli",
                    "coordinator",
                    "--listen",
                    target,
                    "--state-dir",
                    str(root / "star"),
                    "--no-local-fallback",
                ],
                addresses["p1"],
            )
            for host in HOSTS:
                run.spawn(
                    host,
                    f"star-{host}",
                    [
                        "swarm_lsp.cli",
                        "worker",
                        "--coordinator",
                        target,
                        "--name",
                        host,
                        "--role",
                        "echo",
                        "--capacity",
                        "2",
                        "--cache-dir",
                        str(root / f"star-cache-{host}"),
                    ],
                    addresses[host],
                )
            agent = run.agent(target)
            wait_machines(agent, 4)
            measure([agent], 40)  # warm up
            figures["star"] = measure([agent], args.tasks)
            run.stop()
            for host in HOSTS:
                run.spawn(
                    host,
                    f"mesh-{host}",
                    [
                        "swarm_lsp.cli",
                        "node",
                        "--listen",
                        f"{addresses[host]}:50051",
                        "--name",
                        host,
                        "--role",
                        "echo",
                        "--capacity",
                        "2",
                        "--no-local-fallback",
                        "--state-dir",
                        str(root / f"mesh-{host}"),
                    ],
                    addresses[host],
                )
            agents = [run.agent(f"{addresses[h]}:50051") for h in HOSTS]
            for agent in agents:
                wait_machines(agent, 4)
            measure(agents, 40)
            figures["mesh"] = measure(agents, args.tasks)
        finally:
            run.stop()
    load = os.getloadavg()
    print("| topology | tasks | tasks/s |\n|---|---|---|")
    for name, tps in figures.items():
        print(f"| {name} (4 machines, echo, capacity 2 each) | {args.tasks} | {tps:.0f} |")
    print(f"load average {load[0]:.1f} {load[1]:.1f} {load[2]:.1f}; logs in {root}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
