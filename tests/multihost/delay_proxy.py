"""A TCP proxy that delays every chunk by a fixed time in each direction (asyncio).

This kernel has no netem, so a worker "behind a 50 ms link" dials this proxy, which runs in
the worker's network namespace and forwards to the coordinator. Order is kept per direction;
each chunk is sent ``delay`` seconds after it was read (so throughput is not capped, latency
is added). Usage: ``python -m tests.multihost.delay_proxy LISTEN_HOST:PORT TARGET_HOST:PORT
SECONDS``; prints ``ready`` once listening.
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
import time


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, delay: float) -> None:
    queue: asyncio.Queue[tuple[float, bytes]] = asyncio.Queue()

    async def send() -> None:
        while True:
            due, chunk = await queue.get()
            if (wait := due - time.monotonic()) > 0:
                await asyncio.sleep(wait)
            if not chunk:
                with contextlib.suppress(OSError):
                    writer.write_eof()
                return
            writer.write(chunk)
            await writer.drain()

    sender = asyncio.create_task(send())
    try:
        while True:
            chunk = await reader.read(65536)
            queue.put_nowait((time.monotonic() + delay, chunk))
            if not chunk:
                break
        await sender
    except (OSError, asyncio.IncompleteReadError):
        sender.cancel()
    finally:
        writer.close()


async def main() -> None:
    listen, target, delay = sys.argv[1], sys.argv[2], float(sys.argv[3])
    t_host, t_port = target.rsplit(":", 1)

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection(t_host, int(t_port))
        except OSError:
            writer.close()
            return
        await asyncio.gather(
            _pipe(reader, up_writer, delay), _pipe(up_reader, writer, delay), return_exceptions=True
        )

    host, port = listen.rsplit(":", 1)
    server = await asyncio.start_server(handle, host, int(port))
    print("ready", flush=True)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    asyncio.run(main())
