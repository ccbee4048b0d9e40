"""Helpers for the role tests: a reporter that records what a role streams."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"


class RecordingReporter:
    """A TaskReporter that keeps every partial result and progress message."""

    def __init__(self) -> None:
        self.partials: list[tuple[str, dict[str, Any] | None]] = []
        self.progress_messages: list[tuple[str, int | None]] = []

    async def partial(self, text: str, data: dict[str, Any] | None = None) -> None:
        self.partials.append((text, data))

    async def progress(self, message: str, percentage: int | None = None) -> None:
        self.progress_messages.append((message, percentage))

    @property
    def text(self) -> str:
        return "".join(text for text, _ in self.partials)


@pytest.fixture
def reporter() -> RecordingReporter:
    return RecordingReporter()


@pytest.fixture
def fixtures_dir() -> Path:
    return FIXTURES
