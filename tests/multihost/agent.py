"""A swarm client in its own network namespace, driven by the test over stdin/stdout.

One JSON object per line each way. Requests: ``{"op": "status"}``, ``{"op": "submit",
"type", "payloads", "priority"}`` (answers the task ids), ``{"op": "wait", "ids",
"timeout"}`` (follows every task at once; answers each one's final result or the error the
client saw), ``{"op": "sequential", "type", "payload", "priority", "count"}`` (one task at a
time; answers the worker of each), ``{"op": "task_status", "id"}``. Errors answer
``{"error": ..., "code": ...}``.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from typing import Any

from swarm_lsp.config import Settings
from swarm_lsp.dispatch.client import DispatchClient
from swarm_lsp.dispatch.server_main import load_settings
from swarm_lsp.errors import DispatchError


async def _final(client: DispatchClient, task_id: str, timeout: float) -> dict[str, Any]:
    progress: list[str] = []
    try:
        async with asyncio.timeout(timeout):
            async for result in client.results(task_id):
                if result.final:
                    return {
                        "id": task_id,
                        "kind": result.kind,
                        "state": result.state,
                        "worker": result.worker,
                        "text": result.text,
                        "error_code": result.error_code,
                        "attempt": result.attempt,
                        "progress": progress,
                        "at": time.time(),  # when the final result arrived (benchmarks)
                    }
                progress.append(result.text)
    except (DispatchError, TimeoutError) as err:
        return {"id": task_id, "client_error": f"{type(err).__name__}: {err}", "progress": progress}
    return {"id": task_id, "client_error": "no final result", "progress": progress}


async def _handle(client: DispatchClient, request: dict[str, Any]) -> Any:
    op = request["op"]
    if op == "status":
        status = await client.status()
        return {
            "machines": [
                {
                    "name": m.name,
                    "running": m.running,
                    "completed": m.completed,
                    "service_ms": m.service_ms,
                    "rtt_ms": m.rtt_ms,
                    "peer": m.peer,
                }
                for m in status.machines
            ],
            "counts": status.counts,
            "queue_depth": status.queue_depth,
        }
    if op == "submit":
        ids = []
        for payload in request["payloads"]:
            receipt = await client.submit(
                request["type"], payload, priority=request.get("priority", "background")
            )
            ids.append(receipt.task_id)
        return {"ids": ids}
    if op == "wait":
        timeout = float(request.get("timeout", 60))
        results = await asyncio.gather(*(_final(client, i, timeout) for i in request["ids"]))
        return {"results": list(results)}
    if op == "sequential":
        workers = []
        for _ in range(int(request["count"])):
            receipt = await client.submit(
                request["type"], request["payload"], priority=request.get("priority", "immediate")
            )
            final = await _final(client, receipt.task_id, 30)
            workers.append(final.get("worker") or final.get("client_error"))
        return {"workers": workers}
    if op == "task_status":
        info = await client.task_status(request["id"])
        return {"state": info.state, "worker": info.worker}
    raise ValueError(f"unknown op {op!r}")


async def main() -> None:
    settings: Settings = load_settings()
    target = sys.argv[1]
    client = await DispatchClient.connect(settings, target, timeout=30)
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    print(json.dumps({"ready": True, "at": time.time()}), flush=True)
    try:
        while line := await reader.readline():
            request = json.loads(line)
            try:
                answer = await _handle(client, request)
            except DispatchError as err:
                answer = {"error": str(err), "code": getattr(err, "code", "")}
            print(json.dumps(answer), flush=True)
    finally:
        await client.close()


if __name__ == "__main__":
    asyncio.run(main())
