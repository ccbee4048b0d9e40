"""One research-index run in a fresh process, for bench/research.py (prints JSON).

Works against either pipeline on ``PYTHONPATH``: today's (Qdrant Edge, sparse first, int8 ONNX)
or an older checkout (Qdrant local mode, everything embedded before the first query). The
parent passes its clock (``--t0``) so imports count in "time until the first query".

    python bench/research_run.py --t0 $(date +%s.%N) --corpus DIR --questions FILE.json \
        [--prefix json/] [--ttft N] [--repeat 3]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import time
from pathlib import Path
from typing import Any


def _percentile(values: list[float], pct: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return 0.0
    index = min(len(ordered) - 1, max(0, round(pct / 100 * (len(ordered) - 1))))
    return ordered[index]


def _cpu_s() -> float:
    """CPU seconds this process used so far, all threads (load-independent work done)."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def symbol_matches(expected: str, got: str) -> bool:
    """The chunk is the expected symbol, or a part/member of it (``Cache`` ~ ``Cache.get``)."""
    if not expected:
        return True
    name = got.split(" (part ")[0]
    if "." in expected:
        return expected in name
    return expected in name.split(".")


def recall(index: Any, questions: list[list[str]], prefix: str, mode: str) -> dict[str, Any]:
    path_hits = symbol_hits = 0
    misses: list[str] = []
    file_misses: list[str] = []
    for question, path, symbol in questions:
        hits = index.search(question, 5, mode=mode)
        want = prefix + path
        path_ok = any(h.path == want for h in hits)
        symbol_ok = any(h.path == want and symbol_matches(symbol, h.symbol) for h in hits)
        path_hits += path_ok
        symbol_hits += symbol_ok
        if not symbol_ok:
            misses.append(
                f"{question!r}: want {want} `{symbol}`; got {hits[0].path if hits else '-'}"
            )
        if not path_ok:
            file_misses.append(
                f"{question!r}: want {want}; got "
                + ", ".join(f"{h.path} `{h.symbol}`" for h in hits)
            )
    n = len(questions)
    return {
        "file": path_hits / n,
        "symbol": symbol_hits / n,
        "misses": misses,
        "file_misses": file_misses,
    }


def latency(index: Any, questions: list[list[str]], repeat: int) -> dict[str, float]:
    times = []
    for _ in range(repeat):
        for question, _, _ in questions:
            t0 = time.perf_counter()
            index.search(question, 5)
            times.append((time.perf_counter() - t0) * 1000)
    return {"p50_ms": _percentile(times, 50), "p95_ms": _percentile(times, 95)}


def ttft(root: Path, questions: list[list[str]], count: int) -> dict[str, Any]:
    """First partial (sources) and first model token through the long-lived research role."""
    import asyncio

    from swarm_lsp.config import Settings
    from swarm_lsp.workers.base import TaskRequest
    from swarm_lsp.workers.research.role import ResearchRole

    class Recorder:
        def __init__(self) -> None:
            self.t0 = time.perf_counter()
            self.times: list[float] = []
            self.texts: list[str] = []

        async def partial(self, text: str, data: Any = None) -> None:
            self.times.append(time.perf_counter() - self.t0)
            self.texts.append(text)

        async def progress(self, message: str, percentage: int | None = None) -> None:
            pass

    async def run() -> dict[str, Any]:
        role = ResearchRole(Settings())
        rows = []
        for n, (question, _, _) in enumerate(questions[: count + 1]):
            rec = Recorder()
            task = TaskRequest(
                id=f"q{n}", type="research", payload={"root": str(root), "question": question}
            )
            result = await role.run(task, rec)
            tokens = max(0, len(rec.times) - 1)
            rows.append(
                {
                    "sources_ms": rec.times[0] * 1000 if rec.times else -1,
                    "first_token_ms": rec.times[1] * 1000 if len(rec.times) > 1 else -1,
                    "end_s": rec.times[-1] if rec.times else -1,
                    "pieces": tokens,
                    "answer_chars": len(result["answer"]),
                    # prompt_tokens, reused_tokens, prompt_ms, threads: the engine's account
                    "timings": result.get("timings", {}),
                }
            )
        role.close()
        return {"warmup": rows[0], "rows": rows[1:]}

    return asyncio.run(run())


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--t0", type=float, required=True)
    parser.add_argument("--corpus", type=Path, required=True)
    parser.add_argument("--questions", type=Path, action="append", default=[])
    parser.add_argument("--prefix", default="")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--ttft", type=int, default=0)
    parser.add_argument("--modes", nargs="*", default=["hybrid"])
    parser.add_argument("--embedder", default="", help="BACKEND:MAX_TOKENS[:PIECES] (new pipeline)")
    parser.add_argument(
        "--probe-int8", action="store_true", help="also time int8 question embeddings alone"
    )
    args = parser.parse_args()
    out: dict[str, Any] = {"load_start": os.getloadavg()[0]}

    from swarm_lsp.config import Settings
    from swarm_lsp.workers.research.index import WorkspaceIndex, close_local_clients

    out["imports_s"] = time.time() - args.t0
    if args.embedder:
        from swarm_lsp.workers.research import embedder

        backend, _, rest = args.embedder.partition(":")
        cap, _, pieces = rest.partition(":")
        embedder.configure(
            backend=backend, max_tokens=int(cap or embedder.MAX_TOKENS), pieces=pieces or None
        )
    sets = {
        q.stem.removeprefix("research_questions_"): json.loads(q.read_text())["questions"]
        for q in args.questions
    }
    questions = [q for qs in sets.values() for q in qs]
    probe = questions[0][0] if questions else "where is the main entry point"
    index = WorkspaceIndex(args.corpus, Settings())
    new = hasattr(index, "fill_dense")
    if new:
        stats = index.update(dense=False)
        out["sparse_s"] = time.time() - args.t0
        index.search(probe, 5)
        out["first_query_s"] = time.time() - args.t0
        from swarm_lsp.workers.research import embedder

        out["embedder"] = embedder.model_id()
        started = time.time()
        dense = index.fill_dense()
        index.optimize()
        out["dense_s"] = time.time() - args.t0
        out["dense_cpu_s"] = _cpu_s()
        out["chunks_per_s"] = dense / max(time.time() - started, 1e-9)
    else:
        started = time.time()
        stats = index.update()
        out["dense_s"] = time.time() - args.t0
        out["dense_cpu_s"] = _cpu_s()
        index.search(probe, 5)
        out["first_query_s"] = time.time() - args.t0
        out["chunks_per_s"] = stats.chunks / max(time.time() - started, 1e-9)
        out["embedder"] = "all-MiniLM-L6-v2 (sentence-transformers fp32, 256 tokens)"
    out["chunks"] = stats.chunks
    out["files"] = stats.files_seen
    out["points"] = index.point_count()
    out["recall"] = {
        name: {m: recall(index, qs, args.prefix, m) for m in args.modes}
        for name, qs in sets.items()
    }
    out["latency"] = latency(index, questions or [[probe, "", ""]], args.repeat)
    if args.probe_int8:
        from swarm_lsp.workers.research import embedder

        embedder.configure(backend="onnx-int8", max_tokens=embedder.MAX_TOKENS)
        embedder.embed_query(probe)
        times = []
        for question, _, _ in questions:
            t0 = time.perf_counter()
            embedder.embed_query(question)
            times.append((time.perf_counter() - t0) * 1000)
        out["int8_query_embed"] = {
            "p50_ms": _percentile(times, 50),
            "p95_ms": _percentile(times, 95),
        }
    if new:
        index.close()
    close_local_clients()
    if args.ttft and new:
        out["ttft"] = ttft(args.corpus, questions, args.ttft)
    out["max_rss_mib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    out["load_end"] = os.getloadavg()[0]
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
