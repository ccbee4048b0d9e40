"""Code context: tree-sitter grammars, incremental trees, tags, symbol index, repo map,
token-budgeted packing and zstd compression.

Plain Python: nothing here knows about LSP, pygls or the swarm's wire protocol.
"""
