"""bench/dispatch.py through several commits' trees, interleaved in one run.

Exports each commit with ``git archive`` into a temporary folder and runs that tree's own
``bench/dispatch.py`` as a fresh process (its coordinator and workers import that tree:
``PYTHONPATH`` points at it), for ``--rounds`` rounds, the order rotating each round (a, b, c;
b, c, a; …), and records the machine's load (1-minute average) before each run. Prints every
run as it ends, then a Markdown table: every run's figures, the median per tree and each
tree's median ÷ the first tree's. Run it under the benchmark lock:

    flock /work/bench.lock .venv/bin/python bench/dispatch_compare.py \\
        --tree old=d39e7e0 --tree main=main --tree new=. --rounds 5

``--tree NAME=COMMIT`` (repeatable, in table order; ``.`` is this working tree, uncommitted
changes included). Without ``--tree``: ``--old`` (default d39e7e0) against ``--new`` (a commit;
default this working tree). Arguments after ``--`` go to bench/dispatch.py (e.g.
``-- --failover-runs 1``).
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
FIGURE = re.compile(r"^([a-z0-9_]+): ([0-9.]+)$")


def _export(commit: str, folder: Path, name: str) -> Path:
    if commit == ".":
        return REPO
    tree = folder / name
    tree.mkdir()
    archive = subprocess.run(
        ["git", "-C", str(REPO), "archive", commit], capture_output=True, check=True
    ).stdout
    subprocess.run(["tar", "-x", "-C", str(tree)], input=archive, check=True)
    return tree


def _run(tree: Path, extra: list[str]) -> tuple[float, dict[str, float]]:
    load = os.getloadavg()[0]
    env = {**os.environ, "PYTHONPATH": str(tree)}
    out = subprocess.run(
        [sys.executable, str(tree / "bench" / "dispatch.py"), *extra],
        cwd=tree,
        env=env,
        capture_output=True,
        text=True,
        check=True,
        timeout=3600,
    ).stdout
    figures = {}
    for line in out.splitlines():
        match = FIGURE.match(line.strip())
        if match:
            figures[match.group(1)] = float(match.group(2))
        elif line.startswith("failover_"):
            name, _, rest = line.partition(": ")
            median = re.search(r"median ([0-9.]+)", rest)
            if median:
                figures[f"{name}_median"] = float(median.group(1))
    return load, figures


def _trees(args: argparse.Namespace) -> dict[str, str]:
    if not args.tree:
        return {"old": args.old, "new": args.new or "."}
    trees = {}
    for spec in args.tree:
        name, sep, commit = spec.partition("=")
        if not sep or not name or not commit:
            raise SystemExit(f"--tree takes NAME=COMMIT, not {spec!r}")
        trees[name] = commit
    return trees


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tree", action="append", default=[], help="NAME=COMMIT ('.': here)")
    parser.add_argument("--old", default="d39e7e0", help="without --tree: the old commit")
    parser.add_argument("--new", default="", help="without --tree: a commit, not this tree")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("extra", nargs="*", help="arguments for bench/dispatch.py (after --)")
    args = parser.parse_args()
    commits = _trees(args)
    names = list(commits)
    runs: dict[str, list[tuple[float, dict[str, float]]]] = {name: [] for name in names}
    with tempfile.TemporaryDirectory(prefix="dispatch-compare-") as tmp:
        trees = {name: _export(commit, Path(tmp), name) for name, commit in commits.items()}
        print(f"# trees: {commits}", flush=True)
        for round_ in range(args.rounds):
            shift = round_ % len(names)
            for name in names[shift:] + names[:shift]:
                runs[name].append(_run(trees[name], args.extra))
                load, figures = runs[name][-1]
                print(f"# round {round_ + 1} {name}: load {load:.1f} {figures}", flush=True)
    _table(runs)
    return 0


def _table(runs: dict[str, list[tuple[float, dict[str, float]]]]) -> None:
    names = list(runs)
    every = [figures for name in names for _, figures in runs[name]]
    keys = sorted({key for figures in every for key in figures})
    head = ["figure"]
    head += [f"{n} {i + 1} (load {runs[n][i][0]:.1f})" for n in names for i in range(len(runs[n]))]
    head += [f"{n} median" for n in names] + [f"{n}/{names[0]}" for n in names[1:]]
    print("| " + " | ".join(head) + " |")
    print("|" + " --- |" * len(head))
    for key in keys:
        row = [key]
        medians = []
        for name in names:
            values = [figures.get(key, float("nan")) for _, figures in runs[name]]
            row += [f"{v:.2f}" for v in values]
            medians.append(statistics.median(values))
        row += [f"{m:.2f}" for m in medians]
        row += [f"{m / medians[0]:.2f}" if medians[0] else "nan" for m in medians[1:]]
        print("| " + " | ".join(row) + " |")


if __name__ == "__main__":
    sys.exit(main())
