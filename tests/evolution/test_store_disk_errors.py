"""Only damage is ``CorruptStore`` ("move it away"): SQLite's SQLITE_CORRUPT, SQLITE_NOTADB,
SQLITE_IOERR_CORRUPTFS, SQLITE_IOERR_DATA (PostgreSQL's XX001, XX002), as the ledger's
rule. A disk full, a read-only file or another I/O error is ``VariantStoreUnwritable`` (a
``VariantStoreUnavailable``) naming the cause and saying nothing was changed (after an I/O
error the store "may be intact": check the disk, then ``PRAGMA quick_check``); a
PostgreSQL server out of reach is ``VariantStoreUnreachable``; any other error the neutral
``VariantStoreFailed``. Nothing stored before is lost, and the store works once the disk
does.

Real failures where there is a way: SQLite's ``PRAGMA max_page_count`` (a real
SQLITE_FULL), a COMMIT whose WAL frames pass the process's file-size limit
(``RLIMIT_FSIZE`` in a subprocess, SIGXFSZ ignored: a real SQLITE_IOERR_WRITE or
SQLITE_FULL at COMMIT), a read-only file (``tests/_readonly.py``), a malformed page, a
broken constraint, a PostgreSQL connection ended by the server. A failing ROLLBACK and an
I/O error on a read have no real way here (a failing disk is not available to a test):
they are raised at the sqlite3 boundary, the connection's ``execute``.
"""

from __future__ import annotations

import json
import os
import pickle
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

import swarmvar.evolution.db as db
from _readonly import read_only  # tests/_readonly.py (on the path: tests/conftest.py)
from _sqlite_codes import coded, outside_cases  # tests/_sqlite_codes.py
from swarmvar.evolution import open_home
from swarmvar.evolution.errors import (
    DISK_FULL,
    IO_ERROR,
    READ_ONLY,
    CorruptStore,
    VariantStoreFailed,
    VariantStoreMissing,
    VariantStoreUnavailable,
    VariantStoreUnreachable,
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
    if cause == IO_ERROR:  # said neither damaged nor not: the disk and quick_check tell
        assert "may be intact" in said and "PRAGMA quick_check" in said, said
        assert "not damaged" not in said and "do not move it away" not in said, said
    else:
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


def test_a_read_only_store_is_read_but_not_written(tmp_path: Path,
                                                  request: pytest.FixtureRequest) -> None:
    """The store's file read-only (its -wal and -shm deleted by the last close and made
    again by the reopen, its folder writable): it is opened and read, a write is
    VariantStoreUnwritable "read-only", nothing changed; once writable again the store is
    whole and takes writes."""
    home = open_home(tmp_path)
    _write(home.db, "kept")
    home.close()
    store = tmp_path / db.DB_FILE
    assert not Path(f"{store}-wal").exists() and not Path(f"{store}-shm").exists()
    with read_only(store, request):
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


def test_opening_a_read_only_store_that_needs_a_write(tmp_path: Path,
                                                     request: pytest.FixtureRequest) -> None:
    """A lifecycle file not yet in WAL mode, read-only: the open's first write is refused,
    VariantStoreUnwritable, not "is not a usable lifecycle database ... move it away"."""
    store = tmp_path / db.DB_FILE
    conn = sqlite3.connect(store)
    conn.execute("CREATE TABLE agents (agent_id TEXT PRIMARY KEY, body TEXT NOT NULL)")
    conn.execute(_INSERT, ("kept", "x"))
    conn.commit()
    conn.close()
    with read_only(store, request), pytest.raises(VariantStoreUnwritable) as got:
        open_home(tmp_path)
    _not_damage(got.value, store, READ_ONLY)
    home = open_home(tmp_path)
    try:
        assert _agents(home.db) == ["kept"]
    finally:
        home.close()


_COMMIT_SCRIPT = """
import json, os, resource, signal, sys
from swarmvar.evolution import open_home
from swarmvar.evolution.errors import VariantStoreUnwritable
insert = "INSERT INTO agents (agent_id, body) VALUES (?, ?)"
home = open_home(sys.argv[1])
database = home.db
with database.transaction() as conn:
    conn.execute(insert, ("kept", "x"))
database.read("PRAGMA wal_checkpoint(TRUNCATE)")
files = [database.path + side for side in ("", "-wal", "-shm")]
limit = max(os.path.getsize(f) for f in files if os.path.exists(f)) + 4096
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit: EFBIG, not death
soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
resource.setrlimit(resource.RLIMIT_FSIZE, (limit, hard))
out = {"limit": limit, "body_done": False}
try:
    with database.transaction() as conn:
        for i in range(limit // 4000 + 20):  # bounded; their WAL frames pass the limit
            conn.execute(insert, (f"lost{i}", "y" * 4000))
        out["body_done"] = True  # the rows are in the page cache: COMMIT writes the WAL
    out["raised"] = None
except VariantStoreUnwritable as exc:
    out.update(raised=type(exc).__name__, cause=exc.cause, message=str(exc),
               open=database._conn.in_transaction)
resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
with database.transaction() as conn:
    conn.execute(insert, ("after", "z"))
out["agents"] = [r[0] for r in database.read("SELECT agent_id FROM agents ORDER BY 1")]
out["check"] = database.read("PRAGMA quick_check")[0][0]
home.close()
print(json.dumps(out))
"""


def test_a_commit_that_fails_for_real_is_rolled_back(tmp_path: Path) -> None:
    """A real failed COMMIT: in a subprocess whose file-size limit (RLIMIT_FSIZE, SIGXFSZ
    ignored) stops the transaction's WAL frames, written at COMMIT. VariantStoreUnwritable
    (SQLite's SQLITE_IOERR_WRITE for EFBIG, or SQLITE_FULL for a short write), the
    transaction gone whole, none of its rows stored; the limit raised, the next write
    passes and the store is whole (quick_check)."""
    done = subprocess.run([sys.executable, "-c", _COMMIT_SCRIPT, str(tmp_path)],
                          capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout.strip().splitlines()[-1])
    assert out["body_done"] is True, out  # the failure was the COMMIT's, not an INSERT's
    assert out["raised"] == "VariantStoreUnwritable", out
    assert out["cause"] in (IO_ERROR, DISK_FULL) and out["open"] is False, out
    assert f"the variant store {tmp_path / db.DB_FILE} cannot be" in out["message"], out
    assert "nothing was changed" in out["message"], out
    assert out["agents"] == ["after", "kept"] and out["check"] == "ok", out
    again = open_home(tmp_path)  # another process: nothing of the failed transaction
    try:
        assert _agents(again.db) == ["after", "kept"]
    finally:
        again.close()


class _Failing:
    """The store's connection, with SQLite's errors raised by the first statement starting
    with each verb (``{verb: (code, text)}``): a failing ROLLBACK, an I/O error on a read
    cannot be made for real in a test."""

    def __init__(self, conn: sqlite3.Connection,
                 errors: dict[str, tuple[int, str]]) -> None:
        self._conn, self._errors = conn, dict(errors)
        self.raised: list[str] = []

    def execute(self, sql: str, *args: Any) -> Any:
        verb = next((v for v in self._errors if sql.lstrip().upper().startswith(v)), None)
        if verb is not None:
            code, text = self._errors.pop(verb)
            self.raised.append(verb)
            exc = sqlite3.OperationalError(text)
            exc.sqlite_errorcode = code  # type: ignore[attr-defined]
            raise exc
        return self._conn.execute(sql, *args)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._conn, name)


@pytest.mark.parametrize("verb", ["INSERT", "COMMIT"])
def test_a_rollback_that_fails_too_raises_the_first_error(tmp_path: Path, verb: str) -> None:
    """An INSERT (or COMMIT) meets a disk full, then the ROLLBACK an I/O error: the disk
    full is raised (VariantStoreUnwritable), not the ROLLBACK's raw sqlite3 error; the
    connection, its transaction still open, is closed and opened again, so nothing of the
    transaction is read or stored and the next write passes."""
    home = open_home(tmp_path)
    database = home.db
    real = database._conn
    try:
        _write(database, "kept")
        failing = _Failing(real, {verb: (13, "database or disk is full"),
                                  "ROLLBACK": (778, "disk I/O error")})
        database._conn = failing  # type: ignore[assignment]
        with pytest.raises(VariantStoreUnwritable) as got:
            _write(database, "lost")
        assert failing.raised == [verb, "ROLLBACK"], failing.raised
        _not_damage(got.value, database.path, DISK_FULL)
        assert database._conn is not failing and not database._conn.in_transaction
        assert _agents(database) == ["kept"]
        _write(database, "after")
        assert _agents(database) == ["after", "kept"]
    finally:
        database._conn.close()
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
        database._conn = _Failing(real, {"SELECT": (266, "disk I/O error")})  # type: ignore
        with pytest.raises(VariantStoreUnwritable) as got:
            _agents(database)
        said = _not_damage(got.value, database.path, IO_ERROR)
        assert "cannot be read or written" in said and "check its disk" in said, said
        assert _agents(database) == ["kept"]
    finally:
        database._conn = real
        home.close()


@pytest.mark.parametrize(("code", "name"), [(8458, "SQLITE_IOERR_CORRUPTFS"),
                                            (8202, "SQLITE_IOERR_DATA")])
def test_an_io_error_that_is_damage_is_corrupt(tmp_path: Path, code: int, name: str) -> None:
    """The two I/O errors that say the data is damaged (the file system found it corrupt,
    a checksum differs): CorruptStore "damaged", not "may be intact"."""
    home = open_home(tmp_path)
    database = home.db
    real = database._conn
    try:
        database._conn = _Failing(real, {"SELECT": (code, "disk I/O error")})  # type: ignore
        with pytest.raises(CorruptStore, match="damaged") as got:
            _agents(database)
        assert not isinstance(got.value, VariantStoreUnavailable), name
        assert "may be intact" not in str(got.value)
    finally:
        database._conn = real
        home.close()


def test_another_error_is_neutral_not_damage(tmp_path: Path) -> None:
    """A real SQLITE_CONSTRAINT (a key written twice: a code bug, not damage) inside a
    transaction: VariantStoreFailed naming SQLite's error and its name, nothing of the
    transaction stored, not "damaged" nor "move it away"."""
    home = open_home(tmp_path)
    database = home.db
    try:
        _write(database, "kept")
        with pytest.raises(VariantStoreFailed) as got:
            _write(database, "new", "kept")
        said = str(got.value)
        assert isinstance(got.value, VariantStoreUnavailable), said
        assert not isinstance(got.value, (CorruptStore, VariantStoreUnwritable)), said
        assert "UNIQUE constraint failed: agents.agent_id" in said, said
        assert "SQLITE_CONSTRAINT_PRIMARYKEY" in said and "nothing was changed" in said, said
        assert "damaged" in said and "does not say the store is damaged" in said, said
        assert "move it away" not in said, said
        assert _agents(database) == ["kept"]
    finally:
        home.close()


def test_an_open_that_fails_otherwise_is_named(tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    """``Database._connect``: an error of ``sqlite3.connect`` other than "unable to open"
    goes through the same rule. A real one: this SQLite reads a file name that starts with
    ``file:`` as a URI (SQLITE_USE_URI), and a relative store ``file:x.db?vfs=nope`` names
    no VFS, SQLITE_ERROR at the connect: VariantStoreFailed, not CorruptStore."""
    monkeypatch.chdir(tmp_path)
    name = "file:x.db?vfs=nope"
    try:
        sqlite3.connect(name).close()
    except sqlite3.OperationalError as exc:
        assert "no such vfs" in str(exc)
    else:
        pytest.skip("this SQLite does not read file names as URIs (no SQLITE_USE_URI)")
    with pytest.raises(VariantStoreFailed) as got:
        db.Database(name)
    said = str(got.value)
    assert f"the variant store {name} failed (no such vfs: nope (SQLITE_ERROR))" in said, said
    assert not isinstance(got.value, CorruptStore) and "move it away" not in said, said


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


def test_which_errors_are_damage_outside_or_neither(tmp_path: Path) -> None:
    """Damage by SQLite's code only (CORRUPT, NOTADB with their extended codes, and the
    two damage I/O errors; a message says nothing); outside causes by the primary code,
    else the message; damage first, then outside, else the neutral VariantStoreFailed
    (SQLITE_NOMEM, SQLITE_INTERRUPT, SQLITE_PROTOCOL, SQLITE_CONSTRAINT, a message without
    a code); a read-only error of a file gone is VariantStoreMissing."""
    for code, text, cause in outside_cases(DISK_FULL, READ_ONLY, IO_ERROR):
        assert db._outside(coded(code, text)) == cause, (code, text)
    assert db._outside(ValueError("disk I/O error")) is None
    damage = [(11, True), (267, True), (26, True), (8458, True), (8202, True),
              (10, False), (266, False), (778, False), (3338, False), (13, False),
              (7, False), (9, False), (15, False), (19, False), (2067, False), (5, False),
              (None, False)]
    for code, is_damage in damage:
        assert db._is_damage(coded(code, "database disk image is malformed")) is is_damage, code
    assert db._is_damage(UnicodeDecodeError("utf-8", b"\xff", 0, 1, "bad")) is True
    there = tmp_path / "there.sqlite"
    there.write_bytes(b"")
    for side in ("-wal", "-shm"):
        Path(f"{there}{side}").write_bytes(b"")
    err = db._store_error(str(there), coded(13, "database or disk is full"), "damaged")
    assert isinstance(err, VariantStoreUnwritable) and err.cause == DISK_FULL
    gone = db._store_error(str(tmp_path / "gone.sqlite"), coded(1032, "readonly"), "damaged")
    assert isinstance(gone, VariantStoreMissing) and "No such file" in str(gone)
    for code in (11, 26, 8458, 8202):
        damaged = db._store_error(str(there), coded(code, "malformed"), "damaged")
        assert isinstance(damaged, CorruptStore) and str(damaged) == "damaged", code
    for code, text in ((7, "out of memory"), (9, "interrupted"), (15, "locking protocol"),
                       (19, "constraint failed"), (None, "database disk image is malformed")):
        err = db._store_error(str(there), coded(code, text), "damaged")
        assert type(err) is VariantStoreFailed and text in str(err), (code, err)
    io = db._store_error(str(there), coded(266, "disk I/O error"), "damaged")
    assert isinstance(io, VariantStoreUnwritable) and io.cause == IO_ERROR


def test_the_errors_survive_a_pickle() -> None:
    for err in (VariantStoreUnwritable("/h/evolution.sqlite", DISK_FULL,
                                       "database or disk is full"),
                VariantStoreFailed("/h/evolution.sqlite", "out of memory (SQLITE_NOMEM)"),
                VariantStoreUnreachable("postgresql://me@db/x", "connection refused")):
        back = pickle.loads(pickle.dumps(err))
        assert type(back) is type(err) and str(back) == str(err)
        assert back.__dict__ == err.__dict__


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
    said = _not_damage(got.value, "database", READ_ONLY)  # "the variant store database"
    assert "(read-only transaction, SQLSTATE 25006)" in said, said
    for part in ("postgresql://", "search_path", "cannot execute"):  # no URL, no psycopg
        assert part not in said, (part, said)
    again = open_database(postgres_url)
    try:
        assert _agents(again) == ["kept"]
    finally:
        again.close()


def test_a_postgres_server_out_of_reach_is_a_retry_not_damage(postgres_url: str) -> None:
    """A real connection ended by the server (pg_terminate_backend: SQLSTATE 57P01 or the
    connection lost) on a read, and a real server that is not there at the open:
    VariantStoreUnreachable (a VariantStoreUnavailable, 503), never CorruptStore."""
    import psycopg

    from swarmvar.evolution.db import open_database

    database = open_database(postgres_url)
    try:
        _write(database, "kept")
        pid = database.read_one("SELECT pg_backend_pid()")
        assert pid is not None
        with psycopg.connect(postgres_url, autocommit=True) as other:
            other.execute("SELECT pg_terminate_backend(%s)", (pid[0],))
        with pytest.raises(VariantStoreUnreachable) as got:
            _agents(database)
        assert isinstance(got.value, VariantStoreUnavailable)
        assert "cannot connect to the variant store" in str(got.value), got.value
    finally:
        database.close()
    with pytest.raises(VariantStoreUnreachable) as got:
        open_database("postgresql://me:secret@/db?host=/nonexistent-swarmvar-socket")
    said = str(got.value)
    assert "secret" not in said and "postgresql://" not in said, said
    assert "nonexistent-swarmvar-socket" not in said, said  # the URL is logged, not said
    assert "(connection refused)" in said, said  # a category, not psycopg's words
    assert got.value.path == "postgresql://me@/db?host=/nonexistent-swarmvar-socket"
    assert "check that its server is up" in said, said
    again = open_database(postgres_url)
    try:
        assert _agents(again) == ["kept"]
    finally:
        again.close()


def test_postgres_errors_by_sqlstate() -> None:
    """disk_full and io_error (no real way to make them in a test: psycopg's own error
    classes, as the server's SQLSTATE makes them); damage only for data_corrupted and
    index_corrupted, and the tables gone (42P01); a server out of reach; any other error
    neutral. Every message names "the variant store database" with a fixed category or
    psycopg's class name and the SQLSTATE: never the URL (its password, user, host,
    database) nor psycopg's words (they hold the resolved address, the environment's user
    and database), which the log keeps."""
    import psycopg

    from swarmvar.evolution.postgres import database_error

    url = "postgresql://svc_x2:secret@db.internal:6432/lifecycle?sslpassword=pw2"
    secret_words = "10.1.2.3 role svc_env_user"  # what psycopg's text may hold

    def clean(err: BaseException) -> str:
        said = str(err)
        for part in ("secret", "pw2", "svc_x2", "db.internal", "6432", "lifecycle",
                     "postgresql://", "10.1.2.3", "svc_env_user"):
            assert part not in said, (part, said)
        assert "the variant store database" in said, said
        return said

    for exc, cause, state in (
            (psycopg.errors.DiskFull(f"could not extend file {secret_words}"), DISK_FULL,
             "53100"),
            (psycopg.errors.IoError(f"could not read block {secret_words}"), IO_ERROR,
             "58030"),
            (psycopg.errors.ReadOnlySqlTransaction(f"read-only {secret_words}"), READ_ONLY,
             "25006")):
        err = database_error(url, exc)
        assert isinstance(err, VariantStoreUnwritable) and err.cause == cause, exc
        assert f"SQLSTATE {state}" in clean(err), err
    for exc in (psycopg.errors.DataCorrupted("invalid page in block 7 of relation x"),
                psycopg.errors.IndexCorrupted("index is corrupted")):
        damaged = database_error(url, exc)
        assert isinstance(damaged, CorruptStore) and str(exc) in str(damaged), exc
        assert "damaged" in clean(damaged) and "SQLSTATE XX00" in str(damaged), damaged
    gone = database_error(url, psycopg.errors.UndefinedTable(
        f'relation "variants" does not exist {secret_words}'))
    assert isinstance(gone, CorruptStore) and "lost its tables" in clean(gone), gone
    assert "UndefinedTable, SQLSTATE 42P01" in str(gone), gone
    for exc, category in (
            (psycopg.errors.AdminShutdown("terminating connection"),
             "connection ended by the server"),
            (psycopg.errors.CrashShutdown("crash"), "server shutting down"),
            (psycopg.errors.CannotConnectNow("the database system is starting up"),
             "server starting or shutting down"),
            (psycopg.errors.TooManyConnections("too many clients"), "too many connections"),
            (psycopg.errors.ConnectionException(f"connection failure {secret_words}"),
             "connection failed or lost"),
            (psycopg.OperationalError('connection to server at "10.1.2.3", port 6432 '
                                      'failed: FATAL: role "svc_env_user" does not exist'),
             "authentication failed"),
            (psycopg.OperationalError("the connection is closed"), "connection closed")):
        err = database_error(url, exc)
        assert type(err) is VariantStoreUnreachable, exc
        assert f"({category}" in clean(err), (category, err)
        assert err.path == "postgresql://svc_x2@db.internal:6432/lifecycle", err.path
    for exc, name in ((psycopg.errors.OutOfMemory(f"out of memory {secret_words}"),
                       "OutOfMemory, SQLSTATE 53200"),
                      (psycopg.errors.InsufficientPrivilege(
                          f"permission denied for table variants {secret_words}"),
                       "permission denied, InsufficientPrivilege, SQLSTATE 42501"),
                      (psycopg.errors.QueryCanceled("canceling statement"),
                       "QueryCanceled, SQLSTATE 57014"),
                      (psycopg.InterfaceError(f"not a PostgreSQL error {secret_words}"),
                       "InterfaceError, SQLSTATE none")):
        err = database_error(url, exc)
        assert type(err) is VariantStoreFailed and f"({name})" in clean(err), exc


def test_postgres_errors_are_logged_with_the_url_and_psycopgs_words(
        caplog: pytest.LogCaptureFixture) -> None:
    """What the message leaves out is in the log on ``swarmvar.evolution``: the URL
    without its password and psycopg's words (ERROR for damage, else WARNING)."""
    import logging

    import psycopg

    from swarmvar.evolution.postgres import _logged, database_error

    url = "postgresql://me:secret@db.example/lifecycle"
    for exc, level in ((psycopg.errors.InsufficientPrivilege("permission denied x"),
                        logging.WARNING),
                       (psycopg.errors.DataCorrupted("invalid page y"), logging.ERROR)):
        caplog.clear()
        with caplog.at_level(logging.WARNING, logger="swarmvar.evolution"):
            _logged(url, exc, database_error(url, exc))
        (record,) = caplog.records
        said = record.getMessage()
        assert record.levelno == level and "me@db.example/lifecycle" in said, said
        assert str(exc) in said and "secret" not in said, said


def test_a_malformed_postgres_url_is_a_usage_error_echoing_none_of_it() -> None:
    from swarmvar.errors import InvalidParameter
    from swarmvar.evolution.db import open_database

    for url in ("postgresql://me:s3cret@db.example:64x2/lifecycle",
                "postgresql://me:s3cret@db.example/lifecycle?bogus_opt=1"):
        with pytest.raises(InvalidParameter) as got:
            open_database(url)
        said = str(got.value)
        assert said.startswith("not a usable PostgreSQL URL"), said
        assert "s3cret" not in said and "db.example" not in said, said


def test_an_interrupted_read_only_file_is_made_writable_again(
        tmp_path: Path, request: pytest.FixtureRequest) -> None:
    """``tests/_readonly.py``: a ``with`` block left without its end (an interrupted test)
    leaves no immutable file: the clean-up its finalizer and the exit hook run
    (``_mutable_all``) makes it writable (as root, where the file is made immutable)."""
    import _readonly

    if os.geteuid() != 0:
        pytest.skip("as another user the file is only chmod 0444 (its finalizer restores "
                    "the mode); the immutable file is root's")
    store = tmp_path / "x.sqlite"
    store.write_bytes(b"")
    held = read_only(store, request)
    held.__enter__()  # never left: as if the test were interrupted inside the block
    with pytest.raises(OSError):
        store.open("ab").close()
    assert store in _readonly._IMMUTABLE
    _readonly._mutable_all()
    assert not _readonly._IMMUTABLE
    store.open("ab").close()  # writable again
