"""The storage rules both stores share, one copy in ``swarmvar.storerules`` (engines do not
import each other): the ledger's (``ledger.damage``, ``ledger.sqlite``, ``ledger.postgres``)
and the variant store's (``evolution.db``, ``evolution.postgres``) use that copy, under the
names each module gave them; and the rules' answers: on the errno cases of ``missing``
(ENOENT, EACCES, EMFILE, ENFILE) and of ``never_opens``, on the damage codes, on what a
message says of a PostgreSQL error (category, SQLSTATE, class of answer), on ports and on
connect timeouts."""

from __future__ import annotations

import errno
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psycopg
import pytest

import swarmvar.evolution.db as db
import swarmvar.evolution.errors as evolution_errors
import swarmvar.evolution.postgres as evolution_pg
import swarmvar.ledger.postgres as ledger_pg
from swarmvar import storerules as rules
from swarmvar.errors import LedgerUnwritable
from swarmvar.ledger import damage
from swarmvar.ledger import sqlite as ledger_sqlite

#: (module, its name for the rule, the shared rule's name): every store's name of a rule.
USES = [
    (db, "_is_lock_wait", "is_lock_wait"), (db, "_cannot_open", "cannot_open"),
    (db, "_missing", "missing"), (db, "_never_opens", "never_opens"),
    (db, "_out_of_descriptors", "out_of_descriptors"), (db, "_outside", "outside"),
    (db, "_is_damage", "is_damage"), (db, "_full_disk", "full_disk"),
    *[(m, n, n) for m in (damage, ledger_sqlite) for n in (
        "is_lock_wait", "cannot_open", "missing", "never_opens", "out_of_descriptors",
        "outside", "is_damage", "full_disk")],
    *[(damage, n, n) for n in ("LOCK_CODES", "CANTOPEN", "NO_DESCRIPTOR", "DAMAGE_CODES",
                               "DAMAGE_IOERR", "OUTSIDE_CODES", "OUTSIDE_TEXT",
                               "FULL_IOERR", "FULL_BELOW")],
    *[(m, n, n) for m in (damage, evolution_errors, db, ledger_sqlite)
      for n in ("DISK_FULL", "READ_ONLY", "IO_ERROR") if hasattr(m, n)],
    *[(m, n, n) for m in (ledger_pg, evolution_pg) for n in (
        "shown", "scrubbed", "category", "said", "named", "primary", "connect_seconds",
        "BACKOFF_S", "unreachable")],
    (ledger_pg, "OUTSIDE_STATES", "OUTSIDE_STATES"),
    (ledger_pg, "UNREACHABLE_STATES", "UNREACHABLE_STATES"),
    (evolution_pg, "_OUTSIDE_STATES", "OUTSIDE_STATES"),
    *[(m, n, n) for m in (ledger_pg, evolution_pg) for n in ("DAMAGE_STATES", "NO_TABLE",
                                                             "OUTSIDE_WORDS")],
]


@pytest.mark.parametrize(("module", "name", "shared"), USES,
                         ids=[f"{m.__name__}.{n}" for m, n, _ in USES])
def test_each_store_uses_the_one_copy(module: Any, name: str, shared: str) -> None:
    """Not a copy held equal: the very object of ``swarmvar.storerules``."""
    assert getattr(module, name) is getattr(rules, shared)


def test_url_params_is_each_stores_thin_wrapper_naming_its_database(
        caplog: pytest.LogCaptureFixture) -> None:
    """The shared rule raises what the store's ``url_error`` makes of a malformed URL: the
    ledger's and the variant store's name their own database in the log, never the URL's
    password; both raise the same usage error."""
    from swarmvar.errors import InvalidParameter

    url = "postgresql://me:secretpw@h/d?nosuchoption=1"
    said = []
    for store, name in ((ledger_pg, "the ledger database"),
                        (evolution_pg, "the variant store database")):
        caplog.clear()
        with caplog.at_level("WARNING"), pytest.raises(InvalidParameter) as got:
            store.url_params(url)
        said.append(str(got.value))
        assert name in caplog.text and "secretpw" not in caplog.text, caplog.text
    assert said[0] == said[1] and "secretpw" not in said[0]


def test_each_cause_has_its_remedy_in_both_stores_errors() -> None:
    assert set(evolution_errors._REMEDY) == set(LedgerUnwritable.REMEDY) == set(
        rules.OUTSIDE_CODES.values()) == set(rules.OUTSIDE_STATES.values())


def _failing_open(code: int) -> Callable[..., int]:
    def refuse(*args: object, **kwargs: object) -> int:
        raise OSError(code, os.strerror(code))
    return refuse


@pytest.mark.parametrize(("code", "said"), [
    (errno.EACCES, "Permission denied"), (errno.EMFILE, None), (errno.ENFILE, None),
    (errno.EISDIR, "Is a directory")])
def test_missing_answers_on_each_errno(code: int, said: str | None, tmp_path: Path,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    store = tmp_path / "x.sqlite"
    store.write_bytes(b"")
    for side in ("-wal", "-shm"):
        Path(f"{store}{side}").write_bytes(b"")
    monkeypatch.setattr(os, "open", _failing_open(code))
    assert rules.missing(str(store)) == rules.missing(store) == said  # a str or a Path
    if code in (errno.EMFILE, errno.ENFILE):
        assert rules.out_of_descriptors() is True


def test_missing_and_never_opens_on_files_gone(tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    gone = tmp_path / "gone.sqlite"
    link = tmp_path / "link.sqlite"
    link.symlink_to(tmp_path / "nowhere" / "x.sqlite")
    enoent = os.strerror(errno.ENOENT)
    assert rules.missing(str(gone)) == rules.missing(gone) == enoent
    for create in (True, False):  # a dangling link is there: never created through
        assert rules.never_opens(str(link), create) == rules.never_opens(link, create) == enoent
    assert rules.never_opens(str(gone), False) == rules.never_opens(gone, False) == enoent
    assert rules.never_opens(str(gone), True) is rules.never_opens(gone, True) is None
    lost = tmp_path / "lost" / "x.sqlite"
    assert rules.never_opens(str(lost), True) == rules.never_opens(lost, True) == (
        f"its folder {lost.parent} is gone")
    monkeypatch.setattr(os, "access", lambda *a, **k: False)
    assert rules.never_opens(str(gone), True) == rules.never_opens(gone, True) == (
        f"its folder {tmp_path} may not be written by this process")


def test_shown_hides_every_password_key() -> None:
    """``shown`` (both stores') drops every query key whose decoded name holds
    ``password``: libpq decodes keys, and ``sslpassword`` is the client key's passphrase."""
    for key in ("password", "PASSWORD", "p%61ssword", "sslpassword", "sslp%61ssword"):
        url = f"postgresql://me:pw@db.example/x?host=/s&{key}=secret&sslmode=disable"
        said = rules.shown(url)
        assert "secret" not in said and "pw" not in said, (key, said)
        assert said == "postgresql://me@db.example/x?host=/s&sslmode=disable", said


def test_the_damage_codes_are_damage_not_a_disk_error() -> None:
    """SQLITE_CORRUPT, SQLITE_NOTADB and the two damage I/O errors (CORRUPTFS, DATA) are
    damage, and the ledger calls them damage, not a disk error."""
    import sqlite3

    from swarmvar.errors import LedgerUnwritable
    from swarmvar.ledger import sqlite as sqlite_store

    assert rules.DAMAGE_IOERR == {8458, 8202}
    for code in (8458, 8202, 11, 26):
        exc = sqlite3.OperationalError("disk I/O error")
        exc.sqlite_errorcode = code  # type: ignore[attr-defined]
        assert rules.is_damage(exc), code
        err = sqlite_store._storage_error(exc, Path("/nonexistent/ledger.sqlite"))
        assert not isinstance(err, LedgerUnwritable), (code, err)
    io = sqlite3.OperationalError("disk I/O error")
    io.sqlite_errorcode = 266  # type: ignore[attr-defined]  # a read's I/O error: the disk
    assert not rules.is_damage(io) and rules.outside(io) is not None


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


def test_an_error_on_a_lost_connection_is_out_of_reach_in_both_stores() -> None:
    """``lost`` (the connection now broken, or never made): any error is a server out of
    reach in both stores (an idle session ended, 57P05, a FATAL of any SQLSTATE), its
    ``landed`` kept by the variant store's; without it the same error is the neutral
    failed one. Damage and a cause outside the data keep their class either way."""
    import psycopg

    from swarmvar.errors import LedgerCorrupted, LedgerFailed, LedgerUnreachable
    from swarmvar.evolution.errors import (
        CorruptStore,
        VariantStoreFailed,
        VariantStoreUnreachable,
        VariantStoreUnwritable,
    )

    url = "postgresql://me@db.example/x"
    idle = psycopg.errors.IdleSessionTimeout("terminating connection zz6")
    assert rules.unreachable(idle, lost=True) and not rules.unreachable(idle)
    for lost, ledger_kind, store_kind in ((True, LedgerUnreachable, VariantStoreUnreachable),
                                          (False, LedgerFailed, VariantStoreFailed)):
        ledger_err = ledger_pg.database_error(url, idle, "read", lost=lost)
        store_err = evolution_pg.database_error(url, idle, lost=lost)
        assert type(ledger_err) is ledger_kind and type(store_err) is store_kind, lost
        assert "57P05" in str(ledger_err) and "57P05" in str(store_err)
    landed = evolution_pg.database_error(url, idle, lost=True, landed=True)
    assert isinstance(landed, VariantStoreUnreachable) and landed.landed
    for exc, ledger_kind, store_kind in (
            (psycopg.errors.DiskFull("zz7"), LedgerUnwritable, VariantStoreUnwritable),
            (psycopg.errors.DataCorrupted("zz8"), LedgerCorrupted, CorruptStore)):
        assert not rules.unreachable(exc, lost=True)
        assert type(ledger_pg.database_error(url, exc, "read", lost=True)) is ledger_kind
        assert type(evolution_pg.database_error(url, exc, lost=True)) is store_kind
    # the tables gone (42P01): damage on a connection that is fine, out of reach on a
    # broken one, in both stores (the next call, on a new connection, meets it as damage)
    gone = psycopg.errors.UndefinedTable("zz9")
    for lost, ledger_kind, store_kind in ((True, LedgerUnreachable, VariantStoreUnreachable),
                                          (False, LedgerCorrupted, CorruptStore)):
        assert type(ledger_pg.database_error(url, gone, "read", lost=lost)) is ledger_kind
        assert type(evolution_pg.database_error(url, gone, lost=lost)) is store_kind, lost


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
     "connection closed"),
    # psycopg 3.3's text of several attempts (connection.py): the last attempt's error, then
    # each attempt's; the refused one before the server's answer is not read
    ('connection failed: connection to server on socket "/s/.s.PGSQL.5432" failed: FATAL:  '
     'password authentication failed for user "u"\nMultiple connection attempts failed. '
     "All failures were:\n- host: '127.0.0.1', port: '5432', hostaddr: '127.0.0.1': "
     'connection failed: connection to server at "127.0.0.1", port 5432 failed: Connection '
     "refused\n\tIs the server running on that host and accepting TCP/IP connections?\n"
     "- host: '/s', port: '5432', hostaddr: None: connection failed: connection to server "
     'on socket "/s/.s.PGSQL.5432" failed: FATAL:  password authentication failed for '
     'user "u"', "authentication failed"),
    # libpq's TLS set-up (fe-secure-openssl.c, fe-connect.c), a refused file before the
    # privilege words; the server's pg_hba answer naming SSL is authentication
    ('connection failed: connection to server at "10.0.0.9", port 5432 failed: root '
     'certificate file "/nowhere/root.crt" does not exist\nEither provide the file, use '
     "the system's trusted roots with sslrootcert=system, or change sslmode to disable "
     "server certificate verification.", "TLS or certificate failure"),
    ('connection failed: connection to server at "10.0.0.9", port 5432 failed: could not '
     'open certificate file "/home/u/.postgresql/postgresql.crt": Permission denied',
     "TLS or certificate failure"),
    ('connection failed: connection to server at "10.0.0.9", port 5432 failed: server does '
     "not support SSL, but SSL was required", "TLS or certificate failure"),
    ('connection failed: connection to server at "10.0.0.9", port 5432 failed: FATAL:  no '
     'pg_hba.conf entry for host "10.0.0.1", user "u", database "d", SSL encryption',
     "authentication failed"),
    ("consuming input failed: SSL SYSCALL error: EOF detected", "connection closed"),
    ("consuming input failed: SSL connection has been closed unexpectedly",
     "connection closed")])
def test_a_connects_category_reads_the_servers_answer_not_the_names(text: str,
                                                                    said: str) -> None:
    """Only the text after the last ``failed: `` is read, quoted names emptied, and a full
    server or a refused CONNECT comes before the database and role words."""
    assert rules.category(psycopg.OperationalError(text)) == said


def test_a_refused_privilege_is_named_permission_denied() -> None:
    import psycopg.errors

    exc = psycopg.errors.InsufficientPrivilege("permission denied for schema public")
    said = "permission denied, InsufficientPrivilege, SQLSTATE 42501"
    assert rules.named(exc) == said
    lock = psycopg.errors.LockNotAvailable("canceling statement due to lock timeout")
    assert rules.named(lock) == "LockNotAvailable, SQLSTATE 55P03"


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


def _refused_value(query: str, monkeypatch: pytest.MonkeyPatch) -> psycopg.OperationalError:
    """libpq's refusal of ``query``'s value: made by psycopg's connect before any traffic
    (a port nothing listens on, never reached)."""
    monkeypatch.delenv("PGSSLMODE", raising=False)
    with pytest.raises(psycopg.OperationalError) as got:
        psycopg.connect(f"postgresql://u@127.0.0.1:9/d?{query}", connect_timeout=2)
    return got.value


@pytest.mark.parametrize("query", ["sslmode=bogus", "target_session_attrs=bogus",
                                   "keepalives=abc", "gssencmode=bogus"])
def test_a_value_libpq_refuses_is_a_usage_error_not_a_server_out_of_reach(
        query: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """psycopg raises libpq's ``invalid … value`` as a connect error without a SQLSTATE,
    which ``unreachable`` alone would call out of reach ("connection failed or lost",
    retry): ``bad_value`` tells it, and ``url_error`` words it without echoing it."""
    from swarmvar.errors import InvalidParameter

    exc = _refused_value(query, monkeypatch)
    assert rules.bad_value(exc), exc
    for store in (ledger_pg, evolution_pg):
        err = store._url_error(f"postgresql://u:pw@h/d?{query}", exc)
        assert isinstance(err, InvalidParameter)
        assert str(err) == ("not a usable PostgreSQL URL: an invalid value for a connection "
                            "parameter (the URL's, or a PG... environment variable's)"), err
        assert "bogus" not in str(err) and "abc" not in str(err)


def test_a_refused_connect_or_a_servers_invalid_value_is_not_a_bad_value(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Only libpq's own refusal is read: a connect refused (here: port 9, nothing there),
    and the server's ``FATAL: invalid value for parameter`` (an ``options`` setting it
    refused: its answer, after ``failed: ``), are not."""
    refused = _refused_value("connect_timeout=2", monkeypatch)
    assert not rules.bad_value(refused) and rules.category(refused) == "connection refused"
    fatal = psycopg.OperationalError(
        'connection failed: connection to server on socket "/s/.s.PGSQL.5432" failed: '
        'FATAL:  invalid value for parameter "work_mem": "abc"')
    assert not rules.bad_value(fatal)
    assert not rules.bad_value(psycopg.errors.InvalidParameterValue("invalid sslmode value"))
