"""Helpers the CLI tests share (imported via ``sys.path``, as tests/mesh imports
``_mesh_harness``: with ``--import-mode=importlib`` test files cannot import each other)."""

from __future__ import annotations

#: ``swarmvar run``'s quick settings: three cheap agents, a short window, no live table.
RUN_FAST = ["--agents", "nig,bootstrap,student-t", "--window", "150", "--quiet"]


def plain(output: str) -> str:
    """The output without rich's error box, whitespace collapsed (messages wrap in the box)."""
    return " ".join(output.translate({ord(c): " " for c in "│╭╮╰╯─"}).split())
