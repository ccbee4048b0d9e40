"""What a research index reports: a run's stats, search hits and how complete the index is,
and the manifest's entry per file."""

from __future__ import annotations

import dataclasses
from typing import Any


@dataclasses.dataclass
class IndexStats:
    """What one indexing run did."""

    files_seen: int = 0
    files_indexed: int = 0
    files_unchanged: int = 0
    files_removed: int = 0
    chunks: int = 0
    points: int = 0
    dense_chunks: int = 0
    dense_points: int = 0
    skipped: list[tuple[str, str]] = dataclasses.field(default_factory=list)
    seconds: float = 0.0
    sparse_seconds: float = 0.0
    warnings: list[str] = dataclasses.field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data["skipped"] = [{"path": p, "reason": r} for p, r in self.skipped]
        return data


@dataclasses.dataclass(frozen=True)
class Hit:
    """One retrieved chunk."""

    path: str
    start_line: int
    end_line: int
    symbol: str
    kind: str
    score: float
    text: str

    def citation(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "line": self.start_line,
            "end_line": self.end_line,
            "symbol": self.symbol,
            "score": round(self.score, 4),
        }


class Hits(list[Hit]):
    """Search results, and how much of the index had dense vectors when they were found."""

    coverage: float = 1.0

    @property
    def partial(self) -> bool:
        return self.coverage < 1.0

    def note(self) -> str:
        """A line for the answer when the dense side was not complete, else ''."""
        if not self.partial:
            return ""
        return (
            f"(index {self.coverage:.0%} complete: semantic vectors are still being filled in; "
            "keyword matches cover every file)"
        )


@dataclasses.dataclass
class FileEntry:
    hash: str
    chunks: int
    dense: bool = False
    mtime_ns: int = 0
    size: int = -1


@dataclasses.dataclass(frozen=True)
class Coverage:
    """How complete the index is."""

    files: int
    points: int
    dense_points: int

    @property
    def fraction(self) -> float:
        return 1.0 if self.points == 0 else self.dense_points / self.points
