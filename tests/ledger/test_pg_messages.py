"""A PostgreSQL ledger's errors on a real server (tests/pg.py): their messages carry a fixed
category and the SQLSTATE, never psycopg's words (the resolved address, the user and
database the environment gave, the socket folder); an error that says nothing of the data
(a lock timeout) is LedgerFailed, not LedgerCorrupted, and ``ledger verify`` exits 2
without "damaged"; the URL's own connect_timeout is used; a failed connect is not retried
for BACKOFF_S seconds; a malformed URL is a usage error echoing none of it; a closed
store stays closed."""

from __future__ import annotations

import socket
import time
import uuid
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from typer.testing import CliRunner

from swarmvar.errors import (
    InvalidParameter,
    LedgerClosed,
    LedgerCorrupted,
    LedgerFailed,
    LedgerUnreachable,
)
from swarmvar.ledger import EntryKind, Ledger
from swarmvar.ledger import postgres as ledger_pg

KEY = Ed25519PrivateKey.from_private_bytes(bytes(range(7, 39)))
#: A user and a database given by the environment only (the URL names neither).
ODD_USER, ODD_DB = "odd_user_zq7", "odd_db_zq7"


def _free_port() -> int:
    with socket.socket() as s:  # a port nothing listens on once this closes
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _absent(said: str, *parts: str) -> None:
    for part in parts:
        assert part not in said, (part, said)


def test_a_host_name_that_resolves_is_said_neither_by_name_nor_by_address() -> None:
    port = _free_port()
    url = f"postgresql://risk@localhost:{port}/swarm?connect_timeout=2"
    with pytest.raises(LedgerUnreachable) as got:
        Ledger(url)
    said = str(got.value)
    # psycopg said 'connection to server at "127.0.0.1", port N failed: Connection refused'
    _absent(said, "127.0.0.1", "::1", "localhost", str(port), "risk", "swarm", "server at")
    assert "(connection refused)" in said and got.value.detail == "connection refused", said


@pytest.mark.parametrize("env, category", [
    ({"PGUSER": ODD_USER}, "authentication failed"),
    ({"PGUSER": "postgres", "PGDATABASE": ODD_DB}, "no such database")])
def test_the_environments_user_database_and_host_are_not_said(
        postgres_server: Any, monkeypatch: pytest.MonkeyPatch, env: dict[str, str],
        category: str) -> None:
    """The URL names no host, user or database: PGHOST (the socket folder), PGUSER and
    PGDATABASE give them, and psycopg's text quotes them (``role "…" does not exist``)."""
    sock = str(postgres_server.socket_dir)
    monkeypatch.setenv("PGHOST", sock)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(LedgerUnreachable) as got:
        Ledger("postgresql://")
    said = str(got.value)
    _absent(said, sock, ODD_USER, ODD_DB, "postgres", "does not exist", "socket", "FATAL")
    assert f"({category})" in said and got.value.doing == "open", said


def test_a_full_or_closed_database_is_said_so_whatever_its_and_the_roles_names(
        postgres_server: Any) -> None:
    """A connect refused by the server for a database's or a role's connection limit
    (``too many connections for database "…"``/``role "…"``) or a revoked CONNECT
    (``permission denied for database "…"``) is said so: neither "no such database" nor
    "authentication failed", which the quoted names and the socket path once read as (a
    database and a role named ``password_…`` included)."""
    tag = uuid.uuid4().hex[:8]
    dbname, role = f"password_db_{tag}", f"password_role_{tag}"
    with psycopg.connect(postgres_server.url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{dbname}"')
        conn.execute(f'CREATE ROLE "{role}" LOGIN')
    url = (f"postgresql://{role}@/{dbname}?host={postgres_server.socket_dir}"
           "&connect_timeout=5")

    def said() -> str:
        with pytest.raises(LedgerUnreachable) as got:
            Ledger(url)
        _absent(str(got.value), dbname, role, "FATAL", "socket")
        return got.value.detail

    try:
        with psycopg.connect(postgres_server.url, autocommit=True) as conn:
            conn.execute(f'ALTER DATABASE "{dbname}" CONNECTION LIMIT 0')
            assert said() == "too many connections"
            conn.execute(f'ALTER DATABASE "{dbname}" CONNECTION LIMIT -1')
            conn.execute(f'ALTER ROLE "{role}" CONNECTION LIMIT 0')
            assert said() == "too many connections"
            conn.execute(f'ALTER ROLE "{role}" CONNECTION LIMIT -1')
            conn.execute(f'REVOKE CONNECT ON DATABASE "{dbname}" FROM PUBLIC')
            assert said() == "permission denied"
    finally:
        with psycopg.connect(postgres_server.url, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE "{dbname}"')
            conn.execute(f'DROP ROLE "{role}"')


def test_a_lock_timeout_is_ledger_failed_not_damage(postgres_url: str) -> None:
    """``options=-c lock_timeout=200`` while another session holds the table's lock: the
    append and the verification meet SQLSTATE 55P03, said neither damaged nor intact."""
    with Ledger(postgres_url, signing_key=KEY) as led:
        led.add_entry(EntryKind.PULSE, {"i": 1})
    timed = postgres_url + "%20-clock_timeout%3D200"
    with Ledger(timed, signing_key=KEY) as led, psycopg.connect(postgres_url) as other:
        other.execute("LOCK TABLE ledger_entries IN ACCESS EXCLUSIVE MODE")
        for call in (lambda: led.add_entry(EntryKind.PULSE, {"i": 2}),
                     lambda: led.verify_chain(processes=1)):
            with pytest.raises(LedgerFailed) as got:
                call()
            said = str(got.value)
            assert not isinstance(got.value, LedgerCorrupted)
            assert "LockNotAvailable, SQLSTATE 55P03" in said, said
            assert "neither damaged nor intact" in said, said
            assert "canceling statement" not in said and "lock timeout" not in said, said
        other.rollback()
        assert led.verify_chain(processes=1).ok  # the same store goes on


def test_ledger_verify_under_a_lock_timeout_exits_2_not_damaged(
        postgres_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    from swarmvar.cli import app

    with Ledger(postgres_url, signing_key=KEY) as led:
        led.add_entry(EntryKind.PULSE, {"i": 1})
    timed = postgres_url + "%20-clock_timeout%3D200"
    with psycopg.connect(postgres_url) as other:
        other.execute("LOCK TABLE ledger_entries IN ACCESS EXCLUSIVE MODE")
        out = CliRunner().invoke(app, ["ledger", "verify", "--home", timed])
    assert out.exit_code == 2, out.output
    assert "damaged:" not in out.output and "LedgerFailed" not in out.output, out.output
    assert "SQLSTATE 55P03" in out.output and "neither damaged" in out.output, out.output


@pytest.mark.parametrize("url, what", [
    ("postgresql://risk@h:notaport/swarm", "its port is not a number"),
    ("postgresql://risk@/swarm?port=5x&host=/nowhere", "its port is not a number"),
    ("postgresql://risk:hunter%ZZ2@h/swarm", "a bad percent-escape"),
    ("postgresql://risk:hunter2@h/swarm?bogus=x", "an unknown or malformed parameter")])
def test_a_malformed_url_is_a_usage_error_that_echoes_none_of_it(url: str, what: str) -> None:
    with pytest.raises(InvalidParameter) as got:
        Ledger(url)
    said = str(got.value)
    assert said.startswith(f"not a usable PostgreSQL URL: {what}"), said
    _absent(said, "hunter", "risk", "notaport", "5x", "bogus", "swarm")


def test_the_urls_connect_timeout_is_used(postgres_url: str) -> None:
    """``?connect_timeout=3`` is the URL's (the store's default, 10 s, only without one)."""
    with Ledger(postgres_url + "&connect_timeout=3", signing_key=KEY) as led:
        assert led.store._conn.info.get_parameters()["connect_timeout"] == "3"  # type: ignore[attr-defined]
    with Ledger(postgres_url, signing_key=KEY) as led:
        assert led.store._conn.info.get_parameters()["connect_timeout"] == "10"  # type: ignore[attr-defined]


def test_a_connect_timeout_of_0_is_the_stores_and_a_bad_one_is_refused(
        postgres_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """0 (libpq's "wait for ever", psycopg's 130 s under the store's lock) is the store's
    10 s, in both stores; PGCONNECT_TIMEOUT=abc is named, not "not a usable URL"."""
    from swarmvar.evolution.db import open_database

    monkeypatch.delenv("PGCONNECT_TIMEOUT", raising=False)
    with Ledger(postgres_url + "&connect_timeout=0", signing_key=KEY) as led:
        assert led.store._conn.info.get_parameters()["connect_timeout"] == "10"  # type: ignore[attr-defined]
    store = open_database(postgres_url + "&connect_timeout=0")
    try:
        assert store._pg.info.get_parameters()["connect_timeout"] == "10"  # type: ignore[attr-defined]
    finally:
        store.close()
    monkeypatch.setenv("PGCONNECT_TIMEOUT", "abc")
    with pytest.raises(InvalidParameter) as got:
        Ledger(postgres_url, signing_key=KEY)
    assert "the environment variable PGCONNECT_TIMEOUT" in str(got.value), got.value
    assert "not a usable PostgreSQL URL" not in str(got.value), got.value


@pytest.fixture()
def stopped(postgres_server: Any) -> Iterator[tuple[Ledger, Any]]:
    """A store on the session's server, open, its connection then cut and every new
    connection refused (``ALTER DATABASE ... ALLOW_CONNECTIONS false``): the server stays
    up for the other tests."""
    url = postgres_server.new_database()
    dbname = str(psycopg.conninfo.conninfo_to_dict(url)["dbname"])
    admin = psycopg.connect(postgres_server.url, autocommit=True)
    led = Ledger(url, signing_key=KEY)
    try:
        led.add_entry(EntryKind.PULSE, {"i": 0})
        admin.execute(f'ALTER DATABASE "{dbname}" ALLOW_CONNECTIONS false')
        admin.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                      "WHERE datname = %s", (dbname,))
        yield led, lambda: admin.execute(f'ALTER DATABASE "{dbname}" ALLOW_CONNECTIONS true')
    finally:
        admin.execute(f'ALTER DATABASE "{dbname}" ALLOW_CONNECTIONS true')
        admin.close()
        led.close()


def test_a_failed_connect_is_not_tried_again_for_backoff_seconds(
        stopped: tuple[Ledger, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    led, allow = stopped
    store = led.store
    with pytest.raises(LedgerUnreachable):
        store.size()  # the connection found cut
    with pytest.raises(LedgerUnreachable) as first:
        store.size()  # one connect, refused by the server
    assert "not tried again" not in str(first.value)
    tried: list[object] = []
    real = psycopg.connect
    monkeypatch.setattr(psycopg, "connect", lambda *a, **k: tried.append(a) or real(*a, **k))
    allow()
    with pytest.raises(LedgerUnreachable, match="not tried again within 1.5 s") as fast:
        store.size()  # within the back-off: no connect, though the server would take it now
    assert tried == [] and first.value.detail in str(fast.value)
    assert first.value.detail == "database not accepting connections", first.value
    time.sleep(ledger_pg.BACKOFF_S)
    assert store.size() >= 1 and len(tried) == 1  # after it: one connect, which works


def test_a_closed_store_stays_closed(postgres_url: str) -> None:
    led = Ledger(postgres_url, signing_key=KEY)
    led.add_entry(EntryKind.PULSE, {"i": 0})
    store = led.store
    led.close()
    for call in (lambda: store.size(), lambda: led.add_entry(EntryKind.PULSE, {"i": 1}),
                 lambda: list(store.rows(0, 1))):
        with pytest.raises(LedgerClosed, match="the ledger store is closed"):
            call()
    assert store._shut and store._conn.closed  # type: ignore[attr-defined]
    assert "reached" not in str(LedgerClosed("the ledger store is closed"))


def test_serves_db_check_says_a_malformed_url_without_echoing_it(
        tmp_path: Any, capsys: pytest.CaptureFixture[str]) -> None:
    import typer

    from swarmvar.cli.serve import _check_db

    with pytest.raises(typer.Exit) as got:
        _check_db("postgresql://risk:hunter%ZZ2@h/swarm", tmp_path, "--home")
    said = capsys.readouterr().err
    assert got.value.exit_code == 2 and "not a usable PostgreSQL URL" in said, said
    assert "hunter" not in said and "%ZZ" not in said, said


def test_a_damage_message_keeps_the_servers_primary_words_only(postgres_url: str) -> None:
    """XX001 raised by the server with a DETAIL, a HINT and a CONTEXT: both stores' damage
    message keeps the primary message (without the URL's parts) and none of the rest."""
    from swarmvar.evolution import postgres as evolution_pg
    from swarmvar.evolution.errors import CorruptStore

    with psycopg.connect(postgres_url, autocommit=True) as conn, pytest.raises(
            psycopg.errors.DataCorrupted) as got:
        conn.execute("DO $$ BEGIN RAISE EXCEPTION 'invalid page in block 7' USING "
                     "ERRCODE = 'XX001', DETAIL = 'row secret_row_words', "
                     "HINT = 'hint secret_hint_words'; END $$")
    exc = got.value
    assert "secret_row_words" in str(exc) or exc.diag.message_detail  # the server sent them
    for err, kind in ((ledger_pg.database_error(postgres_url, exc, "read"), LedgerCorrupted),
                      (evolution_pg.database_error(postgres_url, exc), CorruptStore)):
        said = str(err)
        assert isinstance(err, kind) and "invalid page in block 7" in said, said
        _absent(said, "secret_row_words", "secret_hint_words", "PL/pgSQL", "DETAIL", "HINT")


def test_the_ledgers_errors_keep_a_callers_rewording_in_a_pickle() -> None:
    """The desk rewords a ledger error for a client; a worker's pickled copy keeps those
    words (and the attributes), for LedgerUnwritable and LedgerFailed as LedgerUnreachable."""
    import pickle

    from swarmvar.errors import LedgerUnwritable

    made = (LedgerUnwritable("database", "disk full", "disk full, SQLSTATE 53100", "append"),
            LedgerFailed("append", "LockNotAvailable, SQLSTATE 55P03", "postgresql://h/d"),
            LedgerUnreachable("read", "connection refused", "postgresql://h/d"))
    for err in made:
        plain = pickle.loads(pickle.dumps(err))
        assert type(plain) is type(err) and str(plain) == str(err)
        err.args = (f"reworded for a client: {type(err).__name__}",)
        back = pickle.loads(pickle.dumps(err))
        assert str(back) == f"reworded for a client: {type(err).__name__}", back
        assert back.__dict__ == err.__dict__ and back.detail == err.detail


def test_ledger_verify_on_a_malformed_url_prints_one_clean_error_line() -> None:
    """A command's logging is configured by nobody: the store's log line (the URL, which
    Python's last-resort handler printed above the error, twice for ``ledger verify``) is
    not printed; the error line alone says what is wrong (a process of its own: pytest's
    handlers would take the lines in this one)."""
    import subprocess
    import sys

    run = subprocess.run(
        [sys.executable, "-c", "from swarmvar.cli import main; main()", "ledger", "verify",
         "--home", "postgresql://risk:hunter2@h/swarm?x%ZZ=1"],
        capture_output=True, text=True, timeout=60, check=False)
    lines = [line for line in run.stderr.splitlines() if line.strip()]
    assert run.returncode == 2 and len(lines) == 1, run.stderr
    assert lines[0] == ("error: not a usable PostgreSQL URL: a bad percent-escape (% and two "
                        "hex digits)"), lines
    assert "hunter2" not in run.stdout + run.stderr and "risk" not in run.stderr


@pytest.mark.parametrize("query", [
    "sslmode=bogus", "target_session_attrs=bogus", "ssl_min_protocol_version=bogus",
    "ssl_min_protocol_version=TLSv1.3&ssl_max_protocol_version=TLSv1.2", "hostaddr=bogus"])
def test_a_value_libpq_refuses_is_a_usage_error_in_both_stores_without_back_off(
        query: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """libpq refuses the value before any traffic (no server at the port): both stores say
    InvalidParameter, not "cannot be reached ... retry", echo none of the URL, and start no
    back-off; ``ledger verify`` exits 2 with that line."""
    from swarmvar.cli import app
    from swarmvar.evolution.db import open_database

    monkeypatch.delenv("PGSSLMODE", raising=False)
    url = f"postgresql://risk:hunter2@127.0.0.1:{_free_port()}/swarm?{query}"
    what = "not a usable PostgreSQL URL: an invalid value for a connection parameter"
    for open_store in (lambda: Ledger(url), lambda: open_database(url)):
        with pytest.raises(InvalidParameter) as got:
            open_store()
        said = str(got.value)
        assert said.startswith(what), said
        _absent(said, "hunter2", "risk", "swarm", "bogus", "127.0.0.1", "reached")
    out = CliRunner().invoke(app, ["ledger", "verify", "--home", url])
    assert out.exit_code == 2 and what in out.output, out.output
    assert "reached" not in out.output and "hunter2" not in out.output, out.output


def test_a_value_libpq_refuses_after_the_store_opened_is_no_back_off(
        postgres_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """The same refusal met by a reconnect (PGSSLMODE changed under an open store, its
    connection cut): InvalidParameter, and the next call connects at once once it is
    mended (no "not tried again within 1.5 s")."""
    with Ledger(postgres_url, signing_key=KEY) as led:
        led.add_entry(EntryKind.PULSE, {"i": 0})
        store = led.store
        size = store.size()
        store._conn.close()  # type: ignore[attr-defined]
        monkeypatch.setenv("PGSSLMODE", "bogus")
        with pytest.raises(InvalidParameter, match="an invalid value for a connection"):
            store.size()
        assert store._failed is None  # type: ignore[attr-defined]
        monkeypatch.delenv("PGSSLMODE")
        assert store.size() == size


def test_a_refused_host_then_the_servers_answer_is_said_by_the_answer(
        postgres_server: Any) -> None:
    """Two hosts: a TCP port with no server, then the server's socket, which refuses the
    role. psycopg 3.3 joins both attempts' words; the category is the server's answer
    ("authentication failed"), not the first host's "connection refused"."""
    url = (f"postgresql://no_role_zq8@/postgres?host=127.0.0.1,{postgres_server.socket_dir}"
           f"&port={_free_port()},5432&connect_timeout=5")
    with pytest.raises(LedgerUnreachable) as got:
        Ledger(url)
    assert got.value.detail == "authentication failed", got.value
