"""A variant store whose COMMIT fails once the ledger has grown: SQLite's own
``OperationalError`` "disk I/O error" (SQLITE_IOERR) raised at COMMIT from the store's real
connection, for the tests of a ledger note voided when its store's COMMIT fails
(``tests/cli/test_cli_variant_void.py``, ``tests/service/test_variant_void.py``), and
``stored``, a variant's status and version as its store holds them.

A test module imports them as ``from _commit_fails import fail_commit_after, stored``
(``tests/`` is on the path: ``tests/conftest.py``).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from _sqlite_codes import coded
from swarmvar.evolution import Database, VariantStatus, open_home


class _CommitFails:
    """A sqlite3 connection whose COMMIT raises SQLITE_IOERR while ``fail()`` says so
    (``commit_first``: after committing, as a server whose answer to COMMIT was lost)."""

    def __init__(self, conn: sqlite3.Connection, fail: Callable[[], bool],
                 commit_first: bool) -> None:
        self._conn, self._fail, self._commit_first = conn, fail, commit_first

    def execute(self, sql: str, *args: Any) -> Any:
        if sql.strip().upper() == "COMMIT" and self._fail():
            if self._commit_first:
                self._conn.execute(sql)
            raise coded(10, "disk I/O error")
        return self._conn.execute(sql, *args)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._conn, name)


def fail_commit_after(monkeypatch: pytest.MonkeyPatch, grown: Callable[[], bool],
                      commit_first: bool = False) -> list[int]:
    """Every variant store opened from now on fails its first COMMIT made once ``grown()``
    (the ledger holds the note); returns the count of COMMITs failed (a one-item list)."""
    failed: list[int] = [0]

    def fail() -> bool:
        if failed[0] == 0 and grown():
            failed[0] += 1
            return True
        return False

    real = Database._connect

    def connect(self: Database) -> Any:
        return _CommitFails(real(self), fail, commit_first)

    monkeypatch.setattr(Database, "_connect", connect)
    return failed


def stored(home: str | Path, vid: str) -> tuple[VariantStatus, int]:
    """Variant ``vid``'s status and version in ``home``'s variant store."""
    h = open_home(home)
    try:
        v = h.variants.get(vid)
        return v.status, v.version
    finally:
        h.close()
