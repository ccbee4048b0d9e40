"""Embedding throughput by back-end, token cap, batch size and threads (chunks/s only).

Embeds the same real chunks (the first N of the ``json``/``email``/``asyncio`` stdlib corpus,
as the index would see them) with each setting in turn, alternating the settings over several
rounds so load changes hit them alike; reports the median chunks/s per setting. Recall does not
depend on batch size or threads; bench/research_run.py measures it per back-end and cap.

    .venv/bin/python bench/research_embed.py [--chunks 512] [--rounds 3] [--quick]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

STDLIB = Path(os.__file__).parent


def corpus_texts(limit: int) -> list[str]:
    from swarm_lsp.workers.research import chunking
    from swarm_lsp.workers.research.index import dense_text

    texts: list[str] = []
    for package in ("json", "email", "asyncio"):
        for path in sorted((STDLIB / package).rglob("*.py")):
            rel = path.relative_to(STDLIB).as_posix()
            for chunk in chunking.chunk_file(rel, path.read_text()):
                payload = {"path": chunk.path, "symbol": chunk.symbol, "text": chunk.text}
                texts.append(dense_text(payload))
                if len(texts) >= limit:
                    return texts
    return texts


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--chunks", type=int, default=512)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="only the first four settings")
    args = parser.parse_args()
    from swarm_lsp.workers.research import embedder

    texts = corpus_texts(args.chunks)
    # (back-end, token cap, batch, threads, order, pieces): "files" is the first session's
    # fill (padded batches of 32 chunks taken file by file), "sorted" the whole group shortest
    # first; batch 1 is each chunk alone, unpadded, one runner per thread; pieces "words"
    # drops punctuation-only word pieces before the cap (the default since this session).
    settings = [
        ("onnx-int8", 192, 1, 2, "sorted", "all"),  # the second session's default
        ("onnx-int8", 192, 1, 2, "sorted", "words"),
        ("onnx-int8", 128, 1, 2, "sorted", "all"),
        ("onnx-int8", 128, 1, 2, "sorted", "words"),  # the default
        ("onnx-int8", 128, 1, 1, "sorted", "words"),
        ("onnx-int8", 96, 1, 2, "sorted", "words"),
        ("onnx-int8", 256, 32, 1, "files", "all"),  # the first session's fill
        ("torch", 256, 32, 2, "sorted", "all"),  # the old back-end
    ]
    if args.quick:
        settings = settings[:4]
    speeds: dict[tuple[str, int, int, int, str, str], list[float]] = {s: [] for s in settings}
    per_cpu: dict[tuple[str, int, int, int, str, str], list[float]] = {s: [] for s in settings}
    loads = []
    for _ in range(args.rounds):
        for setting in settings:
            backend, cap, batch, threads, order, pieces = setting
            embedder.configure(backend=backend, max_tokens=cap, pieces=pieces)
            model = embedder.load()
            model.encode(texts[:8], batch, threads)  # warm: sessions, pools
            loads.append(os.getloadavg()[0])
            groups = (
                [texts[n : n + 32] for n in range(0, len(texts), 32)]
                if order == "files"
                else [sorted(texts, key=len)]
            )
            t0, cpu0 = time.perf_counter(), time.process_time()
            step = max(batch, 32)  # batch 1: one call runs 32 texts side by side
            for group in groups:
                for first in range(0, len(group), step):
                    model.encode(group[first : first + step], batch, threads)
            elapsed = time.perf_counter() - t0
            speeds[setting].append(len(texts) / elapsed)
            per_cpu[setting].append(len(texts) / (time.process_time() - cpu0))
    print(
        f"{len(texts)} real chunks, {args.rounds} alternating rounds, load "
        f"{min(loads):.1f}-{max(loads):.1f}\n"
    )
    base = statistics.median(speeds[settings[0]])
    print(
        "| back-end | token cap | pieces | batch | threads | order | chunks/s (median) "
        "| vs first row | chunks per CPU-second |"
    )
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for setting, values in speeds.items():
        backend, cap, batch, threads, order, pieces = setting
        median = statistics.median(values)
        print(
            f"| {backend} | {cap} | {pieces} | {batch} | {threads} | {order} | {median:.1f} "
            f"({min(values):.1f}-{max(values):.1f}) | {median / base:.2f}x "
            f"| {statistics.median(per_cpu[setting]):.1f} |"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
