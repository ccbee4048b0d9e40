"""Shapes: geometry helpers and a report."""
