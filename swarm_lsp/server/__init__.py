"""The pygls language server: thin handlers over plain modules."""
