"""``swarm-lsp dashboard`` in Debian's chromium while a real swarm runs tasks.

Real processes on loopback: a coordinator, three workers (echo, sleep, sleep), the dashboard
CLI, and chromium driven by playwright-core (``page.mjs``; the VS Code test's install, nothing
downloaded). Screenshots land in the test's folder and are listed at the end.
"""

from __future__ import annotations

import asyncio
import http.client
import json
import os
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from swarm_lsp.config import Settings
from swarm_lsp.dispatch.client import DispatchClient
from tests.dispatch.conftest import Swarm, wait_for_workers
from tests.editors.vscode import CHROMIUM, NODE24, PLAYWRIGHT

PAGE_SCRIPT = Path(__file__).with_name("page.mjs")
MACHINES = {"alpha": ["echo"], "beta": ["sleep"], "gamma": ["sleep"]}


def _need_browser() -> None:
    gaps = [str(p) for p in (CHROMIUM, NODE24, PLAYWRIGHT) if not p.exists()]
    if gaps:
        message = "dashboard test needs " + ", ".join(gaps) + " (scripts/install_vscode_e2e.sh)"
        if os.environ.get("CI"):
            pytest.fail(message)  # CI runs `make install` first: a gap there is a bug
        pytest.skip(message)


class Page:
    """The chromium driver: one JSON command per line each way."""

    def __init__(self, proc: asyncio.subprocess.Process) -> None:
        self.proc = proc

    async def do(self, cmd: str, timeout: float = 30, **args: Any) -> Any:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write((json.dumps({"cmd": cmd, **args}) + "\n").encode())
        await self.proc.stdin.drain()
        line = await asyncio.wait_for(self.proc.stdout.readline(), timeout)
        assert line, f"the page driver ended during {cmd}"
        answer = json.loads(line)
        assert answer["ok"], f"{cmd}: {answer['error']}"
        return answer["value"]


@pytest.fixture
async def swarm(swarm_factory: Callable[..., Swarm]) -> AsyncIterator[tuple[Swarm, DispatchClient]]:
    swarm = swarm_factory()
    address = swarm.start_coordinator()
    for name, roles in MACHINES.items():
        swarm.start_worker(name, roles)
    client = await DispatchClient.connect(Settings(), address)
    await wait_for_workers(client, len(MACHINES))
    try:
        yield swarm, client
    finally:
        await client.close()


def _start_dashboard(swarm: Swarm) -> tuple[subprocess.Popen[str], str]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "swarm_lsp.cli", "dashboard", "--coordinator", swarm.address,
         "--listen", "127.0.0.1:0"],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, cwd=swarm.root,
    )  # fmt: skip
    swarm.procs.append(proc)  # type: ignore[arg-type]
    assert proc.stdout is not None
    line = proc.stdout.readline()
    assert "#token=" in line, line
    return proc, line.split(": ", 1)[1].strip()


async def _check_doors(url: str) -> None:
    """Outsiders get nothing: a foreign Host or Origin gets 403, a wrong token a closed door."""
    base, token = url.split("/#token=")
    authority = base.removeprefix("http://")
    ws = f"ws://{authority}/ws"
    conn = http.client.HTTPConnection(authority, timeout=10)
    conn.request("GET", "/", headers={"Host": "rebound.example:80"})
    assert conn.getresponse().status == 403
    conn.close()
    with pytest.raises(InvalidStatus) as refused:
        async with connect(ws, origin="http://evil.example"):  # type: ignore[arg-type]
            pass
    assert refused.value.response.status_code == 403
    async with connect(ws, origin=base) as bad:  # type: ignore[arg-type]
        await bad.send(json.dumps({"token": "x" * len(token)}))
        assert json.loads(await bad.recv())["type"] == "refused"
        with pytest.raises(ConnectionClosed):
            await bad.recv()
    async with connect(ws) as good:  # no Origin: not a browser; the token is what counts
        await good.send(json.dumps({"token": token}))
        assert json.loads(await good.recv())["type"] == "history"


@pytest.mark.slow
async def test_dashboard_in_chromium(swarm: tuple[Swarm, DispatchClient], tmp_path: Path) -> None:
    _need_browser()
    the_swarm, client = swarm
    _, url = _start_dashboard(the_swarm)
    await _check_doors(url)
    shots = tmp_path / "screenshots"
    shots.mkdir()
    driver = await asyncio.create_subprocess_exec(
        str(NODE24), str(PAGE_SCRIPT),
        stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
        env={**os.environ, "PLAYWRIGHT_CORE": str(PLAYWRIGHT), "SCREENSHOTS": str(shots)},
    )  # fmt: skip
    page = Page(driver)
    try:
        opened = await page.do("open", url=url)
        origin = url.split("/#")[0]
        assert all(r.startswith(origin) for r in opened["requests"]), opened["requests"]
        assert sorted(await page.do("machines", names=list(MACHINES))) == sorted(MACHINES)
        await page.do("shot", name="01-machines")

        # A task appears (with an ETA), then finishes; its progress carries the ETA too.
        receipt = await client.submit("sleep", {"seconds": 1.5}, priority="immediate")
        running = await page.do("task", table="tasks", id=receipt.task_id, state="RUNNING")
        assert "~" in running["text"] or "overdue" in running["text"], running  # an ETA
        await page.do("shot", name="02-task-running")
        results = [r async for r in client.results(receipt.task_id)]
        assert any(r.kind == "progress" and r.eta_ms for r in results), results
        await page.do("task", table="recent", id=receipt.task_id, state="SUCCEEDED")

        # Three long tasks on two sleep workers: two run, one waits with an ETA counting its
        # wait; one is cancelled from the page and its worker stops it.
        marks = tmp_path / "marks"
        marks.mkdir()
        longs = [
            await client.submit("sleep", {"seconds": 60, "marker_dir": str(marks)})
            for _ in range(3)
        ]
        waiting = await page.do("task", table="tasks", id=longs[2].task_id, state="QUEUED")
        assert "~" in waiting["text"], waiting
        (queued,) = [t for t in (await client.status()).active if t.state == "QUEUED"]
        assert queued.task_id == longs[2].task_id and queued.eta_ms > 0, queued
        await page.do("task", table="tasks", id=longs[0].task_id, state="RUNNING")
        await page.do("shot", name="03-before-cancel")
        await page.do("cancel", id=longs[0].task_id)
        await page.do("task", table="recent", id=longs[0].task_id, state="CANCELLED")
        deadline = time.monotonic() + 10
        while not (marks / f"cancelled-{longs[0].task_id}").exists():
            assert time.monotonic() < deadline, "the worker did not stop the cancelled task"
            await asyncio.sleep(0.05)
        for other in longs[1:]:
            await client.cancel(other.task_id)

        # A failure shows with its reason.
        late = await client.submit(
            "sleep", {"seconds": 5}, deadline_ms=int(time.time() * 1000) + 300
        )
        failed = await page.do("task", table="failures", id=late.task_id, state="DEADLINE_EXCEEDED")
        assert "deadline" in failed["text"].lower(), failed
        await page.do("shot", name="04-failure")

        # A killed worker turns red within 3 s.
        killed_at = time.monotonic()
        the_swarm.kill(the_swarm.workers["gamma"])
        red = await page.do("red", name="gamma", timeoutMs=3000)
        assert time.monotonic() - killed_at < 3.0, red
        assert red["color"] == "rgb(207, 34, 46)", red
        print(f"\nkilled worker red on the page after {time.monotonic() - killed_at:.2f}s")
        await page.do("shot", name="05-worker-killed")
        assert set(await page.do("plot")) == {"done", "queue"}
        assert await page.do("errors") == []
        await page.do("quit")
    finally:
        if driver.returncode is None:
            driver.kill()
        await driver.wait()
        print("\ndashboard screenshots:", *sorted(shots.glob("*.png")), sep="\n  ")
