"""Embedding throughput by back-end, token cap, batch size and threads (chunks/s only).

Embeds the same real chunks (the first N of the ``json``/``email``/``asyncio`` stdlib corpus,
as the index would see them) with each setting in turn, alternating the settings over several
rounds so load changes hit them alike; reports the median chunks/s per setting. Recall does not
depend on batch size or threads; bench/research_run.py measures it per back-end and cap.

    .venv/bin/python bench/research_embed.py [--chunks 256] [--rounds 3]
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
    parser.add_argument("--chunks", type=int, default=256)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    from swarm_lsp.workers.research import embedder

    texts = corpus_texts(args.chunks)
    settings = [
        ("onnx-int8", 128, 32, 1),
        ("onnx-int8", 128, 32, 2),
        ("onnx-int8", 128, 8, 1),
        ("onnx-int8", 128, 64, 1),
        ("onnx-int8", 64, 32, 1),
        ("onnx-int8", 256, 32, 1),
        ("static", 256, 32, 1),
        ("torch", 128, 32, 1),
        ("torch", 256, 32, 2),
    ]
    speeds: dict[tuple[str, int, int, int], list[float]] = {s: [] for s in settings}
    loads = []
    for _ in range(args.rounds):
        for backend, cap, batch, threads in settings:
            embedder.configure(backend=backend, max_tokens=cap)
            model = embedder.load()
            model.encode(texts[:8], batch, threads)  # warm: sessions, pools
            loads.append(os.getloadavg()[0])
            t0 = time.perf_counter()
            model.encode(texts, batch, threads)
            speeds[(backend, cap, batch, threads)].append(len(texts) / (time.perf_counter() - t0))
    print(
        f"{len(texts)} real chunks, {args.rounds} alternating rounds, load "
        f"{min(loads):.1f}-{max(loads):.1f}\n"
    )
    print("| back-end | token cap | batch | threads | chunks/s (median) |")
    print("| --- | --- | --- | --- | --- |")
    for (backend, cap, batch, threads), values in speeds.items():
        print(f"| {backend} | {cap} | {batch} | {threads} | {statistics.median(values):.1f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
