"""The variant store on PostgreSQL opens its connection again after losing it.

A real server (the session's, ``tests/pg.py`` through ``postgres_server``/``postgres_url``):
a backend ended by ``pg_terminate_backend`` from a second connection, and the server
stopped and started (``pg_ctl``) under an open store. The call that finds the connection
lost raises ``VariantStoreUnreachable`` (a transaction in flight is rolled back whole:
nothing half-written); each later call tries one new connection (bounded, no loop):
``VariantStoreUnreachable`` again while the server is down, and works once it is back.
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from swarmvar.evolution import SqliteVariantStore
from swarmvar.evolution.db import Database, open_database
from swarmvar.evolution.errors import VariantStoreUnavailable, VariantStoreUnreachable

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
    with pytest.raises(VariantStoreUnreachable):  # closed on purpose: not opened again
        _agents(database)


def _pg_ctl(server: Any, *args: str) -> None:
    pg = sys.modules["swarmvar_tests_pg"]  # loaded by tests/conftest.py's postgres_server
    data, log = Path(server.socket_dir) / "data", Path(server.socket_dir) / "log"
    done = subprocess.run(pg._as_user([str(pg.PG_BIN / "pg_ctl"), "-D", str(data), "-l",
                                       str(log), "-w", "-t", "60", *args]),
                          capture_output=True, text=True, timeout=90, check=False)
    assert done.returncode == 0, (args, done.stdout, done.stderr)


def test_a_server_stopped_and_started_under_an_open_store(postgres_server: Any,
                                                          tmp_path: Path) -> None:
    """The session's server stopped (``-m fast``: the store's backend ended) and started
    again with its own options (``pg_ctl restart`` reads ``postmaster.opts``): while it is
    down every call is VariantStoreUnreachable, each after one connect only (bounded);
    once it is back the same store object reads and writes."""
    url = postgres_server.new_schema()
    database = open_database(url)
    stopped = False
    try:
        variants = SqliteVariantStore(database, max_variants=5)
        with database.transaction() as conn:
            conn.execute(_INSERT, ("kept", "{}"))
        _pg_ctl(postgres_server, "-m", "fast", "stop")
        stopped = True
        with pytest.raises(VariantStoreUnreachable):  # the call that finds it lost
            _agents(database)
        for _ in range(2):  # while down: one connect per call, refused at once
            began = time.monotonic()
            with pytest.raises(VariantStoreUnreachable) as got:
                variants.list()
            assert time.monotonic() - began < 5.0
            assert "check that its server is up" in str(got.value), got.value
        _pg_ctl(postgres_server, "restart")  # (not running: starts it, same options)
        stopped = False
        assert _agents(database) == ["kept"]
        with database.transaction() as conn:
            conn.execute(_INSERT, ("after", "{}"))
        assert _agents(database) == ["after", "kept"]
        assert variants.list() == []
    finally:
        if stopped:  # the session's other tests need their server
            _pg_ctl(postgres_server, "restart")
        database.close()
