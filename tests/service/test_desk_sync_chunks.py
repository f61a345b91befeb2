"""``Desk.sync`` reads another process's entries in chunks and counts each absorbed row as
seen at once: a lock met on a later chunk (the request answered 503, then retried) resumes
after the last row absorbed, so no beat is applied twice."""

from __future__ import annotations

import sqlite3
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import swarmvar.ledger.sqlite as sqlite_store
from swarmvar.arbiter import Arbiter
from swarmvar.ledger import Ledger
from swarmvar.service.desk import DatedReturn, Desk

from .conftest import sqlite_lock_error

CHUNK = 3


def _desk(home: Path) -> Desk:
    return Desk(Ledger.open(home), home, observers=(Arbiter(record_decisions=False),))


def _history() -> list[DatedReturn]:
    rng = np.random.default_rng(7)
    return [DatedReturn(date(2020, 1, 1) + timedelta(days=i), float(rng.standard_t(5) * 0.01))
            for i in range(60)]


class _LockedOnSecondChunk:
    """The store's connection, whose second chunk query meets a lock (SQLite's own error,
    raised by a real exclusive lock on another file)."""

    def __init__(self, conn: sqlite3.Connection, error: sqlite3.OperationalError) -> None:
        self._conn = conn
        self._error = error
        self.chunks = 0

    def execute(self, sql: str, *args: Any) -> Any:
        if "ORDER BY idx LIMIT" in sql:
            self.chunks += 1
            if self.chunks == 2:
                raise self._error
        return self._conn.execute(sql, *args)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._conn, name)


_lock_error = sqlite_lock_error


def test_a_lock_on_a_later_chunk_keeps_the_rows_absorbed(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    home = tmp_path / "home"
    writer = _desk(home)
    reader = _desk(home)
    try:
        writer.create("a", _history(), key_id="k")
        assert reader.sync() > 0 and reader.info("a").beats == writer.info("a").beats
        start = reader.ledger_size
        for i in range(4):  # one beat per call: several entries each
            day = date(2020, 3, 1) + timedelta(days=i)
            writer.ingest("a", [DatedReturn(day, 0.01 - i * 0.004)], key_id="k")
        size = writer.ledger_size
        assert size - start > 2 * CHUNK, (start, size)  # the rows span three chunks or more

        store = reader.ledger.store
        monkeypatch.setattr(sqlite_store, "_CHUNK", CHUNK)
        flaky = _LockedOnSecondChunk(store._conn, _lock_error(tmp_path))
        monkeypatch.setattr(store, "_conn", flaky)
        with pytest.raises(sqlite3.OperationalError, match="locked"):
            reader.sync()
        assert flaky.chunks == 2 and reader.ledger_size == start + CHUNK  # chunk 1 counted

        monkeypatch.setattr(store, "_conn", flaky._conn)  # the lock is gone: the retry
        assert reader.sync() == size - start - CHUNK
        assert reader.ledger_size == size
        mine = [(p.seq, p.as_of, p.var) for p in reader.points("a")]
        theirs = [(p.seq, p.as_of, p.var) for p in writer.points("a")]
        assert mine == theirs and len({seq for seq, _, _ in mine}) == len(mine)
        assert reader.info("a").beats == writer.info("a").beats
    finally:
        writer.ledger.close()
        reader.ledger.close()
