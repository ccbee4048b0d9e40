"""Tree-sitter code metrics for every language we have a grammar for.

Per function: length in lines, deepest nesting of control structures, and a cyclomatic
estimate (1 + decision points: branches, loops, handlers, boolean operators, ternaries).
Functions over a threshold become ``hint`` diagnostics at the function's name.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

from tree_sitter import Node

from swarm_lsp.context.languages import get_parser, language_for_path
from swarm_lsp.workers.testing.results import Diagnostic, diagnostic

FUNCTION_TYPES = frozenset(
    {
        "function_definition",  # python, c, cpp, lua
        "function_declaration",  # js, ts, go, lua
        "generator_function_declaration",
        "method_definition",  # js, ts
        "arrow_function",
        "function_expression",
        "method_declaration",  # go, java
        "constructor_declaration",
        "function_item",  # rust
    }
)

# Statements that open a nested block.
NESTING_TYPES = frozenset(
    {
        "if_statement",
        "for_statement",
        "for_in_statement",
        "for_range_loop",
        "enhanced_for_statement",
        "while_statement",
        "do_statement",
        "try_statement",
        "with_statement",
        "switch_statement",
        "expression_switch_statement",
        "type_switch_statement",
        "select_statement",
        "match_statement",
        "if_expression",
        "match_expression",
        "for_expression",
        "while_expression",
        "loop_expression",
        "repeat_statement",
    }
)

# Extra decision points that do not nest.
DECISION_TYPES = NESTING_TYPES - {"try_statement", "with_statement", "switch_statement"} | {
    "elif_clause",
    "else_if_clause",
    "except_clause",
    "catch_clause",
    "case_clause",
    "switch_case",
    "expression_case",
    "type_case",
    "match_arm",
    "case_statement",
    "conditional_expression",
    "ternary_expression",
    "boolean_operator",
    "elseif_statement",
}

_LOGICAL_OPERATORS = frozenset({"&&", "||", "and", "or"})


@dataclasses.dataclass(frozen=True)
class Thresholds:
    """When a metric becomes a hint."""

    max_lines: int = 60
    max_nesting: int = 4
    max_complexity: int = 10


@dataclasses.dataclass(frozen=True)
class FunctionMetrics:
    name: str
    line: int  # 0-based line of the name (or of the function when it has none)
    character: int
    lines: int
    nesting: int
    complexity: int


def _name_of(node: Node) -> tuple[str, Node]:
    name = node.child_by_field_name("name")
    if name is None:
        declarator = node.child_by_field_name("declarator")
        while declarator is not None and declarator.type not in {
            "identifier",
            "field_identifier",
            "qualified_identifier",
            "destructor_name",
            "operator_name",
        }:
            inner = declarator.child_by_field_name("declarator")
            if inner is None:
                break
            declarator = inner
        name = declarator
    if name is None or name.text is None:
        return "<anonymous>", node
    return name.text.decode("utf-8", "replace"), name


def _is_decision(node: Node) -> bool:
    if node.type in DECISION_TYPES:
        return True
    if node.type == "binary_expression":
        operator = node.child_by_field_name("operator")
        return operator is not None and operator.type in _LOGICAL_OPERATORS
    return False


def _walk_function(body: Node) -> tuple[int, int]:
    """(max nesting, decision points) inside one function, not descending into nested ones."""
    max_depth = 0
    decisions = 0
    stack: list[tuple[Node, int]] = [(child, 0) for child in body.children]
    while stack:
        node, depth = stack.pop()
        if node.type in FUNCTION_TYPES:
            continue
        if _is_decision(node):
            decisions += 1
        # ``else if`` chains are written as nested ifs in C-like grammars; do not count them
        # as deeper nesting.
        nested = node.type in NESTING_TYPES and not (
            node.parent is not None and node.parent.type in {"else_clause", "else"}
        )
        child_depth = depth + 1 if nested else depth
        max_depth = max(max_depth, child_depth)
        stack.extend((child, child_depth) for child in node.children)
    return max_depth, decisions


def function_metrics(source: bytes, language: str) -> list[FunctionMetrics]:
    """Metrics for every function in ``source``."""
    tree = get_parser(language).parse(source)
    out: list[FunctionMetrics] = []
    stack = [tree.root_node]
    while stack:
        node = stack.pop()
        if node.type in FUNCTION_TYPES:
            name, name_node = _name_of(node)
            nesting, decisions = _walk_function(node)
            out.append(
                FunctionMetrics(
                    name=name,
                    line=name_node.start_point[0],
                    character=name_node.start_point[1],
                    lines=node.end_point[0] - node.start_point[0] + 1,
                    nesting=nesting,
                    complexity=1 + decisions,
                )
            )
        stack.extend(reversed(node.children))
    out.sort(key=lambda m: m.line)
    return out


def metric_hints(
    path: Path, rel: str, thresholds: Thresholds, max_bytes: int = 1_000_000
) -> list[Diagnostic]:
    """Hint diagnostics for the functions of one file that cross a threshold."""
    language = language_for_path(path)
    if language is None:
        return []
    try:
        if path.stat().st_size > max_bytes:
            return []
        source = path.read_bytes()
    except OSError:
        return []
    hints: list[Diagnostic] = []
    for metric in function_metrics(source, language):
        problems: list[str] = []
        if metric.lines > thresholds.max_lines:
            problems.append(f"{metric.lines} lines (over {thresholds.max_lines})")
        if metric.nesting > thresholds.max_nesting:
            problems.append(f"nesting depth {metric.nesting} (over {thresholds.max_nesting})")
        if metric.complexity > thresholds.max_complexity:
            problems.append(
                f"cyclomatic complexity about {metric.complexity} "
                f"(over {thresholds.max_complexity})"
            )
        if problems:
            hints.append(
                diagnostic(
                    rel,
                    metric.line,
                    f"{metric.name}: " + ", ".join(problems),
                    severity="hint",
                    character=metric.character,
                    code="metrics",
                )
            )
    return hints


def thresholds_from(payload: dict[str, Any]) -> Thresholds:
    raw = payload.get("thresholds") or {}
    base = Thresholds()
    if not isinstance(raw, dict):
        return base
    values = {
        f.name: int(raw[f.name])
        for f in dataclasses.fields(Thresholds)
        if isinstance(raw.get(f.name), int) and raw[f.name] > 0
    }
    return dataclasses.replace(base, **values)
