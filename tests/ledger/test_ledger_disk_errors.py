"""A ledger whose disk is full, read-only or failing is ``LedgerUnwritable`` (a
``LedgerUnavailable``: the service's 503, a command's exit 2) naming the cause, the file,
that nothing was written or changed and what to do, never ``LedgerCorrupted``'s "is
damaged ... run ledger verify" nor "cannot append" (a 500); real damage stays
``LedgerCorrupted``. Nothing stored before is lost: the chain verifies, the entries before
are the same, and appends pass again once the cause is gone.

Real failures where there is a way: SQLite's ``PRAGMA max_page_count`` (a real
SQLITE_FULL), a read-only file (``chmod``; as root, where ``chmod`` stops no write, the
file made immutable: ``chattr +i``; the variant store's tests' ``_read_only``), a
read-only PostgreSQL session, a malformed page. A COMMIT that fails and an I/O error have
no real way here (a full or failing file system is not available to a test): they are
raised at the sqlite3 boundary, the connection's ``execute``.
"""

from __future__ import annotations

import pickle
import sqlite3
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from typer.testing import CliRunner

import swarmvar.ledger.damage as damage
import swarmvar.ledger.sqlite as sqlite_store
from _readonly import read_only  # tests/_readonly.py (on the path: tests/conftest.py)
from _sqlite_codes import coded, outside_cases  # tests/_sqlite_codes.py
from swarmvar.errors import LedgerCorrupted, LedgerUnavailable, LedgerUnwritable
from swarmvar.ledger import Ledger
from swarmvar.ledger.damage import DISK_FULL, IO_ERROR, READ_ONLY, DamageMemo

#: The rows' query of ``stream_rows`` (what reading entries runs).
_ROWS = "SELECT idx, timestamp, kind, data"


def _add(led: Ledger, n: int, size: int = 3000) -> None:
    for i in range(n):
        led.add_entry("action", {"i": i, "pad": "x" * size})


def _hashes(led: Ledger) -> list[bytes]:
    return [led.entry(i).hash for i in range(led.size)]


def _not_damage(err: BaseException, path: object, cause: str, done: str) -> str:
    """The checks every disk error shares; its message."""
    assert isinstance(err, LedgerUnwritable) and isinstance(err, LedgerUnavailable)
    assert isinstance(err, sqlite3.OperationalError) and not isinstance(err, LedgerCorrupted)
    said = str(err)
    assert err.cause == cause and said.startswith(f"the ledger {path} cannot be {done}: "
                                                  f"{cause} ("), said
    assert "nothing was" in said and "do not move it away" in said, said
    assert "nothing says the ledger is damaged" in said and said.count("damaged") == 1, said
    assert "cannot append" not in said, said
    return said


def _whole_after(led: Ledger, before: list[bytes]) -> None:
    """The entries before are the same, the chain verifies, and an append passes."""
    assert _hashes(led)[: len(before)] == before and led.size == len(before)
    assert led.verify_chain(processes=1).ok
    led.add_entry("action", {"after": True})
    assert led.size == len(before) + 1 and led.verify_chain(processes=1).ok


def test_a_full_disk_is_named_and_loses_nothing(tmp_path: Path) -> None:
    """A real SQLITE_FULL (the file may not grow past its pages): LedgerUnwritable "disk
    full" naming the file, the failed batch absent, the entries before kept, and the next
    append passes once there is room."""
    with Ledger.open(tmp_path, damage_memo=DamageMemo()) as led:
        _add(led, 2)
        conn = led.store._conn  # type: ignore[attr-defined]
        pages = conn.execute("PRAGMA page_count").fetchone()[0]
        conn.execute(f"PRAGMA max_page_count={pages}")
        with pytest.raises(LedgerUnwritable) as got:
            for _ in range(50):  # bounded: a page holds one 3000-byte entry at most
                before = _hashes(led)
                _add(led, 1)
        said = _not_damage(got.value, led.path, DISK_FULL, "appended to")
        assert "database or disk is full" in said and "nothing was written" in said, said
        assert "free space" in said and got.value.sqlite_errorcode == 13  # type: ignore
        conn.execute("PRAGMA max_page_count=1073741823")
        _whole_after(led, before)


def test_a_read_only_ledger_is_read_but_not_appended_to(
        tmp_path: Path, request: pytest.FixtureRequest) -> None:
    """The ledger file read-only for real: a writer opens it (its damage check runs),
    reads and verifies it; an append is LedgerUnwritable "read-only", nothing written; once
    writable again the same ledger takes appends."""
    with Ledger.open(tmp_path) as led:
        _add(led, 3, size=10)
        before = _hashes(led)
        path = led.path
    assert path is not None
    with read_only(path, request):
        with pytest.raises(OSError):
            path.open("ab").close()  # read-only for real, for this process
        with Ledger(tmp_path, damage_memo=DamageMemo()) as led:
            assert _hashes(led) == before and led.verify_chain(processes=1).ok
            with pytest.raises(LedgerUnwritable) as got:
                led.add_entry("action", {"lost": True})
            said = _not_damage(got.value, path, READ_ONLY, "appended to")
            assert "readonly database" in said and "writable" in said, said
            assert _hashes(led) == before
    with Ledger(tmp_path) as led:
        _whole_after(led, before)


class _Failing:
    """A connection with SQLite's error ``code`` raised by the first statement starting
    with ``sql`` (an I/O error, a COMMIT that fails: no real way to make them here)."""

    def __init__(self, conn: sqlite3.Connection, sql: str, code: int, text: str) -> None:
        self._conn, self._sql, self._code, self._text = conn, sql, code, text
        self.raised = 0

    def execute(self, sql: str, *args: Any) -> Any:
        if not self.raised and sql.lstrip().upper().startswith(self._sql):
            self.raised += 1
            exc = sqlite3.OperationalError(self._text)
            exc.sqlite_errorcode = self._code  # type: ignore[attr-defined]
            raise exc
        return self._conn.execute(sql, *args)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._conn, name)


@pytest.fixture
def ledger(tmp_path: Path) -> Iterator[Ledger]:
    with Ledger.open(tmp_path, damage_memo=DamageMemo()) as led:
        _add(led, 3, size=10)
        yield led


def _failing(led: Ledger, sql: str, code: int, text: str) -> tuple[_Failing, Any]:
    store = led.store
    real = store._conn  # type: ignore[attr-defined]
    failing = _Failing(real, sql, code, text)
    store._conn = failing  # type: ignore[attr-defined]
    return failing, real


@pytest.mark.parametrize(("code", "text", "cause"), [
    (778, "disk I/O error", IO_ERROR),  # SQLITE_IOERR_WRITE
    (13, "database or disk is full", DISK_FULL)])
def test_a_commit_that_fails_is_rolled_back(ledger: Ledger, code: int, text: str,
                                            cause: str) -> None:
    """COMMIT failing leaves SQLite's transaction open: it is rolled back, the error names
    the cause, nothing of the batch is stored and the next append passes."""
    before = _hashes(ledger)
    failing, real = _failing(ledger, "COMMIT", code, text)
    try:
        with pytest.raises(LedgerUnwritable) as got:
            ledger.add_entry("action", {"lost": True})
        assert failing.raised == 1 and not real.in_transaction
        _not_damage(got.value, ledger.path, cause, "appended to")
    finally:
        ledger.store._conn = real  # type: ignore[attr-defined]
    _whole_after(ledger, before)


def test_an_io_error_on_a_read_is_not_damage(ledger: Ledger) -> None:
    """SQLITE_IOERR_READ reading entries: LedgerUnwritable "cannot be read: I/O error",
    nothing changed, check the disk; verify_chain raises it (no failed verification saying
    "damaged"); the next read passes."""
    before = _hashes(ledger)
    _, real = _failing(ledger, _ROWS.upper(), 266, "disk I/O error")
    try:
        with pytest.raises(LedgerUnwritable) as got:
            ledger.entry(1)
        said = _not_damage(got.value, ledger.path, IO_ERROR, "read")
        assert "nothing was changed" in said and "check its disk" in said, said
        _failing(ledger, _ROWS.upper(), 266, "disk I/O error")
        with pytest.raises(LedgerUnwritable):
            ledger.verify_chain(processes=1)
    finally:
        ledger.store._conn = real  # type: ignore[attr-defined]
    _whole_after(ledger, before)


def test_an_io_error_in_the_damage_check_is_not_damage(
        ledger: Ledger, monkeypatch: pytest.MonkeyPatch) -> None:
    """``quick_check`` meeting SQLITE_IOERR on its own connection: signing a head raises
    LedgerUnwritable (nothing signed, nothing memoised), the next head is signed."""
    real_open = damage.open_read_only
    made: list[_Failing] = []

    def failing_open(path: Path, timeout: float = 5.0) -> Any:
        made.append(_Failing(real_open(path, timeout), "PRAGMA QUICK_CHECK", 266,
                             "disk I/O error"))
        return made[-1]

    monkeypatch.setattr(damage, "open_read_only", failing_open)
    with pytest.raises(LedgerUnwritable) as got:
        ledger.signed_head()
    _not_damage(got.value, ledger.path, IO_ERROR, "read")
    assert [f.raised for f in made] == [1]
    monkeypatch.undo()
    assert ledger.signed_head().size == ledger.size


def test_real_damage_is_still_corrupt(tmp_path: Path,
                                      smash_page: Callable[..., None]) -> None:
    """A malformed page (SQLITE_CORRUPT) stays LedgerCorrupted, "damaged"."""
    with Ledger.open(tmp_path) as led:
        _add(led, 40)
        path = led.path
    assert path is not None
    smash_page(path)
    with pytest.raises(LedgerCorrupted, match="damaged") as got:
        with Ledger(tmp_path, damage_memo=DamageMemo()):
            pass
    assert not isinstance(got.value, LedgerUnavailable)


def test_which_errors_are_outside_the_ledger(tmp_path: Path) -> None:
    """By SQLite's primary code (extended codes too), else its message; damage, a lock and
    an unknown error are none. Each is raised as: LedgerUnwritable (append or read), a lock
    LedgerUnavailable only, a read-only error of a file gone LedgerCorrupted naming it gone,
    damage LedgerCorrupted "is damaged"."""
    for code, text, cause in outside_cases(DISK_FULL, READ_ONLY, IO_ERROR):
        assert damage.outside(coded(code, text)) == cause, (code, text)
    assert damage.outside(ValueError("disk I/O error")) is None
    there = tmp_path / "there.sqlite"
    there.write_bytes(b"")
    for side in ("-wal", "-shm"):
        Path(f"{there}{side}").write_bytes(b"")
    full = sqlite_store._storage_error(coded(13, "database or disk is full"), there,
                                       " to append")
    assert isinstance(full, LedgerUnwritable) and full.cause == DISK_FULL
    assert full.doing == "append" and full.sqlite_errorcode == 13  # type: ignore
    read = sqlite_store._storage_error(coded(266, "disk I/O error"), there)
    assert isinstance(read, LedgerUnwritable) and read.doing == "read"
    locked = sqlite_store._storage_error(coded(5, "database is locked"), there)
    assert type(locked) is LedgerUnavailable
    gone = sqlite_store._storage_error(coded(1032, "readonly"), tmp_path / "gone.sqlite")
    assert isinstance(gone, LedgerCorrupted) and "No such file" in str(gone)
    damaged = sqlite_store._storage_error(coded(11, "malformed"), there)
    assert isinstance(damaged, LedgerCorrupted) and "is damaged" in str(damaged)
    assert set(LedgerUnwritable.REMEDY) == {DISK_FULL, READ_ONLY, IO_ERROR}


def test_the_error_survives_a_pickle() -> None:
    err = LedgerUnwritable("/h/ledger.sqlite", DISK_FULL, "database or disk is full",
                           "append")
    err.sqlite_errorcode = 13  # type: ignore[attr-defined]
    back = pickle.loads(pickle.dumps(err))
    assert type(back) is LedgerUnwritable and str(back) == str(err)
    assert back.__dict__ == err.__dict__ and back.sqlite_errorcode == 13


def test_ledger_verify_command_exits_2_naming_an_io_error(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """``swarmvar ledger verify`` meeting an I/O error reading entries: exit 2 with the
    LedgerUnwritable message (not exit 1 "damaged:"); without it, the ledger verifies."""
    from swarmvar.cli.ledger import app

    with Ledger.open(tmp_path) as led:
        _add(led, 3, size=10)
    real_connect = sqlite_store._connect

    def connect(path: Path, timeout: float, create: bool) -> Any:
        return _Failing(real_connect(path, timeout, create), _ROWS.upper(), 266,
                        "disk I/O error")

    monkeypatch.setattr(sqlite_store, "_connect", connect)
    result = CliRunner().invoke(app, ["verify", "--home", str(tmp_path)])
    text = " ".join(result.output.split())
    assert result.exit_code == 2, text
    assert "cannot be read: I/O error (disk I/O error)" in text and "damaged:" not in text
    monkeypatch.undo()
    result = CliRunner().invoke(app, ["verify", "--home", str(tmp_path)])
    assert result.exit_code == 0, result.output


def test_a_read_only_postgres_ledger_is_named(postgres_url: str,
                                              postgres_server: Any) -> None:
    """A real read-only PostgreSQL session (``default_transaction_read_only``, as on a
    standby): the ledger is read and verified; an append is LedgerUnwritable "read-only"
    (SQLSTATE 25006), nothing written, "the ledger database" named (the URL only logged);
    a new ledger in such a session cannot be opened (its tables not made); the ledger
    written before is whole and takes appends."""
    key = Ed25519PrivateKey.generate()
    with Ledger(postgres_url, signing_key=key) as led:
        _add(led, 3, size=10)
        before = _hashes(led)
    read_only = f"{postgres_url}%20-cdefault_transaction_read_only%3Don"
    with Ledger(read_only, signing_key=key, create=False) as led:
        assert _hashes(led) == before and led.verify_chain().ok
        with pytest.raises(LedgerUnwritable) as got:
            led.add_entry("action", {"lost": True})
        said = _not_damage(got.value, "database", READ_ONLY, "appended to")
        assert "read-only transaction" in said, said
    fresh = f"{postgres_server.new_schema()}%20-cdefault_transaction_read_only%3Don"
    with pytest.raises(LedgerUnwritable) as got:
        Ledger(fresh, signing_key=key)
    _not_damage(got.value, "database", READ_ONLY, "opened")
    with Ledger(postgres_url, signing_key=key) as led:
        _whole_after(led, before)


def test_postgres_disk_errors_by_sqlstate() -> None:
    """disk_full and io_error (no real way to make them in a test: psycopg's own error
    classes, as the server's SQLSTATE makes them), data_corrupted, and neither the URL nor
    its password shown ("the ledger database": a service's 503 body shows the message)."""
    import psycopg

    from swarmvar.ledger.postgres import database_error

    url = "postgresql://me:secret@db.example/ledger"
    for exc, cause in ((psycopg.errors.DiskFull("could not extend file"), DISK_FULL),
                       (psycopg.errors.IoError("could not read block"), IO_ERROR),
                       (psycopg.errors.ReadOnlySqlTransaction("read-only"), READ_ONLY)):
        err = database_error(url, exc, "append")
        assert isinstance(err, LedgerUnwritable) and err.cause == cause, exc
        assert "secret" not in str(err) and "db.example" not in str(err), err
        assert str(err).startswith("the ledger database cannot be appended to: "), err
    err = database_error("postgresql:///db?host=/s&password=secret&sslmode=disable",
                         psycopg.errors.DiskFull("no space left on device"), "read")
    assert "secret" not in str(err) and "host=" not in str(err) and "postgresql" not in str(err)
    assert isinstance(err, LedgerUnwritable) and err.doing == "read"
    damaged = database_error(url, psycopg.errors.DataCorrupted("invalid page in block"),
                             "read")
    assert isinstance(damaged, LedgerCorrupted) and "invalid page" in str(damaged)
