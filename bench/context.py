"""Benchmark the context engine on a real codebase (default: this Python's standard library).

    .venv/bin/python bench/context.py [--root DIR] [--write bench/context-results.md]

Measures, in one run so the ratios compare like with like on a noisy shared machine:

1. full parse vs incremental reparse of 5,000-line files after a one-character edit;
2. index build (cold cache, then a restart on a warm cache): seconds and files/s;
3. completion packing latency (``ContextEngine.completion_context``) p50/p95, and a typing
   loop (``apply_change`` + ``completion_context``) on the 5,000-line file;
4. zstd ratio with the workspace-trained dictionary vs without, on 2-8 KB payloads: real
   task-context payloads, and (stricter) chunks of files the dictionary never saw.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
import random
import re
import shlex
import statistics
import sys
import sysconfig
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from swarm_lsp.config import ContextSettings  # noqa: E402
from swarm_lsp.context import compression, languages  # noqa: E402
from swarm_lsp.context.documents import DocumentStore, path_to_uri  # noqa: E402
from swarm_lsp.context.engine import ContextEngine  # noqa: E402
from swarm_lsp.context.text import point_after, point_at  # noqa: E402

STDLIB = Path(sysconfig.get_paths()["stdlib"])
# The stdlib folder of a pyenv/venv Python also holds site-packages; leave those out.
STDLIB_IGNORE = ["site-packages/"]
IDENTIFIER = re.compile(r"[A-Za-z_]\w+")


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[index]


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.2f} ms"


def timed(fn: Callable[[], object], repeat: int) -> list[float]:
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        fn()
        times.append(time.perf_counter() - started)
    return times


def machine() -> dict[str, str]:
    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "nproc": str(os.cpu_count()),
        "cpu": cpu,
        "python": platform.python_version(),
        "platform": platform.platform(),
    }


def big_files(root: Path, lines: int) -> list[tuple[Path, str]]:
    """Every stdlib file of ``lines``+ lines, cut to its first ``lines`` lines."""
    found = []
    for path in sorted(root.rglob("*.py")):
        if "site-packages" in path.parts:
            continue
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError):
            continue
        if text.count("\n") >= lines:
            found.append((path, "".join(text.splitlines(keepends=True)[:lines])))
    if not found:
        raise SystemExit(f"no file of {lines}+ lines under {root}")
    return found


def identifier_offsets(text: str, rng: random.Random, count: int) -> list[int]:
    """Byte offsets just inside an identifier on random lines: where typing happens."""
    lines = text.splitlines(keepends=True)
    starts = [0]
    for line in lines:
        starts.append(starts[-1] + len(line.encode()))
    offsets: list[int] = []
    while len(offsets) < count:
        i = rng.randrange(len(lines))
        match = IDENTIFIER.search(lines[i])
        if match:
            offsets.append(starts[i] + len(lines[i][: match.start() + 1].encode()))
    return offsets


def bench_incremental_file(text: str, rng: random.Random, repeat: int) -> tuple[float, float]:
    """Median full parse and median incremental reparse, measured in alternation."""
    parser = languages.get_parser("python")
    source = text.encode()
    base = parser.parse(source)
    full: list[float] = []
    incremental: list[float] = []
    for offset in identifier_offsets(text, rng, repeat):
        started = time.perf_counter()
        parser.parse(source)
        full.append(time.perf_counter() - started)
        new_source = source[:offset] + b"x" + source[offset:]
        tree = base.copy()
        start = point_at(source, offset)
        tree.edit(offset, offset, offset + 1, start, start, point_after(start, b"x"))
        started = time.perf_counter()
        parser.parse(new_source, tree)
        incremental.append(time.perf_counter() - started)
    return statistics.median(full), statistics.median(incremental)


def bench_store(text: str, rng: random.Random, repeat: int) -> dict[str, float]:
    """The whole didChange path: UTF-16 position to bytes, splice, Tree.edit, reparse.

    Compared, in alternation, with a full-sync ``replace`` of the same text.
    """
    store = DocumentStore(max_parse_bytes=10_000_000)
    uri = "file:///bench/big.py"
    store.open(uri, text, "python")
    lines = text.splitlines()
    times: list[float] = []
    full: list[float] = []
    for _ in range(repeat):
        i = rng.randrange(len(lines))
        match = IDENTIFIER.search(lines[i])
        col = match.start() + 1 if match else 0
        started = time.perf_counter()
        store.replace(uri, text)
        full.append(time.perf_counter() - started)
        doc = store.get(uri)
        assert doc is not None
        _ = doc.lines  # a previous keystroke would have left the line index built
        started = time.perf_counter()
        store.apply_change(uri, i, col, i, col, "x")
        times.append(time.perf_counter() - started)
    return {
        "store_full": statistics.median(full),
        "store_incremental": statistics.median(times),
        "store_incremental_p95": percentile(times, 95),
    }


def bench_index(root: Path, cache: Path) -> dict[str, float]:
    settings = ContextSettings()
    cold = ContextEngine(root, settings, cache, ignore=STDLIB_IGNORE)
    stats = cold.index.build()
    cold.close()
    warm = ContextEngine(root, settings, cache, ignore=STDLIB_IGNORE)
    warm_stats = warm.index.build()
    warm.close()
    return {
        "files": stats.files_total,
        "parsed": stats.files_parsed,
        "cached_cold": stats.files_cached,
        "skipped": stats.files_skipped,
        "definitions": stats.definitions,
        "cold_s": stats.seconds,
        "cold_fps": stats.files_per_second,
        "warm_s": warm_stats.seconds,
        "warm_fps": warm_stats.files_per_second,
        "warm_parsed": warm_stats.files_parsed,
    }


def bench_completion(
    engine: ContextEngine, big_path: Path, big_text: str, rng: random.Random, samples: int
) -> dict[str, float]:
    files = [engine.index.absolute(rel) for rel in engine.index.files()]
    files = [p for p in files if p.suffix == ".py"]
    rng.shuffle(files)
    opened: list[tuple[str, list[str]]] = []
    for path in files[:25]:
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError):
            continue
        uri = path_to_uri(path)
        engine.documents.open(uri, text, "python")
        opened.append((uri, text.splitlines()))
    big_uri = path_to_uri(big_path.with_name("bench_5000_lines.py"))
    engine.documents.open(big_uri, big_text, "python")
    opened.append((big_uri, big_text.splitlines()))

    times: list[float] = []
    preamble_symbols = 0
    for _ in range(samples):
        uri, lines = rng.choice(opened)
        line = rng.randrange(max(1, len(lines)))
        char = rng.randrange(max(1, len(lines[line]) + 1)) if lines else 0
        started = time.perf_counter()
        ctx = engine.completion_context(uri, line, char)
        times.append(time.perf_counter() - started)
        preamble_symbols += bool(ctx.symbols)

    # Typing: insert a character then ask for a completion, 200 times in the big file.
    big_lines = big_text.splitlines()
    typing: list[float] = []
    line = len(big_lines) // 2
    for i in range(200):
        col = len(big_lines[line]) + i
        started = time.perf_counter()
        engine.documents.apply_change(big_uri, line, col, line, col, "x")
        engine.completion_context(big_uri, line, col + 1)
        typing.append(time.perf_counter() - started)
    return {
        "p50": percentile(times, 50),
        "p95": percentile(times, 95),
        "max": max(times),
        "samples": samples,
        "with_symbols": preamble_symbols / samples,
        "typing_p50": percentile(typing, 50),
        "typing_p95": percentile(typing, 95),
    }


def ratio_stats(payloads: list[bytes], dictionary: bytes) -> dict[str, float]:
    raw = sum(len(p) for p in payloads)
    plain = [compression.compress(p) for p in payloads]
    with_dict = [compression.compress(p, dictionary) for p in payloads]
    ident = compression.dict_id(dictionary)
    for payload, frame in zip(payloads, with_dict, strict=True):
        assert compression.decompress(frame, 1 << 20, {ident: dictionary}) == payload
    plain_ratio = raw / sum(len(f) for f in plain)
    dict_ratio = raw / sum(len(f) for f in with_dict)
    per_payload = [len(n) / len(d) for d, n in zip(with_dict, plain, strict=True)]
    return {
        "payloads": len(payloads),
        "mean_size": raw / len(payloads),
        "plain_ratio": plain_ratio,
        "dict_ratio": dict_ratio,
        "gain": dict_ratio / plain_ratio,
        "gain_median": statistics.median(per_payload),
    }


def task_payloads(
    engine: ContextEngine, rels: list[str], rng: random.Random, count: int
) -> list[bytes]:
    """``task_context`` payloads of 2-8 KB for random cursors in random files of ``rels``."""
    payloads: list[bytes] = []
    attempts = 0
    while len(payloads) < count and attempts < count * 4:
        attempts += 1
        path = engine.index.absolute(rng.choice(rels))
        try:
            n_lines = path.read_text(encoding="utf-8").count("\n")
        except (OSError, UnicodeDecodeError):
            continue
        budget = rng.randint(600, 2300)
        packed = engine.task_context(path_to_uri(path), rng.randrange(max(1, n_lines)), 0, budget)
        data = packed.text.encode()
        if 2048 <= len(data) <= 8192:
            payloads.append(data)
    return payloads


def bench_zstd(engine: ContextEngine, rng: random.Random, count: int) -> dict[str, Any]:
    rels = [rel for rel in engine.index.files() if rel.endswith(".py")]
    # 1. What the engine does after indexing: train on its own payload samples from the
    #    whole workspace, then measure fresh payloads (other random cursors).
    started = time.perf_counter()
    samples = engine.training_samples()
    engine.train_dictionary(samples)
    train_s = time.perf_counter() - started
    dictionary = engine.dictionary
    assert dictionary is not None
    started = time.perf_counter()
    fresh = task_payloads(engine, rels, rng, count)
    task_s = (time.perf_counter() - started) / max(1, len(fresh))
    in_workspace = ratio_stats(fresh, dictionary)
    # 2. Held out: train with cursors in the even-numbered files only, measure payloads
    #    for cursors in the odd-numbered files.
    held_dict = compression.train_dictionary(engine.training_samples(files=rels[0::2]))
    held_payloads = task_payloads(engine, rels[1::2], rng, count)
    held_out = ratio_stats(held_payloads, held_dict)
    # 3. For comparison: a dictionary of the same size trained on 4 MB of raw code chunks.
    code: list[bytes] = []
    for rel in rng.sample(rels[0::2], len(rels[0::2])):
        code.extend(compression.sample_chunks(engine.index.absolute(rel).read_bytes()))
        if sum(len(c) for c in code) > 4 * 1024 * 1024:
            break
    code_only = ratio_stats(held_payloads, compression.train_dictionary(code))
    return {
        "train_s": train_s,
        "train_samples": len(samples),
        "task_s": task_s,
        "dict_bytes": len(dictionary),
        "in_workspace": in_workspace,
        "held_out": held_out,
        "code_only": code_only,
    }


def zstd_row(label: str, stats: dict[str, float]) -> str:
    return (
        f"| {label} | {stats['payloads']:.0f} | {stats['mean_size']:.0f} B | "
        f"{stats['plain_ratio']:.2f} | {stats['dict_ratio']:.2f} | **{stats['gain']:.2f}x** | "
        f"{stats['gain_median']:.2f}x |"
    )


def render(
    args: argparse.Namespace,
    info: dict[str, str],
    incremental: list[tuple[Path, float, float]],
    store: dict[str, float],
    store_path: Path,
    idx: dict[str, float],
    comp: dict[str, float],
    zs: dict[str, Any],
) -> str:
    command = "cd /work/main && .venv/bin/python bench/context.py " + " ".join(
        shlex.quote(a) for a in sys.argv[1:]
    )
    ratios = [f / i for _, f, i in incremental]
    lines = [
        "# Context engine benchmarks",
        "",
        f"- Command: `{command}`",
        f"- Date: {info['date']}",
        f"- Machine: `nproc` = {info['nproc']}, CPU: {info['cpu']} (model name in",
        f"  /proc/cpuinfo); Python {info['python']}, {info['platform']}",
        "- The machine is shared with other jobs, so absolute times are noisy: figures are",
        "  medians or percentiles from one run, and each ratio compares measurements taken",
        "  side by side (in alternation) in that run.",
        f"- Codebase: `{args.root}`, the Python standard library without its site-packages",
        "  folder.",
        "",
        "## Incremental parsing: 5,000-line files, one-character edit",
        "",
        "Every stdlib file of 5,000+ lines, cut to its first 5,000 lines. Each run types one",
        "character just inside an identifier on a random line; full parse and incremental",
        f"reparse (old tree copied, `Tree.edit`, reparse) alternate, {args.repeat} runs per file.",
        "",
        "| file | full parse | incremental reparse | speed-up |",
        "| --- | --- | --- | --- |",
    ]
    for path, full, inc in incremental:
        rel = path.relative_to(args.root)
        lines.append(f"| `{rel}` | {ms(full)} | {ms(inc)} | {full / inc:.1f}x |")
    lines += [
        "",
        f"Median speed-up over the {len(ratios)} files: **{statistics.median(ratios):.1f}x** "
        f"(lowest {min(ratios):.1f}x, highest {max(ratios):.1f}x).",
        "",
        f"The whole didChange path on `{store_path.relative_to(args.root)}` "
        "(`DocumentStore.apply_change`: UTF-16 position to bytes, splice, line index, "
        f"`Tree.edit`, reparse): median {ms(store['store_incremental'])}, p95 "
        f"{ms(store['store_incremental_p95'])}, against {ms(store['store_full'])} for a "
        "full-sync `replace` of the same text: "
        f"{store['store_full'] / store['store_incremental']:.1f}x.",
        "",
        "## Index build",
        "",
        "| run | files | parsed | from cache | skipped | seconds | files/s |",
        "| --- | --- | --- | --- | --- | --- | --- |",
        f"| cold cache | {idx['files']:.0f} | {idx['parsed']:.0f} | {idx['cached_cold']:.0f} | "
        f"{idx['skipped']:.0f} | {idx['cold_s']:.2f} | {idx['cold_fps']:.0f} |",
        f"| restart, warm cache | {idx['files']:.0f} | {idx['warm_parsed']:.0f} | "
        f"{idx['files'] - idx['warm_parsed'] - idx['skipped']:.0f} | {idx['skipped']:.0f} | "
        f"{idx['warm_s']:.2f} | {idx['warm_fps']:.0f} |",
        "",
        f'{idx["definitions"]:.0f} definitions indexed. "From cache" on the cold run counts '
        "files whose content equals one already parsed (the tag cache is keyed by content hash).",
        "",
        "## Completion packing",
        "",
        "`ContextEngine.completion_context` with the default budget "
        f"({ContextSettings().completion_budget_tokens} tokens, estimated), at "
        f"{comp['samples']:.0f} random cursors in 26 open documents (25 random stdlib files "
        "and the 5,000-line file); "
        f"{comp['with_symbols'] * 100:.0f}% of the contexts carried signatures from other files.",
        "",
        "| measurement | p50 | p95 | max |",
        "| --- | --- | --- | --- |",
        f"| completion_context | {ms(comp['p50'])} | {ms(comp['p95'])} | {ms(comp['max'])} |",
        "| one keystroke in the 5,000-line file (apply_change + completion_context, 200 times) "
        f"| {ms(comp['typing_p50'])} | {ms(comp['typing_p95'])} | |",
        "",
        "## zstd with the workspace dictionary (2-8 KB task payloads, level 3)",
        "",
        f"Payloads are `ContextEngine.task_context` texts (budgets 600-2,300 tokens, kept when "
        f"2-8 KB) at random cursors; one took {float(zs['task_s']) * 1000:.0f} ms to build. "
        f"The dictionary ({zs['dict_bytes']} bytes) is what `ContextEngine.train_dictionary()` "
        "makes after indexing: trained on the engine's own task payloads at random cursors "
        f"(up to 96 or 30 s; {zs['train_samples']} samples here), in {float(zs['train_s']):.1f} s "
        "including making the samples. Frames carry content size, dict id and checksum.",
        "",
        "| payloads | n | mean size | ratio without dict | ratio with dict | gain | median gain |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    in_ws = zs["in_workspace"]
    held = zs["held_out"]
    code = zs["code_only"]
    assert isinstance(in_ws, dict) and isinstance(held, dict) and isinstance(code, dict)
    lines += [
        zstd_row("fresh cursors, dictionary from the whole workspace", in_ws),
        zstd_row("held out: dictionary from even-numbered files, cursors in odd ones", held),
        zstd_row("same held-out payloads, dictionary trained on 4 MB of raw code", code),
        "",
        "Ratio = raw bytes / compressed bytes over all payloads; gain = ratio with dictionary /",
        "ratio without; median gain is per payload.",
        "",
    ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", type=Path, default=STDLIB)
    parser.add_argument("--repeat", type=int, default=30, help="edits per 5,000-line file")
    parser.add_argument("--samples", type=int, default=500, help="completion cursors")
    parser.add_argument("--payloads", type=int, default=150)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--write", type=Path, help="also write the markdown report here")
    args = parser.parse_args()
    rng = random.Random(args.seed)
    info = machine()

    files = big_files(args.root, 5000)
    incremental = []
    for path, text in files:
        print(f"incremental parse: {path}", file=sys.stderr)
        full, inc = bench_incremental_file(text, rng, args.repeat)
        incremental.append((path, full, inc))
    store_path, store_text = next(((p, t) for p, t in files if p.name == "_pydecimal.py"), files[0])
    store = bench_store(store_text, rng, args.repeat)
    with tempfile.TemporaryDirectory(prefix="swarm-bench-") as tmp:
        cache = Path(tmp) / "cache"
        print("index build ...", file=sys.stderr)
        idx = bench_index(args.root, cache)
        engine = ContextEngine(args.root, ContextSettings(), cache, ignore=STDLIB_IGNORE)
        engine.index.build()
        print("completion packing ...", file=sys.stderr)
        comp = bench_completion(engine, store_path, store_text, rng, args.samples)
        print("zstd ...", file=sys.stderr)
        zs = bench_zstd(engine, rng, args.payloads)
        engine.close()
    report = render(args, info, incremental, store, store_path, idx, comp, zs)
    print(report)
    if args.write:
        args.write.write_text(report, encoding="utf-8")


if __name__ == "__main__":
    main()
