"""Completion latency, measured the way an editor sees it.

Starts ``swarm-lsp serve`` over stdio (as an editor does) on a copy of a real package, then for
N cursor positions in a real file asks for an inline completion twice, side by side:

- cold: the cursor jumped to a new place (the prompt shares little with the previous one);
- warm: the cursor then moved one character (the prompt shares all but its last tokens, so
  llama.cpp reuses the KV cache of the previous prompt).

For each request it records the client's round trip and the server's own figures
(``swarm/debug/lastCompletion``): context build, prompt evaluation, generation. Server
overhead = round trip - (prompt evaluation + generation). Prints a Markdown table.

    .venv/bin/python bench/completion.py --n 30 [--file PATH] [--write bench/completion-results.md]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import random
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from lsprotocol import types
from pygls.lsp.client import LanguageClient

DEFAULT_PACKAGE = Path(json.__file__).resolve().parent  # the stdlib's json package
DEFAULT_FILE = "decoder.py"


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    index = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[index]


def _plain(value: Any) -> dict[str, Any]:
    """pygls hands custom results back as named tuples; make them dicts."""
    if isinstance(value, dict):
        return dict(value)
    return dict(value._asdict())


def cursor_positions(text: str, n: int, seed: int) -> list[tuple[int, int]]:
    """Ends of indented code lines long enough to be cut one character short."""
    lines = text.split("\n")
    candidates = [
        (i, len(line))
        for i, line in enumerate(lines)
        if line.startswith("    ") and len(line.strip()) > 12 and not line.strip().startswith("#")
    ]
    rng = random.Random(seed)
    rng.shuffle(candidates)
    return sorted(candidates[:n])


async def run(args: argparse.Namespace) -> dict[str, Any]:
    package = Path(args.package).resolve()
    with tempfile.TemporaryDirectory(prefix="swarm-bench-") as tmp:
        root = Path(tmp) / package.name
        shutil.copytree(package, root, ignore=shutil.ignore_patterns("__pycache__"))
        path = root / args.file
        text = path.read_text(encoding="utf-8")
        client = LanguageClient("swarm-bench", "0.1")
        await client.start_io(sys.executable, "-m", "swarm_lsp.cli", "serve")
        options = {
            "models": {
                "completionMaxTokens": args.max_tokens,
                "completionTimeoutMs": 60_000,
                "completionMaxLines": 4,
            },
            "swarm": {"autostart": False},
        }
        await client.initialize_async(
            types.InitializeParams(
                capabilities=types.ClientCapabilities(),
                root_uri=root.as_uri(),
                workspace_folders=[types.WorkspaceFolder(uri=root.as_uri(), name=root.name)],
                initialization_options=options,
            )
        )
        client.initialized(types.InitializedParams())
        uri = path.as_uri()
        client.text_document_did_open(
            types.DidOpenTextDocumentParams(
                text_document=types.TextDocumentItem(
                    uri=uri, language_id="python", version=1, text=text
                )
            )
        )

        async def ask(line: int, character: int) -> dict[str, Any]:
            params = types.InlineCompletionParams(
                text_document=types.TextDocumentIdentifier(uri=uri),
                position=types.Position(line, character),
                context=types.InlineCompletionContext(
                    trigger_kind=types.InlineCompletionTriggerKind.Automatic
                ),
            )
            start = time.perf_counter()
            await client.text_document_inline_completion_async(params)
            round_trip = (time.perf_counter() - start) * 1000
            stats = await client.protocol.send_request_async("swarm/debug/lastCompletion", None)
            data = _plain(stats) if stats else {}
            data["roundTripMs"] = round_trip
            data["modelMs"] = data.get("promptMs", 0) + data.get("generationMs", 0)
            data["overheadMs"] = round_trip - data["modelMs"]
            return data

        await ask(0, 0)  # load the model before timing anything
        positions = cursor_positions(text, args.n, args.seed)
        cold: list[dict[str, Any]] = []
        warm: list[dict[str, Any]] = []
        for line, col in positions:
            cold.append(await ask(line, col))
            warm.append(await ask(line, col - 1))  # the cursor moved one character
        try:
            await asyncio.wait_for(client.shutdown_async(None), 10)
            client.exit(None)
        finally:
            await client.stop()
    return {"cold": cold, "warm": warm, "file": f"{package.name}/{args.file}", "n": len(cold)}


def summarise(result: dict[str, Any]) -> str:
    rows = []
    keys = [
        ("contextMs", "context build"),
        ("promptMs", "prompt evaluation"),
        ("generationMs", "generation"),
        ("roundTripMs", "LSP round trip (client)"),
        ("overheadMs", "server overhead (round trip - model)"),
    ]
    for kind in ("cold", "warm"):
        for key, label in keys:
            values = [r[key] for r in result[kind] if key in r]
            rows.append(
                f"| {kind} | {label} | {statistics.median(values):.1f} | {pct(values, 95):.1f} |"
            )
    cold_rt = statistics.median(r["roundTripMs"] for r in result["cold"])
    warm_rt = statistics.median(r["roundTripMs"] for r in result["warm"])
    cold_prompt = statistics.median(r["promptMs"] for r in result["cold"])
    warm_prompt = statistics.median(r["promptMs"] for r in result["warm"])
    reused = statistics.median(
        r["reusedTokens"] / max(1, r["promptTokens"]) for r in result["warm"]
    )
    overhead_share = statistics.median(
        r["overheadMs"] / r["roundTripMs"] for r in result["warm"] + result["cold"]
    )
    lines = [
        f"File: `{result['file']}`, {result['n']} cursor positions, cold then warm at each.",
        "",
        "| cache | phase | median ms | p95 ms |",
        "|---|---|---|---|",
        *rows,
        "",
        f"- warm vs cold inline completion, median round trip: {cold_rt:.1f} → {warm_rt:.1f} ms "
        f"(**{cold_rt / warm_rt:.2f}x faster** warm)",
        f"- prompt evaluation median: cold {cold_prompt:.1f} ms, warm {warm_prompt:.1f} ms "
        f"({cold_prompt / max(warm_prompt, 1e-6):.1f}x); warm prompts reuse "
        f"{reused * 100:.0f}% of their tokens from the KV cache (median)",
        f"- server overhead, median share of the round trip: **{overhead_share * 100:.1f}%**",
    ]
    return "\n".join(lines)


def machine() -> str:
    cpu = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    return f"{platform.machine()}, {os.cpu_count()} cores, {cpu}; load average at start {load:.2f}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=30)
    parser.add_argument("--package", default=str(DEFAULT_PACKAGE))
    parser.add_argument("--file", default=DEFAULT_FILE)
    parser.add_argument("--max-tokens", type=int, default=16)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--write", default="", help="write the Markdown result to this file")
    args = parser.parse_args()
    header = machine()
    result = asyncio.run(run(args))
    table = summarise(result)
    command = "python bench/completion.py " + " ".join(sys.argv[1:])
    report = (
        f"## Completion latency\n\nCommand: `{command}`  \nMachine: {header}  \n"
        f"Date: {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}\n\n{table}\n"
    )
    print(report)
    if args.write:
        Path(args.write).write_text(report, encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
