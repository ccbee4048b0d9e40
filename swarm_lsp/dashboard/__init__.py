"""``swarm-lsp dashboard``: a live web page of the swarm (served by swarm-lsp itself)."""
