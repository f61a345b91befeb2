"""Data files shipped with swarmvar (read through importlib.resources)."""
