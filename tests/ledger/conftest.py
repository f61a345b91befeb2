"""Fixtures shared by the ledger tests."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

import _smash  # tests/_smash.py (on the path: tests/conftest.py)
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


@pytest.fixture
def smash_page() -> Callable[..., None]:
    """Damage a ledger file in place as SQLite's ``quick_check`` sees it: 5 bytes of
    0xff at ``at`` (default: page 3's b-tree header)."""
    return _smash.smash_page
