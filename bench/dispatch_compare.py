"""bench/dispatch.py through an older commit's tree and this one, interleaved in one run.

Exports ``--old`` (default d39e7e0, before issue 10) with ``git archive`` into a temporary
folder and runs each tree's own ``bench/dispatch.py`` as a fresh process (its coordinator and
workers import that tree: ``PYTHONPATH`` points at it), alternating old, new, new, old, … for
``--rounds`` rounds (``--new COMMIT``: that commit instead of this tree), and records the
machine's load before each run. Prints a Markdown table: every run's figures, then the median
per tree and the new/old ratio.

    .venv/bin/python bench/dispatch_compare.py [--old C] [--new C] [--rounds 3] [-- BENCH ARGS]
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


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--old", default="d39e7e0")
    parser.add_argument("--new", default="", help="a commit instead of this working tree")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("extra", nargs="*", help="arguments for bench/dispatch.py (after --)")
    args = parser.parse_args()
    runs: dict[str, list[tuple[float, dict[str, float]]]] = {"old": [], "new": []}
    with tempfile.TemporaryDirectory(prefix="dispatch-compare-") as tmp:
        new = _export(args.new, Path(tmp), "new") if args.new else REPO
        trees = {"old": _export(args.old, Path(tmp), "old"), "new": new}
        for round_ in range(args.rounds):
            for name in ("old", "new") if round_ % 2 == 0 else ("new", "old"):
                runs[name].append(_run(trees[name], args.extra))
                load, figures = runs[name][-1]
                print(f"# round {round_ + 1} {name}: load {load:.1f} {figures}", flush=True)
    keys = sorted({k for _, figures in runs["old"] + runs["new"] for k in figures})
    head = (
        ["figure"]
        + [f"{n} {i + 1} (load {runs[n][i][0]:.1f})" for n in runs for i in range(len(runs[n]))]
        + ["old median", "new median", "new/old"]
    )
    print("| " + " | ".join(head) + " |")
    print("|" + " --- |" * len(head))
    for key in keys:
        row = [key]
        medians = []
        for name in runs:
            values = [figures.get(key, float("nan")) for _, figures in runs[name]]
            row += [f"{v:.2f}" for v in values]
            medians.append(statistics.median(values))
        ratio = medians[1] / medians[0] if medians[0] else float("nan")
        row += [f"{medians[0]:.2f}", f"{medians[1]:.2f}", f"{ratio:.2f}"]
        print("| " + " | ".join(row) + " |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
