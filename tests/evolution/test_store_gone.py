"""A variant store gone for good: a home deleted is not made again by an open that must not
create (``create=False``, what a server uses after its start), and an open that cannot pass
stops at its first SQLITE_CANTOPEN instead of burning its retries (50 opens, 50 WAL
switches: ~2.5 s and ~6.4 s of sleeps per request before)."""

from __future__ import annotations

import shutil
import sqlite3
import time
from pathlib import Path
from typing import Any

import pytest

import swarmvar.evolution.db as db
from swarmvar.evolution import Database, open_home
from swarmvar.evolution.errors import VariantStoreMissing


def _made(home: Path) -> None:
    h = open_home(home)
    h.close()


def test_a_deleted_home_is_not_made_again(tmp_path: Path) -> None:
    home = tmp_path / "home"
    _made(home)
    shutil.rmtree(home)
    with pytest.raises(VariantStoreMissing, match=f"its home {home} is gone"):
        open_home(home, create=False)
    assert not home.exists()  # nothing made: no empty store answering []


def test_a_deleted_store_file_is_not_made_again(tmp_path: Path) -> None:
    home = tmp_path / "home"
    _made(home)
    for p in home.glob(db.DB_FILE + "*"):
        p.unlink()
    with pytest.raises(VariantStoreMissing, match="No such file or directory"):
        Database(home, create=False)
    assert list(home.glob(db.DB_FILE + "*")) == []


def test_a_home_that_is_there_opens_without_create(tmp_path: Path) -> None:
    home = tmp_path / "home"
    _made(home)
    h = open_home(home, create=False)
    try:
        assert h.variants.list() == []
    finally:
        h.close()
    _made(home)  # the default still makes what is missing
    shutil.rmtree(home)
    _made(home)
    assert (home / db.DB_FILE).is_file()


def test_a_dangling_link_stops_at_the_first_open(tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    """evolution.sqlite a link to a file gone: one attempt, no sleeps (it took 50 opens)."""
    home = tmp_path / "home"
    home.mkdir()
    (home / db.DB_FILE).symlink_to(tmp_path / "gone" / db.DB_FILE)
    connect = sqlite3.connect
    calls = []

    def counted(*args: Any, **kwargs: Any) -> sqlite3.Connection:
        calls.append(args)
        return connect(*args, **kwargs)

    monkeypatch.setattr(db.sqlite3, "connect", counted)
    start = time.perf_counter()
    with pytest.raises(VariantStoreMissing, match="No such file or directory"):
        open_home(home)
    assert len(calls) == 1 and time.perf_counter() - start < 1.0


class _WalRefused:
    """A connection whose WAL switch meets CANTOPEN after the link's target went away."""

    def __init__(self, conn: sqlite3.Connection, target: Path) -> None:
        self._conn, self._target = conn, target
        self.switches = 0

    def execute(self, sql: str, *args: Any) -> Any:
        if "journal_mode" in sql:
            self.switches += 1
            self._target.unlink(missing_ok=True)
            exc = sqlite3.OperationalError("unable to open database file")
            exc.sqlite_errorcode = 14  # type: ignore[attr-defined]
            raise exc
        return self._conn.execute(sql, *args)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._conn, name)


def test_a_wal_switch_on_a_file_gone_stops_at_once(tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    home, elsewhere = tmp_path / "home", tmp_path / "elsewhere"
    home.mkdir()
    elsewhere.mkdir()
    target = elsewhere / db.DB_FILE
    sqlite3.connect(target).close()
    (home / db.DB_FILE).symlink_to(target)
    made: list[_WalRefused] = []
    connect = db.Database._connect

    def planted(self: db.Database) -> Any:
        made.append(_WalRefused(connect(self), target))
        return made[-1]

    monkeypatch.setattr(db.Database, "_connect", planted)
    start = time.perf_counter()
    with pytest.raises(VariantStoreMissing, match="No such file or directory"):
        Database(home)
    assert [m.switches for m in made] == [1], made  # it retried 50 times (~6.4 s) before
    assert time.perf_counter() - start < 1.0
