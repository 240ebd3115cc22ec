"""Exact inference: the compiled junction-tree engine and what feeds it."""
