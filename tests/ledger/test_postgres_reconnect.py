"""A PostgreSQL ledger whose server is out of reach says so (LedgerUnreachable, never
LedgerCorrupted) and goes on once it is back: a real server stopped and started under an
open store, a port with no server, a backend terminated by another connection (57P01), a
COMMIT whose answer is lost (said to have maybe landed, never sent again); the errors'
messages name "the ledger database", not its URL, which only the log holds."""

from __future__ import annotations

import logging
import pickle
import socket
import time
from typing import Any

import psycopg
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from swarmvar.errors import (
    LedgerCorrupted,
    LedgerFailed,
    LedgerUnreachable,
    LedgerUnwritable,
)
from swarmvar.ledger import EntryKind, Ledger
from swarmvar.ledger.postgres import BACKOFF_S, database_error, scrubbed

KEY = Ed25519PrivateKey.from_private_bytes(bytes(range(5, 37)))


def _url_free(err: BaseException, url: str) -> str:
    """``err``'s message, asserted to hold no part of ``url`` (its socket folder, user,
    database) and to say "the ledger database"."""
    said = str(err)
    params = psycopg.conninfo.conninfo_to_dict(url)
    for part in (str(params["host"]), str(params["dbname"]), "postgresql://", "host="):
        assert part not in said, (part, said)
    assert "the ledger database" in said and "damaged" in said, said
    return said


def test_a_stopped_server_is_unreachable_and_the_same_store_goes_on(
        own_postgres_server: Any, caplog: pytest.LogCaptureFixture) -> None:
    url = own_postgres_server.new_database()
    with Ledger(url, signing_key=KEY) as led:
        led.add_entries([(EntryKind.PULSE, {"i": i}) for i in range(5)])
        before = led.size
        own_postgres_server.stop()
        try:
            with caplog.at_level(logging.WARNING, logger="swarmvar.ledger"):
                with pytest.raises(LedgerUnreachable) as got:
                    led.add_entry(EntryKind.PULSE, {"i": "lost"})
            err = got.value
            assert not isinstance(err, LedgerCorrupted) and not err.landed
            said = _url_free(err, url)
            assert said.startswith("the ledger database cannot be appended to now"), said
            assert "nothing was written" in said, said
            # the log keeps what the message leaves out: the URL (no password), psycopg
            assert any(str(own_postgres_server.socket_dir) in r.getMessage()
                       and "LedgerUnreachable" in r.getMessage() for r in caplog.records)
            with pytest.raises(LedgerUnreachable, match="cannot be read now"):
                led.store.size()  # the one new connection this call tries cannot be made
            with pytest.raises(LedgerUnreachable, match="cannot be opened now"):
                Ledger(url, create=False)
        finally:
            own_postgres_server.start()
        time.sleep(BACKOFF_S)  # a failed connect is not tried again for that long
        led.add_entry(EntryKind.PULSE, {"i": "after"})  # the same store object, reconnected
        assert led.size == before + 1
        assert led.verify_chain(processes=1).ok
        assert led.check_head(led.signed_head()).ok


def test_a_port_with_no_server_is_unreachable() -> None:
    with socket.socket() as s:  # a port nothing listens on once this closes
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    url = f"postgresql://risk:s3cret@127.0.0.1:{port}/swarm?connect_timeout=2"
    with pytest.raises(LedgerUnreachable) as got:
        Ledger(url)
    said = str(got.value)
    assert not isinstance(got.value, LedgerCorrupted) and got.value.doing == "open"
    for part in ("127.0.0.1", str(port), "risk", "swarm", "s3cret"):
        assert part not in said, (part, said)
    assert "(connection refused)" in said and got.value.where == (
        f"postgresql://risk@127.0.0.1:{port}/swarm?connect_timeout=2")


def _terminate(url: str, pid: int) -> None:
    with psycopg.connect(url, autocommit=True) as admin:
        assert admin.execute("SELECT pg_terminate_backend(%s)", (pid,)).fetchone() == (True,)


def test_a_terminated_backend_is_unreachable_then_reconnected(postgres_url: str) -> None:
    """pg_terminate_backend from a second connection (SQLSTATE 57P01, as an administrator's
    or a failover's): the call that meets it raises, the next opens a new connection."""
    with Ledger(postgres_url, signing_key=KEY) as led:
        led.add_entries([(EntryKind.PULSE, {"i": i}) for i in range(3)])
        store = led.store
        old = store._conn.info.backend_pid  # type: ignore[attr-defined]
        _terminate(postgres_url, old)
        with pytest.raises(LedgerUnreachable, match="SQLSTATE 57P01") as got:
            led.store.size()
        _url_free(got.value, postgres_url)
        assert store.lost()  # type: ignore[attr-defined]
        led.add_entry(EntryKind.PULSE, {"i": "after"})
        assert store._conn.info.backend_pid != old  # type: ignore[attr-defined]
        assert led.size == 5 and led.verify_chain(processes=1).ok


def test_a_lost_commit_answer_may_have_landed_and_is_not_sent_again(
        postgres_url: str) -> None:
    """A deferred trigger ends the backend at COMMIT, once (a sequence: not rolled back):
    the append's answer is lost. The store says it may have landed and does not send it
    again (a resend, on a new connection, would now pass and grow the ledger); the next
    compare-and-append sees the head as it is."""
    with Ledger(postgres_url, signing_key=KEY) as led:
        size = led.size
        with psycopg.connect(postgres_url, autocommit=True) as admin:
            admin.execute("CREATE SEQUENCE commit_once")
            admin.execute("""CREATE FUNCTION end_at_commit() RETURNS trigger AS $$
                BEGIN IF nextval('commit_once') = 1 THEN
                    PERFORM pg_terminate_backend(pg_backend_pid()); END IF;
                RETURN NULL; END; $$ LANGUAGE plpgsql""")
            admin.execute("""CREATE CONSTRAINT TRIGGER end_at_commit AFTER INSERT
                ON ledger_entries DEFERRABLE INITIALLY DEFERRED FOR EACH ROW
                EXECUTE FUNCTION end_at_commit()""")
        with pytest.raises(LedgerUnreachable) as got:
            led.add_entry(EntryKind.PULSE, {"i": "maybe"})
        assert got.value.landed and got.value.doing == "append"
        said = _url_free(got.value, postgres_url)
        assert "may have landed" in said and "not sent again" in said, said
        assert led.size == size  # not resent (here the server aborted it)
        drafts = [(EntryKind.PULSE.value, '{"i":"again"}', "2026-12-07T00:00:00Z")]
        assert led.store.append(drafts, if_size=size + 1) is None  # the head is re-read
        rows = led.store.append(drafts, if_size=size)
        assert rows is not None and led.size == size + 1
        assert led.verify_chain(processes=1).ok


U, C, W, F = LedgerUnreachable, LedgerCorrupted, LedgerUnwritable, LedgerFailed


@pytest.mark.parametrize("error, kind, when_lost", [
    (psycopg.errors.AdminShutdown, U, U),         # 57P01
    (psycopg.errors.CrashShutdown, U, U),         # 57P02
    (psycopg.errors.CannotConnectNow, U, U),      # 57P03
    (psycopg.errors.TooManyConnections, U, U),    # 53300
    (psycopg.errors.ConnectionException, U, U),   # 08000
    (psycopg.errors.ConnectionFailure, U, U),     # 08006
    (psycopg.OperationalError, U, U),             # no SQLSTATE: refused, lost, closed
    (psycopg.errors.DataCorrupted, C, C),         # XX001: damage, whatever the connection
    (psycopg.errors.IndexCorrupted, C, C),        # XX002
    (psycopg.errors.DiskFull, W, W),              # 53100
    (psycopg.errors.UndefinedTable, C, U),        # 42P01: the ledger's tables gone
    (psycopg.errors.LockNotAvailable, F, U),      # 55P03: any other says nothing of data
    (psycopg.errors.QueryCanceled, F, U),         # 57014 (statement_timeout)
    (psycopg.errors.InsufficientPrivilege, F, U),  # 42501
    (psycopg.errors.DeadlockDetected, F, U),      # 40P01
    (psycopg.errors.SerializationFailure, F, U),  # 40001
])
def test_each_sqlstate_has_its_class(error: type[psycopg.Error], kind: type,
                                     when_lost: type) -> None:
    """``lost``: the connection broke in the call, or could not be made. No message holds
    psycopg's words (here the URL's parts, an address, a role) but damage's, which says
    what the server said of the data without the URL's parts."""
    url = "postgresql://risk:s3cret@db.example:6432/swarm"
    exc = error('connection to server at "db.example" (10.1.2.3), port 6432 failed: '
                'role "someone" does not exist')
    for lost in (False, True):
        err = database_error(url, exc, "append", lost=lost)
        assert type(err) is (when_lost if lost else kind), err
        damage = exc.sqlstate in ("XX001", "XX002")
        for part in ("db.example", "6432", "risk", "swarm", "s3cret") + (
                () if damage else ("10.1.2.3", "someone", "does not exist")):
            assert part not in str(err), (part, err)
        state = exc.sqlstate
        assert state is None or f"SQLSTATE {state}" in str(err), err


def test_unreachable_pickles_and_scrubbing_keeps_words() -> None:
    err = LedgerUnreachable("append", "x", where="postgresql://u@h/d", landed=True)
    back = pickle.loads(pickle.dumps(err))
    assert type(back) is LedgerUnreachable and str(back) == str(err)
    assert (back.doing, back.detail, back.where, back.landed) == ("append", "x",
                                                                   "postgresql://u@h/d", True)
    assert isinstance(err, ConnectionError)  # for callers who do not know swarmvar
    # a short user name is replaced as a word only, never inside other words
    assert scrubbed('role "a" does not exist\n\tat a host', "postgresql://a@/postgres") == (
        'role "…" does not exist at … host')
    assert scrubbed("database swarm_x", "postgresql://u@h/swarm") == "database swarm_x"


def test_a_session_the_server_ended_for_idling_is_unreachable_then_reopened(
        postgres_url: str) -> None:
    """``idle_session_timeout`` (SQLSTATE 57P05, neither class 08 nor a listed state) ends
    the store's session: any error on a connection now broken is a server out of reach
    (``storerules.unreachable``'s ``lost``), never LedgerFailed; the next call reopens."""
    assert "options=" in postgres_url
    url = postgres_url + "%20-cidle_session_timeout%3D200"
    with Ledger(url, signing_key=KEY) as led:
        led.add_entry(EntryKind.PULSE, {"i": 0})
        size = led.store.size()
        time.sleep(0.6)
        with pytest.raises(LedgerUnreachable) as got:
            led.store.size()
        assert "57P05" in str(got.value) and not got.value.landed
        assert led.store.size() == size  # a new connection
