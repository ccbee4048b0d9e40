"""Task payloads: what the server sends for each task type (``to_json`` gives the wire form)."""

from __future__ import annotations

import dataclasses
from typing import Any


@dataclasses.dataclass(frozen=True, kw_only=True)
class DocumentEntry:
    """A document as the editor has it: ``version`` None and empty text is a file to create."""

    path: str  # relative to the project root, "/" separators
    uri: str
    version: int | None
    text: str

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_json(cls, raw: dict[str, Any]) -> DocumentEntry:
        version = raw.get("version")
        return cls(
            path=str(raw["path"]),
            uri=str(raw.get("uri") or ""),
            version=version if isinstance(version, int) else None,
            text=str(raw.get("text") or ""),
        )


def _target(path: str, range_json: dict[str, Any]) -> dict[str, Any]:
    return {"path": path, "range": range_json}


@dataclasses.dataclass(frozen=True, kw_only=True)
class RefactorPayload:
    """``refactor``: rewrite the target range following ``instruction``."""

    instruction: str
    documents: tuple[DocumentEntry, ...]
    target_path: str
    target_range: dict[str, Any]  # LSP Range JSON, 0-based
    context: str = ""

    def to_json(self) -> dict[str, Any]:
        return {
            "instruction": self.instruction,
            "documents": [d.to_json() for d in self.documents],
            "target": _target(self.target_path, self.target_range),
            "context": self.context,
        }


@dataclasses.dataclass(frozen=True, kw_only=True)
class ExplainPayload:
    """``explain`` and ``review``: Markdown about the target range."""

    documents: tuple[DocumentEntry, ...]
    target_path: str
    target_range: dict[str, Any]
    context: str = ""

    def to_json(self) -> dict[str, Any]:
        return {
            "documents": [d.to_json() for d in self.documents],
            "target": _target(self.target_path, self.target_range),
            "context": self.context,
        }


@dataclasses.dataclass(frozen=True, kw_only=True)
class ResearchPayload:
    """``research``: answer ``question`` from the project's index (``root`` on this machine)."""

    question: str
    top_k: int = 5
    root: str | None = None
    #: The editor's open files (relative paths, most recent first): the index fills their
    #: semantic vectors first.
    open_files: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {"question": self.question, "top_k": self.top_k}
        if self.root:
            data["root"] = self.root
        if self.open_files:
            data["open_files"] = list(self.open_files)
        return data


@dataclasses.dataclass(frozen=True, kw_only=True)
class IndexPayload:
    """``index``: bring the project's research index up to date."""

    root: str | None = None
    open_files: tuple[str, ...] = ()  # as in ResearchPayload: filled first

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {"root": self.root} if self.root else {}
        if self.open_files:
            data["open_files"] = list(self.open_files)
        return data


@dataclasses.dataclass(frozen=True, kw_only=True)
class TestPayload:
    """``test``: run the project's tests (``kind`` "test"), quality checks or a build."""

    __test__ = False  # not a pytest class

    kind: str = "test"
    root: str | None = None

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {"kind": self.kind}
        if self.root:
            data["root"] = self.root
        return data
