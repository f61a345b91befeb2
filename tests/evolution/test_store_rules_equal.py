"""evolution.db keeps its own copy of ledger.damage's rules for a lock wait, a file SQLite
cannot open and a cause outside the file (disk full, read-only, I/O error: ``outside``),
and evolution.postgres of ledger.postgres's URL without its password (``shown``),
psycopg's words without the URL's parts (``scrubbed``), a URL's parameters (``url_params``),
what a message says of a PostgreSQL error (``category``, ``_said``, ``_named``: a fixed
category or psycopg's class name, and the SQLSTATE), the back-off after a failed connect
(``BACKOFF_S``) and SQLSTATEs of those causes (and of a server out of reach, of damage, of
the tables gone), and the full-disk reading of an I/O error (``full_disk``)
(engines do not import each other). The copies are held equal
as code: each pair's syntax trees are compared after the copy's names are mapped to the
original's (docstrings and annotations left out); the constants they read are equal; and
their answers on the errno cases of ``missing`` (ENOENT, EACCES, EMFILE, ENFILE) and of
``never_opens``."""

from __future__ import annotations

import ast
import errno
import inspect
import os
import textwrap
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psycopg
import pytest

import swarmvar.evolution.db as db
import swarmvar.evolution.errors as evolution_errors
import swarmvar.evolution.postgres as evolution_pg
import swarmvar.ledger.postgres as ledger_pg
from swarmvar.errors import LedgerUnwritable
from swarmvar.ledger import damage

#: The copy's names -> the original's.
RENAMED = {"_LOCK_CODES": "_LOCK_CODES", "_CANTOPEN": "CANTOPEN",
           "_NO_DESCRIPTOR": "NO_DESCRIPTOR", "_missing": "missing",
           "_OUTSIDE_CODES": "OUTSIDE_CODES", "_OUTSIDE_TEXT": "OUTSIDE_TEXT",
           "_FULL_IOERR": "_FULL_IOERR", "_FULL_BELOW": "FULL_BELOW"}
PAIRS: list[tuple[Callable[..., Any], Callable[..., Any]]] = [
    (db._is_lock_wait, damage.is_lock_wait), (db._cannot_open, damage.cannot_open),
    (db._missing, damage.missing), (db._never_opens, damage.never_opens),
    (db._out_of_descriptors, damage.out_of_descriptors), (db._outside, damage.outside),
    (evolution_pg.shown, ledger_pg.shown), (evolution_pg.scrubbed, ledger_pg.scrubbed),
    (evolution_pg.url_params, ledger_pg.url_params),
    (evolution_pg.category, ledger_pg.category), (evolution_pg._said, ledger_pg._said),
    (evolution_pg._named, ledger_pg._named),
    (evolution_pg._primary, ledger_pg._primary),
    (evolution_pg.connect_seconds, ledger_pg.connect_seconds),
    (db._is_damage, damage.is_damage),
    (db._full_disk, damage.full_disk)]


def _tree_of(source: str) -> str:
    """A function's syntax tree (from its ``source``) as text: renamed to ``f``, without
    docstring or annotations, the copy's module names mapped to the original's."""
    fn = ast.parse(textwrap.dedent(source)).body[0]
    assert isinstance(fn, ast.FunctionDef)
    fn.name = "f"
    if ast.get_docstring(fn) is not None:
        fn.body = fn.body[1:]
    fn.returns = None
    for a in (*fn.args.args, *fn.args.kwonlyargs):
        a.annotation = None
    for node in ast.walk(fn):
        if isinstance(node, ast.Name) and node.id in RENAMED:
            node.id = RENAMED[node.id]
    return ast.dump(fn)


def _tree(f: Callable[..., Any]) -> str:
    return _tree_of(inspect.getsource(f))


@pytest.mark.parametrize(("copy", "original"), PAIRS, ids=[p[1].__name__ for p in PAIRS])
def test_the_copy_is_the_same_code(copy: Callable[..., Any],
                                   original: Callable[..., Any]) -> None:
    assert _tree(copy) == _tree(original)


def test_the_comparison_sees_a_changed_rule() -> None:
    """The check itself can fail: the copy with one attribute changed (the folder's W_OK
    asked as R_OK) no longer compares equal, nor do two different rules."""
    source = inspect.getsource(db._missing)
    assert "os.W_OK" in source and _tree_of(source) == _tree(damage.missing)
    assert _tree_of(source.replace("os.W_OK", "os.R_OK")) != _tree(damage.missing)
    assert _tree(db._is_lock_wait) != _tree(damage.cannot_open)


def test_the_constants_are_equal() -> None:
    assert db._LOCK_CODES == damage._LOCK_CODES
    assert db._CANTOPEN == damage.CANTOPEN and db._NO_DESCRIPTOR == damage.NO_DESCRIPTOR
    causes = ("DISK_FULL", "READ_ONLY", "IO_ERROR")
    assert [getattr(evolution_errors, c) for c in causes] == [getattr(damage, c)
                                                               for c in causes]
    assert db._OUTSIDE_CODES == damage.OUTSIDE_CODES
    assert db._OUTSIDE_TEXT == damage.OUTSIDE_TEXT
    assert db._FULL_IOERR == damage._FULL_IOERR and db._FULL_BELOW == damage.FULL_BELOW
    assert evolution_pg._OUTSIDE_STATES == ledger_pg.OUTSIDE_STATES
    # what a server out of reach is, what damage is, and what a message never shows
    assert evolution_pg._UNREACHABLE_STATES == ledger_pg.UNREACHABLE_STATES
    assert evolution_pg._DAMAGE_STATES == ledger_pg._DAMAGE_STATES
    assert evolution_pg._HIDDEN == ledger_pg._HIDDEN
    # what a message says instead of psycopg's words, and the back-off after a failed connect
    assert evolution_pg._STATE_CATEGORIES == ledger_pg._STATE_CATEGORIES
    assert evolution_pg._WORD_CATEGORIES == ledger_pg._WORD_CATEGORIES
    assert evolution_pg._OUTSIDE_WORDS == ledger_pg._OUTSIDE_WORDS
    assert evolution_pg._NO_TABLE == ledger_pg._NO_TABLE
    assert evolution_pg.BACKOFF_S == ledger_pg.BACKOFF_S
    # each cause has its remedy in both stores' errors
    assert set(evolution_errors._REMEDY) == set(LedgerUnwritable.REMEDY) == set(
        damage.OUTSIDE_CODES.values())


def _failing_open(code: int) -> Callable[..., int]:
    def refuse(*args: object, **kwargs: object) -> int:
        raise OSError(code, os.strerror(code))
    return refuse


@pytest.mark.parametrize(("code", "said"), [
    (errno.EACCES, "Permission denied"), (errno.EMFILE, None), (errno.ENFILE, None),
    (errno.EISDIR, "Is a directory")])
def test_missing_answers_alike_on_each_errno(code: int, said: str | None, tmp_path: Path,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    store = tmp_path / "x.sqlite"
    store.write_bytes(b"")
    for side in ("-wal", "-shm"):
        Path(f"{store}{side}").write_bytes(b"")
    monkeypatch.setattr(os, "open", _failing_open(code))
    assert db._missing(str(store)) == damage.missing(store) == said
    if code in (errno.EMFILE, errno.ENFILE):
        assert db._out_of_descriptors() is damage.out_of_descriptors() is True


def test_missing_and_never_opens_on_files_gone(tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    gone = tmp_path / "gone.sqlite"
    link = tmp_path / "link.sqlite"
    link.symlink_to(tmp_path / "nowhere" / "x.sqlite")
    enoent = os.strerror(errno.ENOENT)
    assert db._missing(str(gone)) == damage.missing(gone) == enoent
    for create in (True, False):  # a dangling link is there: never created through
        assert db._never_opens(str(link), create) == damage.never_opens(link, create) == enoent
    assert db._never_opens(str(gone), False) == damage.never_opens(gone, False) == enoent
    assert db._never_opens(str(gone), True) is damage.never_opens(gone, True) is None
    lost = tmp_path / "lost" / "x.sqlite"
    assert db._never_opens(str(lost), True) == damage.never_opens(lost, True) == (
        f"its folder {lost.parent} is gone")
    monkeypatch.setattr(os, "access", lambda *a, **k: False)
    assert db._never_opens(str(gone), True) == damage.never_opens(gone, True) == (
        f"its folder {tmp_path} may not be written by this process")


def test_both_stores_hide_every_password_key() -> None:
    """The two ``shown`` (held equal above) drop every query key whose decoded name holds
    ``password``: libpq decodes keys, and ``sslpassword`` is the client key's passphrase."""
    from swarmvar.evolution.postgres import shown as store_shown
    from swarmvar.ledger.postgres import shown as ledger_shown

    for key in ("password", "PASSWORD", "p%61ssword", "sslpassword", "sslp%61ssword"):
        url = f"postgresql://me:pw@db.example/x?host=/s&{key}=secret&sslmode=disable"
        for shown in (store_shown, ledger_shown):
            said = shown(url)
            assert "secret" not in said and "pw" not in said, (key, said)
            assert said == "postgresql://me@db.example/x?host=/s&sslmode=disable", said


def test_both_stores_take_the_same_codes_for_damage() -> None:
    """SQLITE_CORRUPT, SQLITE_NOTADB and the two damage I/O errors (CORRUPTFS, DATA): one
    set in each copy of the rule, and the ledger calls them damage, not a disk error."""
    import sqlite3

    from swarmvar.errors import LedgerUnwritable
    from swarmvar.ledger import sqlite as sqlite_store

    assert db._DAMAGE_CODES == damage._DAMAGE_CODES
    assert db._DAMAGE_IOERR == damage._DAMAGE_IOERR == {8458, 8202}
    for code in (8458, 8202, 11, 26):
        exc = sqlite3.OperationalError("disk I/O error")
        exc.sqlite_errorcode = code  # type: ignore[attr-defined]
        assert damage.is_damage(exc) and db._is_damage(exc), code
        err = sqlite_store._storage_error(exc, Path("/nonexistent/ledger.sqlite"))
        assert not isinstance(err, LedgerUnwritable), (code, err)
    io = sqlite3.OperationalError("disk I/O error")
    io.sqlite_errorcode = 266  # type: ignore[attr-defined]  # a read's I/O error: the disk
    assert not damage.is_damage(io) and damage.outside(io) is not None


def test_both_stores_say_a_postgres_error_alike() -> None:
    """The same psycopg error: the same category or class name and SQLSTATE in both
    stores' messages, and the same class of answer (damage, outside cause, out of reach,
    other); neither shows psycopg's words."""
    import psycopg

    from swarmvar.errors import LedgerCorrupted, LedgerFailed, LedgerUnreachable
    from swarmvar.evolution.errors import (
        CorruptStore,
        VariantStoreFailed,
        VariantStoreUnreachable,
        VariantStoreUnwritable,
    )

    url = "postgresql://me@db.example/x"
    kinds = {LedgerCorrupted: CorruptStore, LedgerUnwritable: VariantStoreUnwritable,
             LedgerUnreachable: VariantStoreUnreachable, LedgerFailed: VariantStoreFailed}
    for exc in (psycopg.errors.DiskFull("no space zz1"),
                psycopg.errors.UndefinedTable("relation zz2"),
                psycopg.errors.AdminShutdown("terminating zz3"),
                psycopg.OperationalError('role "zz4" does not exist'),
                psycopg.errors.LockNotAvailable("could not obtain lock zz5")):
        ledger_err = ledger_pg.database_error(url, exc, "read")
        store_err = evolution_pg.database_error(url, exc)
        assert kinds[type(ledger_err)] is type(store_err), (exc, ledger_err, store_err)
        for err in (ledger_err, store_err):
            assert "zz" not in str(err), err
        detail = getattr(ledger_err, "detail", None)
        if detail:
            assert detail in str(store_err), (detail, store_err)


_SOCK = 'connection failed: connection to server on socket "/run/password_x/.s.PGSQL.5432" '


@pytest.mark.parametrize(("text", "said"), [
    (_SOCK + 'failed: FATAL:  too many connections for database "x"', "too many connections"),
    (_SOCK + 'failed: FATAL:  too many connections for role "bob"', "too many connections"),
    (_SOCK + 'failed: FATAL:  permission denied for database "x"\nDETAIL:  User does not '
             'have CONNECT privilege.', "permission denied"),
    (_SOCK + 'failed: FATAL:  database "password_x" does not exist', "no such database"),
    (_SOCK + 'failed: FATAL:  role "refused_one" does not exist', "authentication failed"),
    ('connection failed: connection to server at "10.0.0.9" (too_many.example), port 5432 '
     "failed: Connection refused", "connection refused"),
    ("failed to resolve host 'password.example': [Errno -2] Name or service not known",
     "host name not found"),
    ("consuming input failed: server closed the connection unexpectedly",
     "connection closed")])
def test_a_connects_category_reads_the_servers_answer_not_the_names(text: str,
                                                                    said: str) -> None:
    """Only the text after the last ``failed: `` is read, quoted names emptied, and a full
    server or a refused CONNECT comes before the database and role words, in both copies."""
    exc = psycopg.OperationalError(text)
    assert ledger_pg.category(exc) == evolution_pg.category(exc) == said


def test_a_refused_privilege_is_named_permission_denied_in_both_stores() -> None:
    import psycopg.errors

    exc = psycopg.errors.InsufficientPrivilege("permission denied for schema public")
    said = "permission denied, InsufficientPrivilege, SQLSTATE 42501"
    assert ledger_pg._named(exc) == evolution_pg._named(exc) == said
    lock = psycopg.errors.LockNotAvailable("canceling statement due to lock timeout")
    assert ledger_pg._named(lock) == "LockNotAvailable, SQLSTATE 55P03"


@pytest.mark.parametrize("port", ["0", "65536", "99999", "５４３２", "٥٤٣٢", "12a"])
def test_a_port_outside_1_to_65535_or_in_other_digits_is_refused_in_both(port: str) -> None:
    from swarmvar.errors import InvalidParameter

    url = f"postgresql://u@h:{port}/d" if port.isascii() else f"postgresql://u@h/d?port={port}"
    for store in (ledger_pg, evolution_pg):
        with pytest.raises(InvalidParameter, match="not a number from 1 to 65535"):
            store.url_params(url)
    assert ledger_pg.url_params("postgresql://u@h:65535/d")["port"] == "65535"


@pytest.mark.parametrize(("url", "env", "seconds"), [
    ("postgresql://h/d", None, 7), ("postgresql://h/d?connect_timeout=0", None, 7),
    ("postgresql://h/d?connect_timeout=-3", None, 7), ("postgresql://h/d", "0", 7),
    ("postgresql://h/d?connect_timeout=3", "20", 3), ("postgresql://h/d", "20", 20),
    ("postgresql://h/d?connect_timeout=2.5", None, 2)])
def test_a_connect_timeout_of_0_is_the_stores_default_not_psycopgs_130_s(
        url: str, env: str | None, seconds: int, monkeypatch: pytest.MonkeyPatch) -> None:
    if env is None:
        monkeypatch.delenv("PGCONNECT_TIMEOUT", raising=False)
    else:
        monkeypatch.setenv("PGCONNECT_TIMEOUT", env)
    for store in (ledger_pg, evolution_pg):
        assert store.connect_seconds(store.url_params(url), 7) == seconds


def test_an_unusable_pgconnect_timeout_names_the_environment_variable(
        monkeypatch: pytest.MonkeyPatch) -> None:
    from swarmvar.errors import InvalidParameter

    monkeypatch.setenv("PGCONNECT_TIMEOUT", "abc")
    for store in (ledger_pg, evolution_pg):
        with pytest.raises(InvalidParameter, match="the environment variable "
                                                   "PGCONNECT_TIMEOUT is not a number"):
            store.connect_seconds(store.url_params("postgresql://h/d"), 7)
        with pytest.raises(InvalidParameter, match="URL: its connect_timeout is not a"):
            store.connect_seconds(store.url_params("postgresql://h/d?connect_timeout=x1"), 7)
