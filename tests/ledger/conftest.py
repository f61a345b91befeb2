"""Fixtures shared by the ledger tests."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

import swarmvar.ledger.damage as damage_module


@pytest.fixture
def calls(monkeypatch: pytest.MonkeyPatch) -> list[Path]:
    """The paths ``quick_check`` ran on, in order (the real check still runs)."""
    seen: list[Path] = []
    real = damage_module.quick_check

    def counting(path: Path, timeout: float = 60.0) -> str | None:
        seen.append(path)
        return real(path, timeout)

    monkeypatch.setattr(damage_module, "quick_check", counting)
    return seen


#: Page 3's b-tree header (4096-byte pages): its cell count and content offset.
PAGE_HEADER = 2 * 4096 + 3


def _smash_page(path: Path, at: int = PAGE_HEADER) -> None:
    with open(path, "r+b") as fh:
        fh.seek(at)
        fh.write(b"\xff" * 5)


@pytest.fixture
def smash_page() -> Callable[..., None]:
    """Damage a ledger file in place as SQLite's ``quick_check`` sees it: 5 bytes of
    0xff at ``at`` (default: page 3's b-tree header)."""
    return _smash_page
