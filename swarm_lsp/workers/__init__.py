"""Worker runtime and the refactor, research and test roles."""
