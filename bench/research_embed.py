"""Embedding throughput by back-end, token cap, batch size and threads (chunks/s only).

Embeds the same real chunks (the first N of the ``json``/``email``/``asyncio`` stdlib corpus,
as the index would see them) with each setting in turn, alternating the settings over several
rounds so load changes hit them alike; reports the median chunks/s per setting. Recall does not
depend on batch size or threads; bench/research_run.py measures it per back-end and cap.

    .venv/bin/python bench/research_embed.py [--chunks 512] [--rounds 3]
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
    args = parser.parse_args()
    from swarm_lsp.workers.research import embedder

    texts = corpus_texts(args.chunks)
    # (back-end, token cap, batch, threads, order): "files" is the fill before this change
    # (padded batches of 32 chunks taken file by file), "sorted" the whole group shortest
    # first; batch 1 is each chunk alone, unpadded, one runner per thread.
    settings = [
        ("onnx-int8", 256, 32, 1, "files"),
        ("onnx-int8", 256, 32, 1, "sorted"),
        ("onnx-int8", 256, 32, 2, "files"),
        ("onnx-int8", 256, 32, 2, "sorted"),
        ("onnx-int8", 256, 64, 2, "sorted"),
        ("onnx-int8", 256, 1, 1, "sorted"),
        ("onnx-int8", 256, 1, 2, "sorted"),
        ("onnx-int8", 192, 1, 2, "sorted"),
        ("onnx-int8", 128, 1, 2, "sorted"),
        ("static", 256, 32, 1, "sorted"),
        ("torch", 256, 32, 2, "sorted"),
    ]
    speeds: dict[tuple[str, int, int, int, str], list[float]] = {s: [] for s in settings}
    loads = []
    for _ in range(args.rounds):
        for backend, cap, batch, threads, order in settings:
            embedder.configure(backend=backend, max_tokens=cap)
            model = embedder.load()
            model.encode(texts[:8], batch, threads)  # warm: sessions, pools
            loads.append(os.getloadavg()[0])
            groups = (
                [texts[n : n + 32] for n in range(0, len(texts), 32)]
                if order == "files"
                else [sorted(texts, key=len)]
            )
            t0 = time.perf_counter()
            step = max(batch, embedder.STEP)  # batch 1: one call runs STEP texts side by side
            for group in groups:
                for first in range(0, len(group), step):
                    model.encode(group[first : first + step], batch, threads)
            elapsed = time.perf_counter() - t0
            speeds[(backend, cap, batch, threads, order)].append(len(texts) / elapsed)
    print(
        f"{len(texts)} real chunks, {args.rounds} alternating rounds, load "
        f"{min(loads):.1f}-{max(loads):.1f}\n"
    )
    base = statistics.median(speeds[settings[0]])
    print("| back-end | token cap | batch | threads | order | chunks/s (median) | vs first row |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for (backend, cap, batch, threads, order), values in speeds.items():
        median = statistics.median(values)
        print(
            f"| {backend} | {cap} | {batch} | {threads} | {order} | {median:.1f} "
            f"({min(values):.1f}-{max(values):.1f}) | {median / base:.2f}x |"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
