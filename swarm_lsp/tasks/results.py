"""Task results: what a worker's final result means for each task type (``from_json`` reads
the wire form leniently: a missing field gets its empty value, never an exception)."""

from __future__ import annotations

import dataclasses
from typing import Any


def _str(data: dict[str, Any], key: str) -> str:
    value = data.get(key)
    return value if isinstance(value, str) else ""


@dataclasses.dataclass(frozen=True, kw_only=True)
class RefactorResult:
    edit: dict[str, Any]  # WorkspaceEdit JSON against the versions sent
    explanation: str = ""
    diff: str = ""
    model: str = ""

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> RefactorResult:
        edit = data.get("edit")
        return cls(
            edit=edit if isinstance(edit, dict) else {},
            explanation=_str(data, "explanation"),
            diff=_str(data, "diff"),
            model=_str(data, "model"),
        )


@dataclasses.dataclass(frozen=True, kw_only=True)
class MarkdownResult:
    """``explain`` / ``review``."""

    markdown: str
    model: str = ""

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> MarkdownResult:
        return cls(markdown=_str(data, "markdown"), model=_str(data, "model"))


@dataclasses.dataclass(frozen=True)
class Citation:
    path: str
    line: int  # 1-based

    def to_json(self) -> dict[str, Any]:
        return {"path": self.path, "line": self.line}


@dataclasses.dataclass(frozen=True, kw_only=True)
class ResearchResult:
    answer: str
    citations: tuple[Citation, ...] = ()
    model: str = ""

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ResearchResult:
        citations = []
        for item in data.get("citations") or []:
            if isinstance(item, dict) and item.get("path"):
                try:
                    line = max(int(item.get("line") or 1), 1)
                except (TypeError, ValueError):
                    line = 1
                citations.append(Citation(str(item["path"]), line))
        return cls(
            answer=_str(data, "answer"), citations=tuple(citations), model=_str(data, "model")
        )


@dataclasses.dataclass(frozen=True, kw_only=True)
class IndexResult:
    summary: str
    stats: dict[str, Any] = dataclasses.field(default_factory=dict)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> IndexResult:
        stats = data.get("stats")
        return cls(
            summary=_str(data, "summary") or "indexed",
            stats=stats if isinstance(stats, dict) else {},
        )


@dataclasses.dataclass(frozen=True, kw_only=True)
class TestResult:
    __test__ = False  # not a pytest class

    summary: str
    passed: bool
    diagnostics: tuple[dict[str, Any], ...] = ()

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> TestResult:
        found = data.get("diagnostics")
        return cls(
            summary=_str(data, "summary"),
            passed=bool(data.get("passed")),
            diagnostics=tuple(d for d in found or [] if isinstance(d, dict)),
        )
