"""Does swarm-lsp's context make a tiny model name the right thing? A hidden-set harness.

Cases come from real packages installed in the venv (rich, click, jinja2, pygls ...): a use
of an identifier that is defined in *another* file of the package, with the cursor cut
``--cut`` characters into the identifier and the rest of the identifier removed from the
document. A case is a hit when the word before the cursor plus the completion's first
identifier is exactly the hidden identifier.

Each case is answered by the same model (Gemma 3 270M) in several ways:

- ``prefix-only``: the plain text before the cursor, fitted to the same token budget;
- ``prefix+suffix``: the same, after the text that follows the cursor as a comment block
  (the model declares no FIM tokens, so this is how it can see the suffix);
- ``swarm-lsp``: what the server sends (the stable window with its preamble of path,
  imports and other files' signatures; token healing; first-word candidates from the
  document and the symbol index), through the same functions the server calls;
- ablations: ``swarm-lsp -names`` (no candidates), ``swarm-lsp -heal`` (no healing, so no
  candidates either), ``prefix+heal`` (the plain prefix, healed, no preamble, no names);
- the extra-context ring (:mod:`swarm_lsp.context.ring`): ``swarm-lsp +ring`` is swarm-lsp
  with the ring an editing session through the cases would have gathered (the user works on
  each case's file in turn, so the lines around the previous cases' cursors, the files left);
  ``swarm-lsp +ring+def`` also has the lines around the hidden name's definition in the ring,
  as after the user looked at it (go to definition and back): the best case, not the usual.

    .venv/bin/python bench/context_lift.py --packages rich click --n 40 [--cut 2] \
        [--write bench/context-lift-results.md]
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import os
import platform
import random
import re
import shutil
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

from swarm_lsp.config import ContextSettings, ModelSettings
from swarm_lsp.context.completion_window import CompletionWindows
from swarm_lsp.context.documents import path_to_uri
from swarm_lsp.context.engine import ContextEngine
from swarm_lsp.context.packing import keep_head, keep_tail
from swarm_lsp.context.ring import ContextRing
from swarm_lsp.models.healing import is_ident_char, partial_word
from swarm_lsp.models.llama_engine import LlamaEngine
from swarm_lsp.models.local import LocalModels

MAX_TOKENS = 8
VARIANTS = (
    "prefix-only",
    "prefix+suffix",
    "prefix+heal",
    "swarm-lsp -heal",
    "swarm-lsp -names",
    "swarm-lsp",
    "swarm-lsp +ring",
    "swarm-lsp +ring+def",
)
_WORD = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def package_dir(name: str) -> Path:
    spec = importlib.util.find_spec(name)
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit(f"package {name} is not installed in this environment")
    return Path(next(iter(spec.submodule_search_locations)))


def first_identifier(text: str) -> str:
    end = 0
    while end < len(text) and is_ident_char(text[end]):
        end += 1
    return text[:end]


def find_cases(engine: ContextEngine, root: Path, n: int, cut: int, seed: int) -> list[dict]:
    """Uses of names defined only in other files of the package, in code lines."""
    found: list[dict] = []
    for rel in sorted(engine.index.files()):
        if not rel.endswith(".py"):
            continue
        own = engine.index.get(rel)
        if own is None:
            continue
        own_names = {t.name for t in own.definitions}
        text = (root / rel).read_text(encoding="utf-8")
        lines = text.split("\n")
        offset = 0
        for number, line in enumerate(lines):
            stripped = line.strip()
            code = not stripped.startswith(("#", "from ", "import ", '"', "'", "@"))
            if code and number > 5:
                for match in _WORD.finditer(line):
                    name = match.group()
                    if len(name) < max(5, cut + 3) or name.startswith("__") or name in own_names:
                        continue
                    defs = engine.index.definitions(name)
                    if not defs or any(t.path == rel for t in defs):
                        continue
                    if line[: match.start()].count('"') % 2 or line[: match.start()].count("'") % 2:
                        continue  # inside a string
                    start = offset + match.start()
                    found.append(
                        {
                            "rel": rel,
                            "line": number,
                            "col": match.start(),
                            "name": name,
                            "start": start,
                        }
                    )
            offset += len(line) + 1
    random.Random(seed).shuffle(found)
    # One case per (file, name) so a file that uses one name 40 times does not dominate.
    chosen: list[dict] = []
    seen: set[tuple[str, str]] = set()
    for case in found:
        key = (case["rel"], case["name"])
        if key in seen:
            continue
        seen.add(key)
        chosen.append(case)
        if len(chosen) >= n:
            break
    return chosen


def hidden_document(text: str, case: dict, cut: int) -> tuple[str, int, int]:
    """The document with the identifier cut ``cut`` characters in; (text, line, character)."""
    start = case["start"]
    name = case["name"]
    return text[: start + cut] + text[start + len(name) :], case["line"], case["col"] + cut


async def run_package(
    name: str,
    models: LocalModels,
    n: int,
    cut: int,
    seed: int,
    workdir: Path,
    variants: tuple[str, ...] = VARIANTS,
) -> tuple[Counter[str], int, list[dict]]:
    source = package_dir(name)
    root = workdir / name
    shutil.copytree(source, root, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    engine = ContextEngine(root, ContextSettings(), workdir / f"{name}-cache")
    engine.index_workspace()
    windows = CompletionWindows(engine)
    cases = find_cases(engine, root, n, cut, seed)
    scheduler = models.completion
    count = models.count_tokens
    budget = engine.settings.completion_budget_tokens
    hits: Counter[str] = Counter()
    rows: list[dict] = []
    left: list[tuple[str, str, int]] = []  # (file, text, cursor line) of the files left
    for case in cases:
        original = (root / case["rel"]).read_text(encoding="utf-8")
        text, line, col = hidden_document(original, case, cut)
        uri = path_to_uri(root / case["rel"])
        engine.documents.open(uri, text, "python")
        windows.forget(uri)
        lines = text.split("\n")
        before = "\n".join([*lines[:line], lines[line][:col]])
        after = text[len(before) :]
        word = partial_word(before)
        answers: dict[str, str] = {}

        def plain(prompt: str, heal: bool = False) -> str:
            def work(engine_: LlamaEngine, _cancel: object) -> str:
                return engine_.complete(prompt, max_tokens=MAX_TOKENS, heal=heal).text

            return work  # type: ignore[return-value]

        prefix_only = keep_tail(before, budget, count)
        if "prefix-only" in variants:
            answers["prefix-only"] = await scheduler.run(plain(prefix_only))  # type: ignore[arg-type]
        if "prefix+suffix" in variants:
            suffix = keep_head(after, budget // 4, count)
            suffix_block = "".join(f"# {s}\n" for s in suffix.splitlines())
            with_suffix = (
                "# The code after the cursor:\n"
                + suffix_block
                + "\n"
                + keep_tail(before, budget - count(suffix_block) - 8, count)
            )
            answers["prefix+suffix"] = await scheduler.run(plain(with_suffix))  # type: ignore[arg-type]
        if "prefix+heal" in variants:
            answers["prefix+heal"] = await scheduler.run(plain(prefix_only, True))  # type: ignore[arg-type]
        ctx = windows.context(uri, line, col, count_tokens=count)
        assert ctx is not None
        names = windows.names_for(word, ctx) if word else []
        for variant, heal, use_names in (
            ("swarm-lsp -heal", False, False),
            ("swarm-lsp -names", True, False),
            ("swarm-lsp", True, True),
        ):
            if variant not in variants:
                continue
            result = await models.complete(
                key=f"{uri}#{variant}",
                preamble=ctx.preamble,
                prefix=ctx.prefix,
                suffix=ctx.suffix,
                names=names if use_names else (),
                heal=heal,
            )
            answers[variant] = result.raw
        for variant in ("swarm-lsp +ring", "swarm-lsp +ring+def"):
            if variant not in variants:
                continue
            ring = ContextRing(count=count)
            for path, old_text, old_line in left:
                ring.pick(path, old_text, old_line, "python")
                ring.update()
            if variant.endswith("+def"):
                for tag in engine.index.definitions(case["name"])[:1]:
                    source_text = (root / tag.path).read_text(encoding="utf-8")
                    ring.pick(tag.path, source_text, tag.line, "python")
                    ring.update()
            ring_ctx = CompletionWindows(engine, ring).context(uri, line, col, count_tokens=count)
            assert ring_ctx is not None
            ring_names = windows.names_for(word, ring_ctx) if word else []
            result = await models.complete(
                key=f"{uri}#{variant}",
                preamble=ring_ctx.head,
                prefix=ring_ctx.prefix,
                suffix=ring_ctx.suffix,
                names=ring_names,
            )
            answers[variant] = result.raw
        left.append((case["rel"], text, line))
        engine.documents.close(uri)
        row = {"rel": case["rel"], "name": case["name"], "word": word, "names": len(names)}
        for variant, answer in answers.items():
            got = word + first_identifier(answer)
            row[variant] = got
            if got == case["name"]:
                hits[variant] += 1
        row["in_prompt"] = case["name"] in (ctx.preamble + ctx.prefix)
        rows.append(row)
        print(row, file=sys.stderr, flush=True)
    engine.close()
    return hits, len(cases), rows


def machine() -> str:
    load = os.getloadavg()[0]
    return f"{platform.machine()}, {os.cpu_count()} cores, load average at start {load:.2f}"


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--packages", nargs="+", default=["rich", "click"])
    parser.add_argument("--n", type=int, default=40)
    parser.add_argument("--cut", type=int, default=2)
    parser.add_argument("--seed", type=int, default=12)
    parser.add_argument("--write", type=Path)
    parser.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=VARIANTS)
    args = parser.parse_args()

    models = LocalModels(ModelSettings(completion_max_tokens=MAX_TOKENS))
    await models.warm_up()
    models.completion.engine.vocabulary  # noqa: B018 - healing needs it from the first case
    variants = tuple(args.variants)
    started = time.perf_counter()
    results = []
    with tempfile.TemporaryDirectory(prefix="swarm-ctxlift-") as tmp:
        for name in args.packages:
            hits, total, rows = await run_package(
                name, models, args.n, args.cut, args.seed, Path(tmp), variants
            )
            results.append((name, hits, total, rows))
    models.close()
    elapsed = time.perf_counter() - started

    header = "| package | cases | " + " | ".join(variants) + " | swarm-lsp / prefix-only |"
    lines = [
        f"Hidden-set completion hits, cut {args.cut} characters into identifiers defined in "
        f"another file of the package; Gemma 3 270M Q4_K_M, {MAX_TOKENS} tokens, greedy.",
        "",
        header,
        "|" + "---|" * (len(variants) + 3),
    ]
    for name, hits, total, rows in results:
        ratio = hits["swarm-lsp"] / hits["prefix-only"] if hits["prefix-only"] else float("inf")
        cells = " | ".join(f"{hits[v]}/{total}" for v in variants)
        lines.append(f"| {name} | {total} | {cells} | {ratio:.1f}x |")
        in_prompt = sum(1 for r in rows if r["in_prompt"])
        lines.append(
            f"|  | name in swarm-lsp's prompt: {in_prompt}/{total}; "
            f"cases with candidates: {sum(1 for r in rows if r['names'])}/{total} |"
            + " |"
            * (len(variants) + 1)
        )
    lines += [
        "",
        f"Command: `.venv/bin/python bench/context_lift.py --packages {' '.join(args.packages)} "
        f"--n {args.n} --cut {args.cut} --seed {args.seed} --variants {' '.join(variants)}`; "
        f"machine: {machine()}; "
        f"{elapsed:.0f} s.",
    ]
    report = "\n".join(lines)
    print(report)
    if args.write:
        args.write.write_text(report + "\n")


if __name__ == "__main__":
    asyncio.run(main())
