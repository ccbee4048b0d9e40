"""Test role: sandboxed test runs, build checks and quality analysis."""
