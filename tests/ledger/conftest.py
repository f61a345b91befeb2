"""Fixtures shared by the ledger tests."""

from __future__ import annotations

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
