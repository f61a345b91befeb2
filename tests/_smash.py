"""Damage a SQLite ledger file in place as ``PRAGMA quick_check`` sees it, shared by the
ledger tests (the ``smash_page`` fixture) and the mesh tests (``from _smash import
smash_page``: ``tests/conftest.py`` puts ``tests/`` on ``sys.path``)."""

from __future__ import annotations

from pathlib import Path

#: Page 3's b-tree header (4096-byte pages): its cell count and content offset.
PAGE_HEADER = 2 * 4096 + 3


def smash_page(path: Path, at: int = PAGE_HEADER) -> None:
    """Overwrite 5 bytes at ``at`` (default: page 3's b-tree header) with 0xff."""
    with open(path, "r+b") as fh:
        fh.seek(at)
        fh.write(b"\xff" * 5)
