"""Research role benchmark: indexing throughput, query latency and recall@5.

Indexes a copy of real code (by default the ``json``, ``email`` and ``asyncio`` packages of the
Python standard library) with the real parts: tree-sitter chunking, the packaged
all-MiniLM-L6-v2 on CPU, Qdrant local mode on disk. Then runs a labelled set of questions
(each names the file, and the symbol, that answers it) in hybrid, dense-only and sparse-only
mode and reports recall@5 and query latency p50/p95.

    .venv/bin/python bench/research.py [--stdlib DIR] [--packages json email asyncio]

Prints a Markdown report on stdout.
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import sys
import tempfile
import time
from pathlib import Path

# (question, expected path, expected symbol or "" for any chunk of that file)
QUESTIONS: list[tuple[str, str, str]] = [
    (
        "How does json turn a JSON document string into Python objects?",
        "json/decoder.py",
        "JSONDecoder",
    ),
    (
        "Which exception reports malformed JSON with line and column numbers?",
        "json/decoder.py",
        "JSONDecodeError",
    ),
    (
        "How are control characters and quotes escaped when encoding a str to JSON?",
        "json/encoder.py",
        "encode_basestring",
    ),
    ("Pretty-print JSON with indentation from the command line", "json/tool.py", "main"),
    (
        "How does asyncio.gather run several awaitables concurrently and collect results?",
        "asyncio/tasks.py",
        "gather",
    ),
    ("Where is the timeout of wait_for implemented?", "asyncio/tasks.py", "wait_for"),
    (
        "How does an asyncio Queue make put wait while the queue is full?",
        "asyncio/queues.py",
        "Queue",
    ),
    (
        "How is a semaphore that limits concurrent access implemented in asyncio?",
        "asyncio/locks.py",
        "Semaphore",
    ),
    (
        "How does the event loop schedule a callback to run after a delay?",
        "asyncio/base_events.py",
        "call_later",
    ),
    (
        "Create a subprocess with asyncio and read its output",
        "asyncio/subprocess.py",
        "create_subprocess_exec",
    ),
    ("What does asyncio.run do to start and close an event loop?", "asyncio/runners.py", ""),
    ("How does a StreamReader read one line up to the newline?", "asyncio/streams.py", "readline"),
    (
        "How does a Future store its result and run its done callbacks?",
        "asyncio/futures.py",
        "Future",
    ),
    (
        "How does a TaskGroup cancel the other tasks when one task fails?",
        "asyncio/taskgroups.py",
        "TaskGroup",
    ),
    ("Parse an email message from bytes", "email/parser.py", "BytesParser"),
    (
        "How are non-ASCII header values encoded as RFC 2047 encoded words?",
        "email/header.py",
        "Header",
    ),
    (
        "Split an address like 'Name <user@example.com>' into name and address",
        "email/utils.py",
        "parseaddr",
    ),
    ("Format a date for an email Date header", "email/utils.py", "formatdate"),
    (
        "Build a MIME multipart message with several parts",
        "email/mime/multipart.py",
        "MIMEMultipart",
    ),
    (
        "How is quoted-printable encoding applied to email bodies?",
        "email/quoprimime.py",
        "body_encode",
    ),
    ("Decode a base64 encoded email body", "email/base64mime.py", "decode"),
    ("How does the feed parser accept data incrementally?", "email/feedparser.py", "FeedParser"),
]


def _percentile(values: list[float], pct: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(pct / 100 * (len(ordered) - 1))))
    return ordered[index]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    default_stdlib = Path(os.__file__).parent
    parser.add_argument("--stdlib", type=Path, default=default_stdlib)
    parser.add_argument("--packages", nargs="+", default=["json", "email", "asyncio"])
    parser.add_argument("--top-k", type=int, default=5)
    parser.add_argument("--repeat", type=int, default=3, help="query passes for latency")
    args = parser.parse_args()

    load_before = os.getloadavg()[0]
    work = Path(tempfile.mkdtemp(prefix="swarm-bench-research-"))
    os.environ["SWARM_LSP_CACHE"] = str(work / "cache")
    from swarm_lsp.config import Settings
    from swarm_lsp.workers.research import embedder
    from swarm_lsp.workers.research.index import WorkspaceIndex, close_local_clients

    corpus = work / "corpus"
    for name in args.packages:
        shutil.copytree(
            args.stdlib / name, corpus / name, ignore=shutil.ignore_patterns("__pycache__")
        )
    lines = sum(len(p.read_text(errors="replace").splitlines()) for p in corpus.rglob("*.py"))

    start = time.perf_counter()
    embedder.load()
    load_s = time.perf_counter() - start

    index = WorkspaceIndex(corpus, Settings())
    stats = index.update(rebuild=True)
    again = index.update()

    # Incremental: touch one file and index again.
    victim = corpus / args.packages[0] / "__init__.py"
    victim.write_text(victim.read_text() + "\n\ndef bench_marker():\n    return 1\n")
    one = index.update()

    embed_ms: list[float] = []
    for question, _, _ in QUESTIONS:
        t0 = time.perf_counter()
        embedder.embed([question])
        embed_ms.append((time.perf_counter() - t0) * 1000)

    results: dict[str, dict[str, float]] = {}
    misses: list[str] = []
    for mode in ("hybrid", "dense", "sparse"):
        latencies: list[float] = []
        path_hits = symbol_hits = 0
        for question, path, symbol in QUESTIONS:
            hits = []
            for _ in range(args.repeat):
                t0 = time.perf_counter()
                hits = index.search(question, args.top_k, mode=mode)
                latencies.append((time.perf_counter() - t0) * 1000)
            path_ok = any(hit.path == path for hit in hits)
            symbol_ok = any(
                hit.path == path and (not symbol or symbol in hit.symbol) for hit in hits
            )
            path_hits += path_ok
            symbol_hits += symbol_ok
            if mode == "hybrid" and not symbol_ok:
                got = ", ".join(f"{h.path}:{h.symbol}" for h in hits[:3])
                misses.append(f"- {question!r}: expected {path} `{symbol}`; got {got}")
        results[mode] = {
            "path_recall": path_hits / len(QUESTIONS),
            "symbol_recall": symbol_hits / len(QUESTIONS),
            "p50": _percentile(latencies, 50),
            "p95": _percentile(latencies, 95),
        }
    close_local_clients()
    shutil.rmtree(work, ignore_errors=True)

    print(
        f"### Research index: {' + '.join(args.packages)} "
        f"from the Python {platform.python_version()} stdlib\n"
    )
    print(
        f"- machine: {platform.machine()}, {os.cpu_count()} cores, load average "
        f"{load_before:.1f} before / {os.getloadavg()[0]:.1f} after (shared machine)"
    )
    print(f"- corpus: {stats.files_seen} files, {lines} lines of Python, {stats.chunks} chunks")
    print(f"- embedder load: {load_s:.1f} s (all-MiniLM-L6-v2, CPU, {os.cpu_count()} cores)")
    print(
        f"- full index: {stats.seconds:.1f} s = **{stats.chunks / stats.seconds:.1f} chunks/s** "
        f"({stats.files_seen / stats.seconds:.1f} files/s), Qdrant local mode, "
        f"{stats.points} points"
    )
    print(
        f"- re-index, nothing changed: {again.seconds * 1000:.0f} ms "
        f"({again.files_unchanged} files hashed)"
    )
    print(
        f"- re-index, one file changed: {one.seconds:.2f} s "
        f"({one.files_indexed} file, {one.chunks} chunks)"
    )
    print(
        f"\n{len(QUESTIONS)} labelled questions, top-{args.top_k}, "
        f"{args.repeat} passes for latency:\n"
    )
    print("| mode | recall@5 (file) | recall@5 (file + symbol) | query p50 | query p95 |")
    print("| --- | --- | --- | --- | --- |")
    for mode, row in results.items():
        print(
            f"| {mode} | {row['path_recall']:.2f} | {row['symbol_recall']:.2f} | "
            f"{row['p50']:.1f} ms | {row['p95']:.1f} ms |"
        )
    print(
        f"\nOf which embedding the question alone: p50 {_percentile(embed_ms, 50):.1f} ms, "
        f"p95 {_percentile(embed_ms, 95):.1f} ms; the rest is Qdrant local mode (exact search "
        "in Python) and payload transfer."
    )
    if misses:
        print("\nHybrid misses (file + symbol):\n")
        print("\n".join(misses))
    return 0


if __name__ == "__main__":
    sys.exit(main())
