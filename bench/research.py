"""Research benchmark: today's pipeline side by side with an older one, in one run.

Each run is a fresh process (bench/research_run.py) on a fresh cache, so imports and model
loading count. The corpus is a copy of real code, over 3,000 chunks: ``json`` + ``email`` +
``asyncio`` from the Python standard library (labelled set 1, 22 questions) and the installed
``_pytest`` package (labelled set 2, 50 questions, symbol-level), in one index so each set has
the other codebase as distractors. A third set (55 questions over the installed ``click`` and
``jinja2``, written after the pipeline's choices were made) checks recall once per pipeline on
a codebase neither was tuned on. The old and the new pipeline run alternately (``--pairs``),
with the load average recorded next to every figure. A larger corpus (stdlib packages and
modules plus networkx, over 20,000 chunks) measures the new pipeline's query latency there.

    git worktree add /tmp/research-old <old commit>
    .venv/bin/python bench/research.py --old /tmp/research-old [--big-packages ...]

Prints a Markdown report on stdout and writes the raw figures to --json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
STDLIB = Path(os.__file__).parent
BIG_PACKAGES = [
    "asyncio", "email", "json", "http", "urllib", "logging", "unittest", "concurrent",
    "multiprocessing", "xml", "importlib", "sqlite3", "ctypes", "collections", "tomllib",
    "zoneinfo", "wsgiref", "xmlrpc", "dbm", "html", "encodings", "pydoc_data", "lib2to3",
    "idlelib", "tkinter", "distutils", "ensurepip", "venv", "curses",
]  # fmt: skip


def _copy(dest: Path, sources: list[Path]) -> Path:
    for source in sources:
        if source.is_dir():
            shutil.copytree(
                source,
                dest / source.name,
                ignore=shutil.ignore_patterns("__pycache__", "test", "tests", "idle_test"),
            )
        elif source.exists():
            dest.mkdir(parents=True, exist_ok=True)
            shutil.copy(source, dest / source.name)
    return dest


def run(
    pythonpath: Path, corpus: Path, questions: Path | None, work: Path, extra: list[str]
) -> dict[str, Any]:
    cache = Path(tempfile.mkdtemp(prefix="cache-", dir=work))
    env = {
        **os.environ,
        "PYTHONPATH": str(pythonpath),
        "SWARM_LSP_CACHE": str(cache),
        # The int8 model is made once at set-up; both runs read models from the same place.
        "SWARM_LSP_MODELS": os.environ.get(
            "SWARM_LSP_MODELS", str(Path.home() / ".cache/swarm-lsp/models")
        ),
        "PYTHONWARNINGS": "ignore",
    }
    args = [sys.executable, str(HERE / "research_run.py"), "--corpus", str(corpus)]
    if questions is not None:
        args += ["--questions", str(questions)]
    args += extra
    uptime = os.getloadavg()
    proc = subprocess.run(
        [*args, "--t0", f"{time.time():.6f}"],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    shutil.rmtree(cache, ignore_errors=True)
    lines = [line for line in proc.stdout.splitlines() if line.startswith("{")]
    if proc.returncode != 0 or not lines:
        raise SystemExit(f"run failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
    result: dict[str, Any] = json.loads(lines[-1])
    result["uptime"] = [round(x, 2) for x in uptime]
    return result


def fmt(row: dict[str, Any], key: str, scale: float = 1.0, digits: int = 1) -> str:
    value = row.get(key)
    return "-" if value is None else f"{value * scale:.{digits}f}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--old", type=Path, help="a checkout of the old pipeline")
    parser.add_argument("--pairs", type=int, default=1, help="old/new pairs per corpus")
    parser.add_argument("--big-packages", nargs="*", default=BIG_PACKAGES)
    parser.add_argument("--ttft", type=int, default=5, help="questions for first-token latency")
    parser.add_argument("--json", type=Path, default=Path("/tmp/research-bench.json"))
    parser.add_argument("--skip-big", action="store_true")
    parser.add_argument(
        "--skip-heldout", action="store_true", help="skip the third (click + jinja2) set"
    )
    parser.add_argument(
        "--big-embedder",
        default="",
        help="BACKEND:CAP for the big corpus (static fills 20,000 chunks in minutes on a busy "
        "machine; the int8 question embedding is then timed apart)",
    )
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="swarm-bench-research-"))
    import _pytest

    # One corpus of both labelled codebases: more than 3,000 chunks, and each set's questions
    # have the other codebase as distractors.
    corpus = _copy(
        work / "mixed",
        [*(STDLIB / p for p in ("json", "email", "asyncio")), Path(_pytest.__file__).parent],
    )
    sets = ["--questions", str(HERE / "data/research_questions_stdlib.json")]
    sets += ["--questions", str(HERE / "data/research_questions_pytest.json")]
    results: dict[str, Any] = {"machine": f"{platform.machine()}, {os.cpu_count()} cores"}
    modes = ["--modes", "hybrid", "dense", "sparse"]
    rows = []
    for _ in range(args.pairs):  # old and new alternate, so both see the same kind of load
        if args.old is not None:
            old = run(args.old, corpus, None, work, [*sets, *modes])
            old["pipeline"] = "old"
            rows.append(old)
            print(f"old: {json.dumps(old)[:400]}", file=sys.stderr)
            args.json.write_text(json.dumps(results | {"mixed": rows}, indent=1))
        new = run(REPO, corpus, None, work, [*sets, *modes, "--ttft", str(args.ttft)])
        new["pipeline"] = "new"
        rows.append(new)
        print(f"new: {json.dumps(new)[:400]}", file=sys.stderr)
        args.json.write_text(json.dumps(results | {"mixed": rows}, indent=1))
    results["mixed"] = rows
    if not args.skip_heldout:
        # The third labelled set, over a codebase neither pipeline was tuned on: once each.
        import click
        import jinja2

        heldout = _copy(
            work / "heldout", [Path(click.__file__).parent, Path(jinja2.__file__).parent]
        )
        held = ["--questions", str(HERE / "data/research_questions_click_jinja2.json"), *modes]
        results["heldout"] = []
        for pipeline, tree in (("old", args.old), ("new", REPO)):
            if tree is not None:
                row = run(tree, heldout, None, work, held) | {"pipeline": pipeline}
                results["heldout"].append(row)
                print(f"held-out {pipeline}: {json.dumps(row)[:300]}", file=sys.stderr)
    if not args.skip_big:
        import networkx  # a big pure-Python package to pass 20,000 chunks

        sources = [STDLIB / p for p in args.big_packages] + sorted(STDLIB.glob("*.py"))
        big = _copy(work / "big", [*sources, Path(networkx.__file__).parent])
        extra = [*sets, "--repeat", "3", "--probe-int8"]
        if args.big_embedder:
            extra += ["--embedder", args.big_embedder]
        results["big"] = run(REPO, big, None, work, extra)
    args.json.write_text(json.dumps(results, indent=1))
    shutil.rmtree(work, ignore_errors=True)
    report(results)
    return 0


def report(results: dict[str, Any]) -> None:
    print(f"- machine: {results['machine']} (shared with other jobs; load = `uptime` 1-minute)")
    print(
        "\n| pipeline | load at start | chunks | first query answerable | dense index complete "
        "| CPU s to dense complete | chunks/s | query p50 / p95 | recall@5 stdlib (file / symbol) "
        "| recall@5 pytest | RSS |"
    )
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for row in results.get("mixed", []):
        lat = row["latency"]
        cells = []
        for name in ("stdlib", "pytest"):
            r = row["recall"].get(name, {}).get("hybrid")
            cells.append("-" if r is None else f"{r['file']:.2f} / {r['symbol']:.2f}")
        print(
            f"| {row['pipeline']} | {row['uptime'][0]:.1f} | {row['chunks']} | "
            f"{row['first_query_s']:.1f} s | {row['dense_s']:.1f} s | "
            f"{fmt(row, 'dense_cpu_s')} s | "
            f"{row['chunks_per_s']:.1f} | {lat['p50_ms']:.1f} / {lat['p95_ms']:.1f} ms | "
            + " | ".join(cells)
            + f" | {row['max_rss_mib']:.0f} MiB |"
        )
    print("\nrecall@5 (file / symbol) by mode:\n")
    print("| set | pipeline | hybrid | dense only | sparse only |")
    print("| --- | --- | --- | --- | --- |")
    for name in ("stdlib", "pytest"):
        for row in results.get("mixed", []):
            cells = []
            for mode in ("hybrid", "dense", "sparse"):
                r = row["recall"].get(name, {}).get(mode)
                cells.append("-" if r is None else f"{r['file']:.2f} / {r['symbol']:.2f}")
            print(f"| {name} | {row['pipeline']} | " + " | ".join(cells) + " |")
    if results.get("heldout"):
        print("\nHeld-out set (click + jinja2, 55 questions), recall@5 (file / symbol):\n")
        print(
            "| pipeline | load at start | chunks | dense index complete | hybrid | dense only "
            "| sparse only |"
        )
        print("| --- | --- | --- | --- | --- | --- | --- |")
        for row in results["heldout"]:
            cells = []
            for mode in ("hybrid", "dense", "sparse"):
                r = row["recall"].get("click_jinja2", {}).get(mode)
                cells.append("-" if r is None else f"{r['file']:.2f} / {r['symbol']:.2f}")
            print(
                f"| {row['pipeline']} | {row['uptime'][0]:.1f} | {row['chunks']} | "
                f"{row['dense_s']:.1f} s | " + " | ".join(cells) + " |"
            )
    big = results.get("big")
    if big:
        lat = big["latency"]
        print(
            f"\nAt {big['chunks']} chunks ({big['files']} files, new pipeline, load "
            f"{big['uptime'][0]:.1f}): searchable after {big['first_query_s']:.1f} s, dense "
            f"complete after {big['dense_s']:.1f} s ({big['chunks_per_s']:.1f} chunks/s); "
            f"query p50 {lat['p50_ms']:.1f} ms, p95 {lat['p95_ms']:.1f} ms; RSS "
            f"{big['max_rss_mib']:.0f} MiB; embedder {big['embedder']}."
        )
        probe = big.get("int8_query_embed")
        if probe:
            print(
                f"The int8 question embedding alone: p50 {probe['p50_ms']:.1f} ms, "
                f"p95 {probe['p95_ms']:.1f} ms."
            )
    for row in results.get("mixed", []):
        ttft = row.get("ttft")
        if ttft:
            firsts = sorted(r["first_token_ms"] for r in ttft["rows"])
            sources = sorted(r["sources_ms"] for r in ttft["rows"])
            ends = sorted(r["end_s"] for r in ttft["rows"])
            print(
                f"\nLong-lived research role (warm, {len(firsts)} questions, load "
                f"{row['load_end']:.1f}): sources streamed at {sources[len(sources) // 2]:.0f} ms "
                f"(median), first answer token at {firsts[len(firsts) // 2]:.0f} ms median "
                f"(min {firsts[0]:.0f}, max {firsts[-1]:.0f}); answers ended at "
                f"{ends[len(ends) // 2]:.1f} s median; first question after start "
                f"(models loading): {ttft['warmup']['first_token_ms']:.0f} ms."
            )
            engine = [r.get("timings", {}) for r in ttft["rows"]]
            engine = [t for t in engine if t.get("prompt_ms")]
            if engine:
                evaluated = sorted(max(1, t["prompt_tokens"] - t["reused_tokens"]) for t in engine)
                rates = sorted(
                    max(1, t["prompt_tokens"] - t["reused_tokens"]) / t["prompt_ms"] * 1000
                    for t in engine
                )
                prompts = sorted(t["prompt_tokens"] for t in engine)
                threads = sorted({t.get("threads", 0) for t in engine})
                print(
                    f"The answer model's prompts: {prompts[len(prompts) // 2]} tokens (median), "
                    f"{evaluated[len(evaluated) // 2]} evaluated per question (the rest kept "
                    f"from the last prompt), {rates[len(rates) // 2]:.0f} tokens/s with "
                    f"{'/'.join(map(str, threads))} llama.cpp thread(s)."
                )


if __name__ == "__main__":
    sys.exit(main())
