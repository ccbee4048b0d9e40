"""Where research answers end: the chat model's own end of turn, and where ``StopWhenDone`` cuts.

Every labelled question (the stdlib and pytest sets, over bench/research_ttft.py's corpus, the
keyword side's hits) is answered by the real chat model with no guard, greedily, up to the
768-token safety bound; the streamed pieces are then replayed through the guard of this tree
and, with ``--old REV``, through the guard of that commit (loaded from ``git show``). Per
answer: did the model end it (end-of-turn) or hit the bound, and where each guard would stop.
A guard should stop the answers that ran to the bound and leave those the model ended alone.
Token counts, not times: the figures do not move with the machine's load.

    nice .venv/bin/python bench/research_stops.py --old main --questions 72
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import types
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import research_ttft  # noqa: E402 - the corpus and the labelled questions

CAP = 768


def old_guard(rev: str) -> Any:
    """The ``StopWhenDone`` class of commit ``rev`` (answer.py before it moved to stopping.py)."""
    for path in ("swarm_lsp/workers/research/stopping.py", "swarm_lsp/workers/research/answer.py"):
        shown = subprocess.run(
            ["git", "-C", str(HERE.parent), "show", f"{rev}:{path}"],
            capture_output=True,
            text=True,
        )
        if shown.returncode == 0 and "class StopWhenDone" in shown.stdout:
            module = types.ModuleType(f"old_{path.rsplit('/', 1)[1][:-3]}")
            exec(compile(shown.stdout, f"{rev}:{path}", "exec"), module.__dict__)
            return module.StopWhenDone
    raise SystemExit(f"no StopWhenDone at {rev}")


def replay(guard_class: Any, pieces: list[str]) -> dict[str, Any]:
    guard = guard_class()
    for n, piece in enumerate(pieces, start=1):
        if guard.feed(piece):
            return {
                "stopped_at": n,
                "kept_chars": len(guard.text),
                "reason": getattr(guard, "reason", ""),
            }
    return {"stopped_at": None, "kept_chars": len(guard.text), "reason": ""}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--questions", type=int, default=72)
    parser.add_argument("--old", help="a git revision whose guard to compare")
    parser.add_argument("--json", type=Path, default=Path("/tmp/research-stops.json"))
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="swarm-bench-stops-"))
    os.environ.setdefault("SWARM_LSP_MODELS", str(Path.home() / ".cache/swarm-lsp/models"))
    os.environ["SWARM_LSP_CACHE"] = str(work / "cache")
    root = research_ttft.corpus(work)

    from swarm_lsp.config import Settings
    from swarm_lsp.workers.refactor import backend
    from swarm_lsp.workers.research import answer, stopping
    from swarm_lsp.workers.research.index import WorkspaceIndex

    guards: dict[str, Any] = {"new": stopping.StopWhenDone}
    if args.old:
        guards["old"] = old_guard(args.old)
    index = WorkspaceIndex(root, Settings())
    index.update(dense=False)
    model = backend.local_chat_model(Settings())
    rows = []
    for q, _path, _symbol in research_ttft.questions(args.questions - 1):
        hits = index.search(q, 5, mode="sparse")
        pieces: list[str] = []
        generation = model._engine.chat(  # type: ignore[attr-defined]
            answer.build_messages(q, hits), max_tokens=CAP, temperature=0.0, on_token=pieces.append
        )
        row = {
            "question": q,
            "tokens": generation.completion_tokens,
            "ended_by_model": generation.stop_reason == "stop",
            "text": generation.text,
            "pieces": pieces,
        }
        row |= {name: replay(guard, pieces) for name, guard in guards.items()}
        rows.append(row)
        cuts = {name: row[name]["stopped_at"] for name in guards}
        print(f"{len(rows):3d} {row['tokens']:4d} tokens, ended {row['ended_by_model']}: {cuts}")
    index.close()
    args.json.write_text(json.dumps(rows, indent=1))
    report(rows, list(guards))
    return 0


def report(rows: list[dict[str, Any]], names: list[str]) -> None:
    ended = [r for r in rows if r["ended_by_model"]]
    capped = [r for r in rows if not r["ended_by_model"]]
    print(f"\n{len(rows)} answers: {len(ended)} ended by the model, {len(capped)} ran to {CAP}")
    print(
        "| guard | model-ended answers cut | tokens kept of those cut | capped answers stopped "
        "| stopped at (tokens) |"
    )
    print("| --- | --- | --- | --- | --- |")
    for name in names:
        cut = [r for r in ended if r[name]["stopped_at"] is not None]
        stopped = [r[name]["stopped_at"] for r in capped if r[name]["stopped_at"] is not None]
        kept = ", ".join(f"{r[name]['stopped_at']}/{r['tokens']}" for r in cut) or "-"
        print(
            f"| {name} | {len(cut)}/{len(ended)} | {kept} | {len(stopped)}/{len(capped)} "
            f"| {', '.join(map(str, sorted(stopped))) or '-'} |"
        )


if __name__ == "__main__":
    sys.exit(main())
