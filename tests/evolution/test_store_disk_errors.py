"""A disk full, a read-only file or an I/O error is not a damaged variant store: it is
``VariantStoreUnwritable`` (a ``VariantStoreUnavailable``) naming the cause and saying
nothing was changed, never ``CorruptStore``'s "move it away"; real damage stays
``CorruptStore``. Nothing stored before is lost, and the store works once the disk does.

Real failures where there is a way: SQLite's ``PRAGMA max_page_count`` (a real
SQLITE_FULL), a read-only file (``chmod``; as root, where ``chmod`` stops no write, the
file made immutable: ``chattr +i``), a malformed page. A COMMIT that fails and an I/O
error have no real way here (a full or failing file system is not available to a test):
they are raised at the sqlite3 boundary, the connection's ``execute``.
"""

from __future__ import annotations

import os
import pickle
import shutil
import sqlite3
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

import swarmvar.evolution.db as db
from swarmvar.evolution import open_home
from swarmvar.evolution.errors import (
    DISK_FULL,
    IO_ERROR,
    READ_ONLY,
    CorruptStore,
    VariantStoreMissing,
    VariantStoreUnavailable,
    VariantStoreUnwritable,
)

_INSERT = "INSERT INTO agents (agent_id, body) VALUES (?, ?)"


def _agents(database: db.Database) -> list[str]:
    return [str(r[0]) for r in database.read("SELECT agent_id FROM agents ORDER BY agent_id")]


def _write(database: db.Database, *names: str, size: int = 2000) -> None:
    with database.transaction() as conn:
        for name in names:
            conn.execute(_INSERT, (name, "x" * size))


def _not_damage(err: BaseException, store: object, cause: str) -> str:
    """The checks every disk error shares; its message."""
    assert isinstance(err, VariantStoreUnwritable) and isinstance(err, VariantStoreUnavailable)
    assert not isinstance(err, CorruptStore)
    said = str(err)
    assert err.cause == cause and f"the variant store {store} cannot be" in said, said
    assert f": {cause} (" in said and "nothing was changed" in said, said
    assert "not damaged" in said and "do not move it away" in said, said
    return said


def test_a_full_disk_is_named_and_loses_nothing(tmp_path: Path) -> None:
    """A real SQLITE_FULL (the file may not grow past its pages): VariantStoreUnwritable
    "disk full", the failed transaction wholly absent, the rows before it kept, and the
    next write passes once there is room."""
    home = open_home(tmp_path)
    database = home.db
    try:
        _write(database, "kept")
        pages = database.read_one("PRAGMA page_count")
        assert pages is not None
        database._conn.execute(f"PRAGMA max_page_count={pages[0]}")
        with pytest.raises(VariantStoreUnwritable) as got:
            for i in range(50):  # bounded: a page holds one 2000-byte row at most
                _write(database, f"a{i}", f"b{i}")
        said = _not_damage(got.value, database.path, DISK_FULL)
        assert "database or disk is full" in said and "free space" in said, said
        kept = _agents(database)
        assert "kept" in kept and len(kept) % 2 == 1, kept  # whole transactions only
        database._conn.execute("PRAGMA max_page_count=1073741823")
        _write(database, "after")
        assert _agents(database) == sorted([*kept, "after"])
    finally:
        home.close()


@contextmanager
def _read_only(path: Path) -> Iterator[None]:
    """``path`` read-only for this process, for real: mode 0444, or immutable as root (who
    may write any file whatever its mode); skipped when it cannot be made so."""
    if os.geteuid() != 0:
        path.chmod(0o444)
        try:
            yield
        finally:
            path.chmod(0o644)
        return
    chattr = shutil.which("chattr")
    if chattr is None:
        pytest.skip("running as root, where chmod stops no write, and no chattr to make "
                    "the file immutable")
    made = subprocess.run([chattr, "+i", str(path)], capture_output=True, text=True,
                          timeout=30, check=False)
    if made.returncode != 0:
        pytest.skip("running as root, where chmod stops no write, and the file cannot be "
                    f"made immutable here: {made.stderr.strip()}")
    try:
        yield
    finally:
        subprocess.run([chattr, "-i", str(path)], capture_output=True, timeout=30,
                       check=True)


def test_a_read_only_store_is_read_but_not_written(tmp_path: Path) -> None:
    """The store's file read-only (its -wal and -shm beside it as SQLite left them): it is
    opened and read, a write is VariantStoreUnwritable "read-only", nothing changed; once
    writable again the store is whole and takes writes."""
    home = open_home(tmp_path)
    _write(home.db, "kept")
    home.close()
    store = tmp_path / db.DB_FILE
    with _read_only(store):
        with pytest.raises(OSError):
            store.open("ab").close()  # read-only for real, for this process
        again = open_home(tmp_path)
        try:
            assert _agents(again.db) == ["kept"]
            with pytest.raises(VariantStoreUnwritable) as got:
                _write(again.db, "lost")
            said = _not_damage(got.value, store, READ_ONLY)
            assert "readonly database" in said and "writable" in said, said
            assert _agents(again.db) == ["kept"]
        finally:
            again.close()
    after = open_home(tmp_path)
    try:
        assert _agents(after.db) == ["kept"]
        _write(after.db, "after")
        assert _agents(after.db) == ["after", "kept"]
    finally:
        after.close()


def test_opening_a_read_only_store_that_needs_a_write(tmp_path: Path) -> None:
    """A lifecycle file not yet in WAL mode, read-only: the open's first write is refused,
    VariantStoreUnwritable, not "is not a usable lifecycle database ... move it away"."""
    store = tmp_path / db.DB_FILE
    conn = sqlite3.connect(store)
    conn.execute("CREATE TABLE agents (agent_id TEXT PRIMARY KEY, body TEXT NOT NULL)")
    conn.execute(_INSERT, ("kept", "x"))
    conn.commit()
    conn.close()
    with _read_only(store), pytest.raises(VariantStoreUnwritable) as got:
        open_home(tmp_path)
    _not_damage(got.value, store, READ_ONLY)
    home = open_home(tmp_path)
    try:
        assert _agents(home.db) == ["kept"]
    finally:
        home.close()


class _Failing:
    """The store's connection, with SQLite's error ``code`` raised by the first statement
    starting with ``verb`` (an I/O error cannot be made for real in a test)."""

    def __init__(self, conn: sqlite3.Connection, verb: str, code: int, text: str) -> None:
        self._conn, self._verb, self._code, self._text = conn, verb, code, text
        self.raised = 0

    def execute(self, sql: str, *args: Any) -> Any:
        if not self.raised and sql.lstrip().upper().startswith(self._verb):
            self.raised += 1
            exc = sqlite3.OperationalError(self._text)
            exc.sqlite_errorcode = self._code  # type: ignore[attr-defined]
            raise exc
        return self._conn.execute(sql, *args)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._conn, name)


@pytest.mark.parametrize(("code", "text", "cause"), [
    (778, "disk I/O error", IO_ERROR),  # SQLITE_IOERR_WRITE
    (13, "database or disk is full", DISK_FULL)])
def test_a_commit_that_fails_is_rolled_back(tmp_path: Path, code: int, text: str,
                                            cause: str) -> None:
    """COMMIT failing (its WAL frames not written: an I/O error, a disk full) leaves
    SQLite's transaction open: it is rolled back, the error names the cause, nothing of
    the transaction is stored and the next one begins."""
    home = open_home(tmp_path)
    database = home.db
    real = database._conn
    try:
        _write(database, "kept")
        failing = _Failing(real, "COMMIT", code, text)
        database._conn = failing  # type: ignore[assignment]
        with pytest.raises(VariantStoreUnwritable) as got:
            _write(database, "lost")
        assert failing.raised == 1 and not real.in_transaction
        _not_damage(got.value, database.path, cause)
        _write(database, "after")
        assert _agents(database) == ["after", "kept"]
    finally:
        database._conn = real
        home.close()


def test_an_io_error_on_a_read_is_not_damage(tmp_path: Path) -> None:
    """SQLITE_IOERR_READ on a query: "cannot be read or written: I/O error", check the
    disk; the next read passes."""
    home = open_home(tmp_path)
    database = home.db
    real = database._conn
    try:
        _write(database, "kept")
        database._conn = _Failing(real, "SELECT", 266, "disk I/O error")  # type: ignore
        with pytest.raises(VariantStoreUnwritable) as got:
            _agents(database)
        said = _not_damage(got.value, database.path, IO_ERROR)
        assert "cannot be read or written" in said and "check its disk" in said, said
        assert _agents(database) == ["kept"]
    finally:
        database._conn = real
        home.close()


def test_real_damage_is_still_corrupt(tmp_path: Path) -> None:
    """A malformed page of the agents table (SQLITE_CORRUPT): CorruptStore, "damaged"."""
    home = open_home(tmp_path)
    _write(home.db, *(f"a{i}" for i in range(40)))
    root = home.db.read_one("SELECT rootpage FROM sqlite_master WHERE name='agents'")
    size = home.db.read_one("PRAGMA page_size")
    home.close()
    assert root is not None and size is not None
    with open(tmp_path / db.DB_FILE, "r+b") as fh:
        fh.seek((root[0] - 1) * size[0])
        fh.write(b"\xff" * 8)  # the b-tree page's header
    again = open_home(tmp_path)
    try:
        with pytest.raises(CorruptStore, match="damaged") as got:
            again.db.read("SELECT body FROM agents")  # the table, not its key's index
        assert not isinstance(got.value, VariantStoreUnavailable)
        assert "malformed" in str(got.value)
    finally:
        again.close()


def test_which_errors_are_outside_the_store(tmp_path: Path) -> None:
    """By SQLite's primary code (extended codes too), else its message; damage, a lock and
    an unknown error are none; a read-only error of a file gone is VariantStoreMissing."""
    def coded(code: int | None, text: str) -> sqlite3.OperationalError:
        exc = sqlite3.OperationalError(text)
        if code is not None:
            exc.sqlite_errorcode = code  # type: ignore[attr-defined]
        return exc

    cases = [(13, "x", DISK_FULL), (8, "x", READ_ONLY), (1032, "x", READ_ONLY),
             (10, "x", IO_ERROR), (3338, "x", IO_ERROR), (11, "disk I/O error", None),
             (26, "x", None), (5, "x", None), (None, "database or disk is full", DISK_FULL),
             (None, "attempt to write a readonly database", READ_ONLY),
             (None, "disk I/O error", IO_ERROR),
             (None, "database disk image is malformed", None)]
    for code, text, cause in cases:
        assert db._outside(coded(code, text)) == cause, (code, text)
    assert db._outside(ValueError("disk I/O error")) is None
    there = tmp_path / "there.sqlite"
    there.write_bytes(b"")
    for side in ("-wal", "-shm"):
        Path(f"{there}{side}").write_bytes(b"")
    err = db._store_error(str(there), coded(13, "database or disk is full"), "damaged")
    assert isinstance(err, VariantStoreUnwritable) and err.cause == DISK_FULL
    gone = db._store_error(str(tmp_path / "gone.sqlite"), coded(1032, "readonly"), "damaged")
    assert isinstance(gone, VariantStoreMissing) and "No such file" in str(gone)
    damaged = db._store_error(str(there), coded(11, "malformed"), "damaged")
    assert isinstance(damaged, CorruptStore) and str(damaged) == "damaged"


def test_the_error_survives_a_pickle() -> None:
    err = VariantStoreUnwritable("/h/evolution.sqlite", DISK_FULL, "database or disk is full")
    back = pickle.loads(pickle.dumps(err))
    assert type(back) is VariantStoreUnwritable and str(back) == str(err)
    assert back.__dict__ == err.__dict__ and back.cause == DISK_FULL


def test_a_read_only_postgres_database_is_named(postgres_url: str) -> None:
    """A real read-only PostgreSQL session (``default_transaction_read_only``, as on a
    standby): its first write, the schema's, is VariantStoreUnwritable "read-only" (SQLSTATE
    25006), not CorruptStore; the database written before is whole."""
    from swarmvar.evolution.db import open_database

    first = open_database(postgres_url)
    try:
        _write(first, "kept")
    finally:
        first.close()
    read_only = f"{postgres_url}%20-cdefault_transaction_read_only%3Don"
    with pytest.raises(VariantStoreUnwritable) as got:
        open_database(read_only)
    said = _not_damage(got.value, read_only, READ_ONLY)
    assert "read-only transaction" in said, said
    again = open_database(postgres_url)
    try:
        assert _agents(again) == ["kept"]
    finally:
        again.close()


def test_postgres_disk_errors_by_sqlstate() -> None:
    """disk_full and io_error (no real way to make them in a test: psycopg's own error
    classes, as the server's SQLSTATE makes them), data_corrupted, and a password never
    shown."""
    import psycopg

    from swarmvar.evolution.postgres import database_error

    url = "postgresql://me:secret@db.example/lifecycle"
    for exc, cause in ((psycopg.errors.DiskFull("could not extend file"), DISK_FULL),
                       (psycopg.errors.IoError("could not read block"), IO_ERROR),
                       (psycopg.errors.ReadOnlySqlTransaction("read-only"), READ_ONLY)):
        err = database_error(url, exc)
        assert isinstance(err, VariantStoreUnwritable) and err.cause == cause, exc
        assert "secret" not in str(err) and "me@db.example/lifecycle" in str(err), err
    err = database_error("postgresql:///db?host=/s&password=secret&sslmode=disable",
                         psycopg.errors.DiskFull("no space left on device"))
    assert "secret" not in str(err) and "postgresql:///db?host=/s&sslmode=disable" in str(err)
    damaged = database_error(url, psycopg.errors.DataCorrupted("invalid page in block"))
    assert isinstance(damaged, CorruptStore) and "invalid page" in str(damaged)
