"""Research role: index a workspace in Qdrant and answer questions with citations."""
