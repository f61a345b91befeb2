"""SQLITE_CANTOPEN on the ledger's long-lived connection is not damage while the file is there.

SQLite says "unable to open database file" when a statement needs a file (a temporary
file for a sort, the WAL index) and the process has no descriptor left (EMFILE): the
store raises that ``sqlite3.OperationalError`` as it is (the service answers it 503), not
``LedgerCorrupted`` ("run ledger verify"). Planted on the connection: a real EMFILE at
the moment a statement opens a temporary file cannot be aimed at reliably. It is raised
as ``LedgerUnavailable`` (an ``sqlite3.OperationalError`` keeping SQLite's code, and a
``SwarmVarError`` a command prints as a usage error).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from swarmvar.errors import LedgerCorrupted, LedgerUnavailable
from swarmvar.ledger import EntryKind, Ledger


def _coded(text: str, code: int) -> sqlite3.OperationalError:
    exc = sqlite3.OperationalError(text)
    exc.sqlite_errorcode = code  # type: ignore[attr-defined]
    return exc


CANTOPEN = _coded("unable to open database file", 14)
CORRUPT = _coded("database disk image is malformed", 11)


class Planted:
    """The store's connection, with ``error`` raised by the next statement starting with
    ``verb`` (once)."""

    def __init__(self, conn: sqlite3.Connection, verb: str, error: BaseException) -> None:
        self._conn, self._verb, self._error = conn, verb, error
        self.raised = 0

    def execute(self, sql: str, *args: Any) -> Any:
        if self.raised == 0 and sql.lstrip().upper().startswith(self._verb):
            self.raised += 1
            raise self._error
        return self._conn.execute(sql, *args)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._conn, name)


@pytest.fixture
def led(tmp_path: Path) -> Iterator[Ledger]:
    ledger = Ledger.open(tmp_path / "home")
    for i in range(3):
        ledger.add_entry(EntryKind.ACTION, {"type": "x", "details": {"i": i}})
    yield ledger
    ledger.close()


def _plant(led: Ledger, verb: str, error: BaseException) -> Planted:
    store: Any = led.store
    planted = Planted(store._conn, verb, error)
    store._conn = planted
    return planted


def _unplant(led: Ledger) -> None:
    store: Any = led.store
    if isinstance(store._conn, Planted):
        store._conn = store._conn._conn


@pytest.mark.parametrize("read", ["size", "rows", "row_count"])
def test_cantopen_with_the_file_there_is_unavailable(led: Ledger, read: str) -> None:
    calls = {"size": lambda: led.store.size(), "rows": lambda: list(led.store.rows(0, 3)),
             "row_count": lambda: led.store.row_count()}
    n = led.store.size()
    planted = _plant(led, "SELECT", CANTOPEN)
    with pytest.raises(sqlite3.OperationalError) as got:
        calls[read]()
    _unplant(led)
    assert planted.raised == 1 and isinstance(got.value, LedgerUnavailable)
    assert not isinstance(got.value, LedgerCorrupted)
    assert got.value.sqlite_errorcode == 14  # type: ignore[attr-defined]
    assert "unable to open database file" in str(got.value) and "ulimit -n" in str(got.value)
    assert led.store.size() == n >= 3  # it passes


def test_an_append_meeting_cantopen_is_unavailable_and_writes_nothing(
        led: Ledger) -> None:
    n = led.store.size()
    planted = _plant(led, "COMMIT", CANTOPEN)
    with pytest.raises(sqlite3.OperationalError) as got:
        led.add_entry(EntryKind.ACTION, {"type": "x", "details": {"i": 3}})
    _unplant(led)
    assert planted.raised == 1 and isinstance(got.value, LedgerUnavailable)
    assert "to append (unable to open database file)" in str(got.value), got.value
    assert led.store.size() == n
    led.add_entry(EntryKind.ACTION, {"type": "x", "details": {"i": 3}})
    assert led.store.size() == n + 1 and led.verify_chain(processes=1).ok


def test_cantopen_with_the_file_gone_names_it(led: Ledger, tmp_path: Path) -> None:
    """The file moved away under the open connection: not a retry, and not "damaged"."""
    path = Path(led.store.path)  # type: ignore[attr-defined]
    path.rename(tmp_path / "moved.sqlite")
    _plant(led, "SELECT", CANTOPEN)
    with pytest.raises(LedgerCorrupted) as got:
        led.store.size()
    message = str(got.value)
    assert message.startswith(f"the ledger {path} cannot be opened (No such file or "
                              "directory; SQLite: unable to open database file)"), message
    assert "verify" not in message


def test_damage_is_still_damage(led: Ledger) -> None:
    _plant(led, "SELECT", CORRUPT)
    with pytest.raises(LedgerCorrupted, match="is damaged: database disk image is malformed; "
                                              "run `swarmvar ledger verify`"):
        led.store.size()
