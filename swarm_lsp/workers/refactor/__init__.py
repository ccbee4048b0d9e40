"""Refactor role: validated diffs from a big model, plus explain and review."""
