"""One typed payload and one typed result per task type, shared by the server and the workers.

A task crosses the wire as JSON (``Task.payload`` / ``Result.data``); these types are its
shape. The server builds payloads with them and reads results through them; workers read the
same keys (tests check that each role accepts what the server sends). Keys are snake_case, as
they always were on this wire.
"""

from swarm_lsp.tasks.payloads import (
    DocumentEntry,
    ExplainPayload,
    IndexPayload,
    RefactorPayload,
    ResearchPayload,
    TestPayload,
)
from swarm_lsp.tasks.results import (
    Citation,
    IndexResult,
    MarkdownResult,
    RefactorResult,
    ResearchResult,
    TestResult,
)

__all__ = [
    "Citation",
    "DocumentEntry",
    "ExplainPayload",
    "IndexPayload",
    "IndexResult",
    "MarkdownResult",
    "RefactorPayload",
    "RefactorResult",
    "ResearchPayload",
    "ResearchResult",
    "TestPayload",
    "TestResult",
]
