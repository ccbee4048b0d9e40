"""Tree-sitter grammars from the per-language wheels, loaded on first use.

Each grammar wheel (``tree-sitter-python`` and friends) exposes a function returning a
pointer to its compiled language. We import a wheel only when its language is first asked
for, so starting the server costs nothing for languages the workspace does not use.

``Language`` objects are immutable and shared. A ``Parser`` is not safe to use from two
threads at once, so :func:`get_parser` keeps one parser per language *per thread*.
"""

from __future__ import annotations

import importlib
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path, PurePath

from tree_sitter import Language, Parser

from swarm_lsp.errors import ContextError


@dataclass(frozen=True)
class _Grammar:
    module: str  # the wheel's import name
    function: str  # the function in it that returns the language pointer


_GRAMMARS: dict[str, _Grammar] = {
    "python": _Grammar("tree_sitter_python", "language"),
    "javascript": _Grammar("tree_sitter_javascript", "language"),
    "typescript": _Grammar("tree_sitter_typescript", "language_typescript"),
    "tsx": _Grammar("tree_sitter_typescript", "language_tsx"),
    "go": _Grammar("tree_sitter_go", "language"),
    "rust": _Grammar("tree_sitter_rust", "language"),
    "java": _Grammar("tree_sitter_java", "language"),
    "c": _Grammar("tree_sitter_c", "language"),
    "cpp": _Grammar("tree_sitter_cpp", "language"),
    "lua": _Grammar("tree_sitter_lua", "language"),
}

#: Every language this package can parse, in a stable order.
LANGUAGES: tuple[str, ...] = tuple(_GRAMMARS)

_EXTENSIONS: dict[str, str] = {
    ".py": "python",
    ".pyi": "python",
    ".pyw": "python",
    ".js": "javascript",
    ".mjs": "javascript",
    ".cjs": "javascript",
    ".jsx": "javascript",  # the JavaScript grammar parses JSX
    ".ts": "typescript",
    ".mts": "typescript",
    ".cts": "typescript",
    ".tsx": "tsx",
    ".go": "go",
    ".rs": "rust",
    ".java": "java",
    ".c": "c",
    ".h": "c",  # ambiguous between C and C++; C parses the common subset
    ".cc": "cpp",
    ".cpp": "cpp",
    ".cxx": "cpp",
    ".c++": "cpp",
    ".hh": "cpp",
    ".hpp": "cpp",
    ".hxx": "cpp",
    ".h++": "cpp",
    ".ipp": "cpp",
    ".lua": "lua",
}

# LSP languageId values (as editors send them) that are not already our own names.
_LANGUAGE_IDS: dict[str, str] = {
    "javascriptreact": "javascript",
    "typescriptreact": "tsx",
    "c++": "cpp",
    "cuda-cpp": "cpp",
    "objective-c": "c",
    "python3": "python",
    "golang": "go",
}

_lock = threading.Lock()
_languages: dict[str, Language] = {}
_thread_parsers = threading.local()


def language_for_path(path: str | PurePath) -> str | None:
    """Our language name for a file path (by extension), or None when we have no grammar."""
    suffix = PurePath(path).suffix.lower()
    return _EXTENSIONS.get(suffix)


def language_for_id(language_id: str | None) -> str | None:
    """Our language name for an LSP ``languageId`` (``typescriptreact`` → ``tsx``), or None."""
    if not language_id:
        return None
    key = language_id.strip().lower()
    if key in _GRAMMARS:
        return key
    return _LANGUAGE_IDS.get(key)


def is_supported(name: str | None) -> bool:
    """True when ``name`` is one of :data:`LANGUAGES`."""
    return name in _GRAMMARS


def get_language(name: str) -> Language:
    """The tree-sitter ``Language`` for ``name``, importing its wheel on first use.

    Raises :class:`ContextError` for a name we have no grammar for, or a wheel that is
    missing or broken.
    """
    language = _languages.get(name)
    if language is not None:
        return language
    grammar = _GRAMMARS.get(name)
    if grammar is None:
        known = ", ".join(LANGUAGES)
        raise ContextError(f"no tree-sitter grammar for language {name!r} (known: {known})")
    with _lock:
        language = _languages.get(name)
        if language is None:
            try:
                module = importlib.import_module(grammar.module)
                pointer_fn: Callable[[], object] = getattr(module, grammar.function)
                language = Language(pointer_fn())
            except (ImportError, AttributeError, ValueError, TypeError) as err:
                package = grammar.module.replace("_", "-")
                raise ContextError(
                    f"cannot load the {name} grammar from {package}: {err}; "
                    f"reinstall it with `pip install {package}`"
                ) from err
            _languages[name] = language
    return language


def get_parser(name: str) -> Parser:
    """A ``Parser`` for ``name``, cached per thread (parsers must not be shared by threads)."""
    parsers: dict[str, Parser] | None = getattr(_thread_parsers, "parsers", None)
    if parsers is None:
        parsers = {}
        _thread_parsers.parsers = parsers
    parser = parsers.get(name)
    if parser is None:
        parser = Parser(get_language(name))
        parsers[name] = parser
    return parser


def language_of(path: str | Path | None, language_id: str | None = None) -> str | None:
    """Best guess: the LSP languageId when it names a grammar, else the file extension."""
    by_id = language_for_id(language_id)
    if by_id is not None:
        return by_id
    if path is None:
        return None
    return language_for_path(path)
