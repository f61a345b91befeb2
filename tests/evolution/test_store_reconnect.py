"""The variant store on PostgreSQL opens its connection again after losing it.

A real server (the session's, ``tests/pg.py`` through ``postgres_url``): a backend ended by
``pg_terminate_backend`` from a second connection; and a server of this module's own
(``tests/pg.py``'s ``postgres_server()``) stopped and started (``pg_ctl``) under an open
store, the session's left alone. The call that finds the connection
lost raises ``VariantStoreUnreachable`` (a transaction in flight is rolled back whole:
nothing half-written); each later call tries one new connection (bounded, no loop):
``VariantStoreUnreachable`` again while the server is down, and works once it is back.
A connect that fails makes the calls within ``BACKOFF_S`` (1.5 s, the ledger's) fail at
once (a host that does not answer costs one connect timeout, not one per waiting call); a
COMMIT whose answer is lost says the write may have landed; the messages name "the variant
store database" and a fixed category, the log its URL and psycopg's words.
"""

from __future__ import annotations

import logging
import pickle
import threading
import time
from typing import Any

import psycopg
import pytest
from psycopg import Transaction

import swarmvar.evolution.postgres as evolution_pg
from swarmvar.evolution import SqliteVariantStore
from swarmvar.evolution.db import Database, open_database
from swarmvar.evolution.errors import (
    VariantStoreClosed,
    VariantStoreUnavailable,
    VariantStoreUnreachable,
)

_INSERT = "INSERT INTO agents VALUES (?, ?)"


def _agents(database: Database) -> list[str]:
    return [str(r[0]) for r in database.read("SELECT agent_id FROM agents ORDER BY agent_id")]


def _pid(database: Database) -> int:
    row = database.read_one("SELECT pg_backend_pid()")
    assert row is not None
    return int(row[0])


def _terminate(url: str, pid: int) -> None:
    import psycopg

    with psycopg.connect(url, autocommit=True) as other:
        row = other.execute("SELECT pg_terminate_backend(%s)", (pid,)).fetchone()
    assert row is not None and row[0] is True, f"backend {pid} was not terminated"


def test_a_terminated_backend_fails_the_call_that_finds_it_and_the_next_reopens(
        postgres_url: str) -> None:
    database = open_database(postgres_url)
    try:
        with database.transaction() as conn:
            conn.execute(_INSERT, ("kept", "{}"))
        first = _pid(database)
        _terminate(postgres_url, first)
        with pytest.raises(VariantStoreUnreachable) as got:
            _agents(database)
        assert isinstance(got.value, VariantStoreUnavailable)
        assert _agents(database) == ["kept"]  # the next call: a new connection
        assert _pid(database) != first
        # lost in the middle of a transaction: the call fails, nothing of it is written
        with pytest.raises(VariantStoreUnreachable):
            with database.transaction() as conn:
                conn.execute(_INSERT, ("half", "{}"))
                _terminate(postgres_url, _pid(database))
                conn.execute(_INSERT, ("other-half", "{}"))
        assert _agents(database) == ["kept"]
        with database.transaction() as conn:  # and writes go on
            conn.execute(_INSERT, ("after", "{}"))
        assert _agents(database) == ["after", "kept"]
    finally:
        database.close()
    with pytest.raises(VariantStoreClosed, match="close"):  # closed on purpose: the
        _agents(database)  # caller's mistake, not opened again nor said as a server down
    with pytest.raises(VariantStoreClosed):
        with database.transaction() as conn:
            conn.execute(_INSERT, ("late", "{}"))


def test_a_server_stopped_and_started_under_an_open_store(
        own_postgres_server: Any, caplog: pytest.LogCaptureFixture) -> None:
    """The module's own server stopped (``-m fast``: the store's backend ended) and started
    again with its own options (``tests/pg.py``'s ``stop``/``start``): while it is down
    every call is VariantStoreUnreachable, each after one connect only (bounded), its
    message naming "the variant store database" and a fixed category, no part of the URL
    nor psycopg's words, which the log holds; once it is back (after ``BACKOFF_S``) the
    same store object reads and writes."""
    postgres_server = own_postgres_server
    url = postgres_server.new_schema()
    database = open_database(url)
    stopped = False
    try:
        variants = SqliteVariantStore(database, max_variants=5)
        with database.transaction() as conn:
            conn.execute(_INSERT, ("kept", "{}"))
        postgres_server.stop()
        stopped = True
        with pytest.raises(VariantStoreUnreachable):  # the call that finds it lost
            _agents(database)
        for _ in range(2):  # while down: one connect per call, refused at once
            began = time.monotonic()
            with caplog.at_level(logging.WARNING, logger="swarmvar.evolution"):
                with pytest.raises(VariantStoreUnreachable) as got:
                    variants.list()
            assert time.monotonic() - began < 5.0
            said = str(got.value)
            assert "check that its server is up" in said and not got.value.landed, said
            assert "the variant store database" in said, said
            assert "(connection refused" in said, said  # the category, not psycopg's words
            for part in (str(postgres_server.socket_dir), "postgresql://", "search_path",
                         ".s.PGSQL", "postgres", "No such file"):
                assert part not in said, (part, said)
            time.sleep(evolution_pg.BACKOFF_S)  # past the back-off of the failed connect
        assert any(str(postgres_server.socket_dir) in r.getMessage()
                   and "VariantStoreUnreachable" in r.getMessage() for r in caplog.records)
        postgres_server.start()
        stopped = False
        time.sleep(evolution_pg.BACKOFF_S)
        assert _agents(database) == ["kept"]
        with database.transaction() as conn:
            conn.execute(_INSERT, ("after", "{}"))
        assert _agents(database) == ["after", "kept"]
        assert variants.list() == []
    finally:
        if stopped:  # the module's other tests need its server
            postgres_server.start()
        database.close()


def test_a_lost_commit_answer_says_the_write_may_have_landed(
        postgres_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """The server commits, then the COMMIT's answer is lost (psycopg's OperationalError of
    a closed connection, raised after the real commit): the error says the write may have
    landed (``landed``), not "nothing was changed" - it did land - and the next call
    reconnects. A write that fails in its body is not said to have landed."""
    database = open_database(postgres_url)
    real_exit = Transaction.__exit__

    def exit_then_lose(self: Transaction, *exc: Any) -> Any:
        done = real_exit(self, *exc)
        if exc[0] is None:
            raise psycopg.OperationalError("server closed the connection unexpectedly")
        return done

    try:
        monkeypatch.setattr(Transaction, "__exit__", exit_then_lose)
        with pytest.raises(VariantStoreUnreachable) as got:
            with database.transaction() as conn:
                conn.execute(_INSERT, ("landed", "{}"))
        monkeypatch.setattr(Transaction, "__exit__", real_exit)
        said = str(got.value)
        assert got.value.landed and "may have landed" in said, said
        assert "nothing was changed" not in said and "read before writing again" in said
        assert _agents(database) == ["landed"]  # it did land; the same store goes on
        with pytest.raises(VariantStoreUnreachable) as body:
            with database.transaction() as conn:
                conn.execute(_INSERT, ("half", "{}"))
                _terminate(postgres_url, _pid(database))
                conn.execute(_INSERT, ("other-half", "{}"))
        assert not body.value.landed and "nothing was changed" in str(body.value)
        assert _agents(database) == ["landed"]
    finally:
        database.close()
    back = pickle.loads(pickle.dumps(got.value))
    assert type(back) is VariantStoreUnreachable and str(back) == said and back.landed


def test_a_host_that_does_not_answer_costs_one_connect(
        postgres_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """A connect that hangs until its timeout (a black-holed host, here 0.5 s): three calls
    waiting for the lost connection make one connect, not three in a row; the other two
    fail at once, saying so. ``BACKOFF_S`` after it failed, a call connects again (and
    not before)."""
    database = open_database(postgres_url)
    tries: list[float] = []

    def hang(*args: Any, **kwargs: Any) -> Any:
        tries.append(time.monotonic())
        time.sleep(0.5)
        raise psycopg.OperationalError("connection timeout expired")

    try:
        monkeypatch.setattr(evolution_pg.psycopg, "connect", hang)
        database._lost = True  # type: ignore[attr-defined]  # as a call that found it lost
        failed: list[tuple[float, str]] = []

        def call() -> None:
            began = time.monotonic()
            with pytest.raises(VariantStoreUnreachable) as got:
                database.read("SELECT 1")
            failed.append((time.monotonic() - began, str(got.value)))

        threads = [threading.Thread(target=call) for _ in range(3)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=30)
        assert len(failed) == 3 and len(tries) == 1, (failed, tries)
        assert sum("not tried again" in said for _, said in failed) == 2, failed
        assert max(took for took, _ in failed) < 1.4, failed  # not 3 x 0.5 s in a row
        # the category, never psycopg's words; the same rule as the ledger's (1.5 s)
        assert all("(connection timed out" in said for _, said in failed), failed
        assert evolution_pg.BACKOFF_S == 1.5
        with pytest.raises(VariantStoreUnreachable, match="not tried again"):
            database.read("SELECT 1")  # within the back-off: no connect
        assert len(tries) == 1
        time.sleep(evolution_pg.BACKOFF_S)  # the back-off over: the next call connects
        with pytest.raises(VariantStoreUnreachable, match="connection timed out"):
            database.read("SELECT 1")
        assert len(tries) == 2
        monkeypatch.undo()
        time.sleep(evolution_pg.BACKOFF_S)
        assert database.read("SELECT 1") == [(1,)]  # and once it answers, it works
    finally:
        monkeypatch.undo()
        database.close()


def test_a_session_the_server_ended_for_idling_is_unreachable_then_reopened(
        postgres_url: str) -> None:
    """``idle_session_timeout`` (SQLSTATE 57P05, neither class 08 nor a listed state) ends
    the store's session: an error on a connection now broken is VariantStoreUnreachable,
    as the ledger says it (``storerules.unreachable``'s ``lost``), not VariantStoreFailed;
    the next call reopens."""
    assert "options=" in postgres_url
    database = open_database(postgres_url + "%20-cidle_session_timeout%3D200")
    try:
        with database.transaction() as conn:
            conn.execute(_INSERT, ("kept", "{}"))
        time.sleep(0.6)
        with pytest.raises(VariantStoreUnreachable) as got:
            _agents(database)
        assert "57P05" in str(got.value) and not got.value.landed
        assert _agents(database) == ["kept"]  # a new connection
    finally:
        database.close()


def test_a_reworded_unreachable_keeps_its_words_in_a_pickle() -> None:
    """A caller's words (``evolution.noted`` rewords it) survive a pickle (a worker's error
    sent to its parent), its fields too, as the ledger's errors do."""
    err = VariantStoreUnreachable("postgresql://h/d", "connection refused", landed=True)
    err.args = ("the change may have been made: read it back",)
    copy = pickle.loads(pickle.dumps(err))
    assert type(copy) is VariantStoreUnreachable
    assert str(copy) == "the change may have been made: read it back"
    assert (copy.path, copy.detail, copy.landed) == ("postgresql://h/d", "connection refused",
                                                     True)
    plain = pickle.loads(pickle.dumps(VariantStoreUnreachable("postgresql://h/d", "x")))
    assert str(plain) == str(VariantStoreUnreachable("postgresql://h/d", "x"))
