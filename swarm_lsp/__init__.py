"""swarm-lsp: a strictly local AI coding assistant that spreads its work over machines you own."""

__version__ = "0.1.0"
