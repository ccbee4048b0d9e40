"""First answer token through the long-lived research role: variants side by side, one run.

One complete index over the research benchmark's corpus (``json`` + ``email`` + ``asyncio``
and ``_pytest``, 3,807 chunks; bench/research.py), one ``ResearchRole`` per variant (what the
research worker runs: index open, embedder and chat model loaded), and the labelled questions
asked of every variant in turn (a warm-up question first), so load changes hit them alike.

Per variant: time to the sources and to the first answer token (medians, p95), and the
load-independent figures the role reports — prompt tokens, tokens evaluated per ask (the rest
reused from the last prompt), prompt tokens/s and llama.cpp's thread count. Answer quality,
the same checks for every variant: the answer cites a source as ``[path:line]`` in its text;
a cited or named file is the labelled one; the labelled symbol is named.

Variants are ``name`` or ``name:key=value,...`` with keys ``model`` (a GGUF path; ``packaged``:
the wheel's Q4_1 file; empty: the default), ``threads`` (llama.cpp threads, 0: the machine's
budget), ``lines`` / ``chars`` / ``sources`` (the prompt's sources, answer.py's settings),
``chunk`` (the tokens per decode of a background engine's prompt, llama_engine.py's).

    flock /work/bench.lock .venv/bin/python bench/research_ttft.py --questions 12 \
        --variant q4_1:model=packaged --variant default
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
STDLIB = Path(os.__file__).parent
CITED = re.compile(r"\[([^\]\s]+):(\d+)\]")


def corpus(work: Path) -> Path:
    import _pytest

    dest = work / "mixed"
    if not dest.exists():
        for source in [*(STDLIB / p for p in ("json", "email", "asyncio"))]:
            shutil.copytree(
                source, dest / source.name, ignore=shutil.ignore_patterns("__pycache__", "test")
            )
        shutil.copytree(
            Path(_pytest.__file__).parent,
            dest / "_pytest",
            ignore=shutil.ignore_patterns("__pycache__"),
        )
    return dest


def questions(count: int) -> list[list[str]]:
    """``count`` + 1 questions spread over both labelled sets (the first is the warm-up)."""
    found: list[list[str]] = []
    for name in ("stdlib", "pytest"):
        data = json.loads((HERE / f"data/research_questions_{name}.json").read_text())
        found += data["questions"]
    step = max(1, len(found) // (count + 1))
    return found[::step][: count + 1]


def parse_variant(spec: str) -> tuple[str, dict[str, str]]:
    name, _, rest = spec.partition(":")
    options = dict(item.split("=", 1) for item in rest.split(",") if item)
    return name, options


def quality(answer_text: str, path: str, symbol: str) -> dict[str, bool]:
    body = answer_text.split("\n\nSources:")[0]
    cited = [m[1] for m in CITED.finditer(body)]
    name = symbol.split(".")[-1]
    return {
        "cites": bool(cited),
        "file": path in cited or path in body,
        "symbol": bool(name) and name in body,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--questions", type=int, default=12)
    parser.add_argument("--variant", action="append", default=[])
    parser.add_argument("--work", type=Path, help="keep the corpus and index here between runs")
    parser.add_argument("--json", type=Path, default=Path("/tmp/research-ttft.json"))
    parser.add_argument(
        "--idle-editor",
        action="store_true",
        help="register an idle editor (interactive) engine on this machine's budget for the "
        "run, as the LSP server's loaded completion model does",
    )
    parser.add_argument(
        "--sparse-only",
        action="store_true",
        help="no dense fill (minutes of CPU): for the load-independent figures alone "
        "(tokens per ask, answer checks), the hits being the keyword side's",
    )
    args = parser.parse_args()
    variants = [parse_variant(v) for v in (args.variant or ["default"])]
    work = args.work or Path(tempfile.mkdtemp(prefix="swarm-bench-ttft-"))
    work.mkdir(parents=True, exist_ok=True)
    os.environ.setdefault("SWARM_LSP_MODELS", str(Path.home() / ".cache/swarm-lsp/models"))
    os.environ["SWARM_LSP_CACHE"] = str(work / "cache")
    root = corpus(work)
    load_start = os.getloadavg()
    if args.idle_editor:
        from swarm_lsp import threads

        editor = threads.Slot("bench-editor-completion", threads.INTERACTIVE)
        print(f"idle editor engine: {editor.path}", file=sys.stderr)

    from swarm_lsp.config import Settings
    from swarm_lsp.models import defaults, llama_engine
    from swarm_lsp.models.llama_engine import LlamaEngine
    from swarm_lsp.workers.base import TaskRequest
    from swarm_lsp.workers.research import answer
    from swarm_lsp.workers.research.index import WorkspaceIndex, close_local_clients
    from swarm_lsp.workers.research.role import ResearchRole

    index = WorkspaceIndex(root, Settings())
    index.update(dense=False)
    filled = time.time()
    if not args.sparse_only:
        index.fill_dense()
        index.optimize()
    fill_s = time.time() - filled
    print(f"index: {index.point_count()} points, fill {fill_s:.0f} s", file=sys.stderr)
    index.close()
    close_local_clients()

    shape = {"lines": "SOURCE_LINES", "chars": "SOURCE_CHARS", "sources": "PROMPT_SOURCES"}
    base_shape = {key: getattr(answer, attr) for key, attr in shape.items()}
    base_chunk = getattr(llama_engine, "PAUSABLE_BATCH", 0)
    # One role (one open index) for all; each variant answers with an engine of its own (its
    # own context: no variant finds another's prompt there), loaded as the worker loads it.
    role = ResearchRole(Settings(), background_fill=not args.sparse_only)
    engines = []
    for _, options in variants:
        model = options.get("model", "")
        if model == "packaged":
            model = str(defaults.packaged_chat_model_path())
        path = defaults.resolve(model, "chat")
        engines.append(LlamaEngine(path, n_ctx=4096, n_threads=int(options.get("threads", 0))))

    class Recorder:
        def __init__(self) -> None:
            self.t0 = time.perf_counter()
            self.times: list[float] = []

        async def partial(self, text: str, data: Any = None) -> None:
            self.times.append((time.perf_counter() - self.t0) * 1000)

        async def progress(self, message: str, percentage: int | None = None) -> None:
            pass

    async def ask(n: int, engine: Any, options: dict[str, str], q: str) -> dict[str, Any]:
        role._model = engine
        for key, attr in shape.items():
            setattr(answer, attr, int(options.get(key, base_shape[key])))
        if hasattr(llama_engine, "PAUSABLE_BATCH"):
            llama_engine.PAUSABLE_BATCH = int(options.get("chunk", base_chunk))
        rec = Recorder()
        task = TaskRequest(id=f"q{n}", type="research", payload={"root": str(root), "question": q})
        result = await role.run(task, rec)
        return {
            "sources_ms": rec.times[0],
            "first_token_ms": rec.times[1] if len(rec.times) > 1 else -1.0,
            "end_ms": rec.times[-1],
            # Pieces streamed per second after the first token (any tree's role reports this).
            "stream_tok_s": (len(rec.times) - 2) / ((rec.times[-1] - rec.times[1]) / 1000)
            if len(rec.times) > 3 and rec.times[-1] > rec.times[1]
            else 0.0,
            "timings": result.get("timings", {}),
            "answer": result["answer"],
        }

    async def run() -> dict[str, list[dict[str, Any]]]:
        rows: dict[str, list[dict[str, Any]]] = {name: [] for name, _ in variants}
        for n, (q, path, symbol) in enumerate(questions(args.questions)):
            for (name, options), engine in zip(variants, engines, strict=True):
                row = await ask(n, engine, options, q)
                row |= {"question": q, "warmup": n == 0, "load": os.getloadavg()[0]}
                row["quality"] = quality(row["answer"], path, symbol)
                rows[name].append(row)
                print(
                    f"{name} q{n}: first token {row['first_token_ms']:.0f} ms "
                    f"{json.dumps(row['timings'])}",
                    file=sys.stderr,
                )
        role.close()
        for engine in engines:
            engine.close()
        return rows

    rows = asyncio.run(run())
    load_end = os.getloadavg()
    args.json.write_text(json.dumps({"load": [load_start, load_end], "rows": rows}, indent=1))
    report(rows, load_start, load_end)
    if args.work is None:
        shutil.rmtree(work, ignore_errors=True)
    return 0


def _p(values: list[float], pct: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(pct / 100 * (len(ordered) - 1)))]


def report(rows: dict[str, list[dict[str, Any]]], start: Any, end: Any) -> None:
    print(f"load (1/5/15 min) {start[0]:.2f} / {start[1]:.2f} / {start[2]:.2f} at start, ")
    print(f"{end[0]:.2f} / {end[1]:.2f} / {end[2]:.2f} at the end\n")
    print(
        "| variant | questions | sources p50 | first token p50 / p95 (min-max) | prompt tokens "
        "| evaluated per ask | prompt tok/s | answer tok/s | threads | cites [path:line] "
        "| right file | names symbol |"
    )
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for name, all_rows in rows.items():
        asked = [r for r in all_rows if not r["warmup"]]
        firsts = [r["first_token_ms"] for r in asked]
        timings = [r["timings"] for r in asked]
        evaluated = [
            t["prompt_tokens"] - t["reused_tokens"] for t in timings if "reused_tokens" in t
        ]
        rates = [
            (t["prompt_tokens"] - t["reused_tokens"]) / (t["prompt_ms"] / 1000)
            for t in timings
            if t.get("prompt_ms")
        ]
        answer_rates = [r["stream_tok_s"] for r in asked if r.get("stream_tok_s")]
        threads = sorted({t.get("threads", 0) for t in timings})
        med = statistics.median
        n = len(asked)
        good = {k: sum(r["quality"][k] for r in asked) for k in ("cites", "file", "symbol")}
        print(
            f"| {name} | {n} | {med(r['sources_ms'] for r in asked):.0f} ms "
            f"| **{med(firsts):.0f}** / {_p(firsts, 95):.0f} ms "
            f"({min(firsts):.0f}-{max(firsts):.0f}) "
            f"| {med(t.get('prompt_tokens', 0) for t in timings):.0f} "
            f"| {med(evaluated) if evaluated else 0:.0f} "
            f"| {med(rates) if rates else 0:.0f} "
            f"| {med(answer_rates) if answer_rates else 0:.0f} | {','.join(map(str, threads))} "
            f"| {good['cites']}/{n} | {good['file']}/{n} | {good['symbol']}/{n} |"
        )


if __name__ == "__main__":
    sys.exit(main())
