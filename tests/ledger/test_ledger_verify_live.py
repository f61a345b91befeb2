"""``verify_chain`` on a ledger that another writer appends to, and rows outside the chain."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from swarmvar.ledger import EntryKind, Ledger


def _build(home: Path, n: int = 20) -> Path:
    with Ledger.open(home) as ledger:
        for k in range(n):
            ledger.add_entry(EntryKind.ACTION, {"k": k})
    return home / "ledger.sqlite"


def test_an_append_between_the_size_and_the_row_count_is_not_damage(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A run appending while ``ledger verify`` reads: the rows past the size verify read
    are the writer's, not damage (this raced in a CLI test: '20 entry rows but 0..17')."""
    _build(tmp_path)
    with Ledger.open(tmp_path) as reader, Ledger.open(tmp_path) as writer:
        store = reader._store
        counted = store.row_count

        def append_then_count(below: int | None = None) -> int:
            writer.add_entry(EntryKind.ACTION, {"late": True})
            writer.add_entry(EntryKind.ACTION, {"late": True})
            return counted(below)

        monkeypatch.setattr(store, "row_count", append_then_count)
        result = reader.verify_chain()
    assert result.ok, result
    with Ledger.open(tmp_path) as again:
        assert again.verify_chain().ok and again.size == 23  # genesis + 20 + 2


def test_a_row_outside_the_chain_is_still_damage(tmp_path: Path) -> None:
    path = _build(tmp_path)
    con = sqlite3.connect(path)
    try:
        row = con.execute("SELECT timestamp, kind, data, previous_hash, hash, nodes "
                          "FROM entries WHERE idx = 3").fetchone()
        con.execute("INSERT INTO entries (idx, timestamp, kind, data, previous_hash, hash, "
                    "nodes) VALUES (-1, ?, ?, ?, ?, ?, ?)", row)
        con.commit()
    finally:
        con.close()
    with Ledger.open(tmp_path) as ledger:
        result = ledger.verify_chain()
    assert not result.ok and "rows outside the chain" in (result.reason or "")
