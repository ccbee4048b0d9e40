"""The mesh: every machine a peer (issue 14; docs/mesh.md)."""
