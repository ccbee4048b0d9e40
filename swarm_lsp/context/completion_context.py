"""One completion prompt, computed afresh: a preamble, then the prefix and suffix around the
cursor, fitted to a token budget.

Stable material comes first so llama.cpp can reuse its evaluated prompt prefix; the server's
keystroke path keeps the prefix anchored across requests with
:mod:`swarm_lsp.context.completion_window`.
"""

from __future__ import annotations

from dataclasses import dataclass

from swarm_lsp.context.documents import Document
from swarm_lsp.context.files import WorkspaceFiles
from swarm_lsp.context.packing import TokenCounter, keep_head, keep_tail
from swarm_lsp.context.preamble import completion_preamble
from swarm_lsp.context.repomap import RepoMap
from swarm_lsp.context.text import decode

#: Share of the completion budget the preamble may use (the rest is prefix and suffix).
PREAMBLE_SHARE = 0.35
#: Share of what is left after the preamble that goes to the suffix.
SUFFIX_SHARE = 0.25


@dataclass(frozen=True)
class CompletionContext:
    """Context for one completion request.

    The prompt is ``preamble + prefix`` (then ``suffix`` for FIM models). ``symbols`` names
    the other-file definitions whose signatures made it into the preamble.
    """

    prefix: str
    suffix: str
    preamble: str
    language: str | None
    path: str
    tokens: int = 0
    symbols: tuple[str, ...] = ()

    @property
    def prompt_prefix(self) -> str:
        return self.preamble + self.prefix


def raw_suffix(doc: Document, offset: int, reach: int) -> str:
    """Up to ``reach`` bytes after the cursor, ending on a whole line unless at the end."""
    text = decode(doc.source[offset : offset + reach])
    if offset + reach < len(doc.source) and "\n" in text:
        text = text[: text.rfind("\n") + 1]
    return text


def completion_context(
    files: WorkspaceFiles,
    repomap: RepoMap,
    uri: str,
    line: int,
    character: int,
    budget: int,
    count: TokenCounter,
) -> CompletionContext:
    """Preamble + prefix/suffix around a cursor, fitted to ``budget`` tokens."""
    doc = files.document(uri)
    display = files.display_path(uri, doc)
    if doc is None:
        return CompletionContext("", "", "", None, display)
    offset = doc.offset_at(line, character)
    window = max(256, budget * 12)  # bytes: more than any budget can hold
    head_start = max(0, offset - window)
    prefix_raw = decode(doc.source[head_start:offset])
    if head_start > 0:
        prefix_raw = prefix_raw[prefix_raw.find("\n") + 1 :] if "\n" in prefix_raw else ""
    suffix_raw = raw_suffix(doc, offset, window)

    preamble_budget = int(budget * PREAMBLE_SHARE)
    preamble, symbols = completion_preamble(
        repomap, doc, display, offset, prefix_raw, suffix_raw, head_start, preamble_budget, count
    )
    remaining = max(0, budget - count(preamble))
    suffix = keep_head(suffix_raw, int(remaining * SUFFIX_SHARE), count)
    prefix = keep_tail(prefix_raw, remaining - count(suffix), count)
    tokens = count(preamble) + count(prefix) + count(suffix)
    return CompletionContext(prefix, suffix, preamble, doc.language, display, tokens, symbols)
