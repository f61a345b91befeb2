"""The service over a PostgreSQL ledger (tests/pg.py's real server): a 503 body and the
unauthenticated ``/readyz`` carry the error's class and a fixed category, never psycopg's
words - no user, database or socket folder the environment gave, no address - and a lock
timeout is a 503 ``LedgerFailed``, not a 500 ``LedgerCorrupted``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import psycopg
import pytest

from swarmvar.service import ServiceConfig, create_app

from .conftest import Keys, TestClient

ODD_USER = "odd_user_rz4"


def _cut(url: str, dbname: str) -> None:
    with psycopg.connect(url, autocommit=True) as admin:
        admin.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                      "WHERE datname = %s AND pid <> pg_backend_pid()", (dbname,))


def test_the_environments_names_reach_no_body_nor_readyz(
        postgres_server: Any, tmp_path: Path, session_keys: tuple[Path, Keys],
        monkeypatch: pytest.MonkeyPatch) -> None:
    """The URL names the database only; PGHOST (the socket folder) and PGUSER come from
    the environment. Once the connection is cut and PGUSER is an unknown role, the new
    connection is refused with psycopg's 'role "odd_user_rz4" does not exist'."""
    url = postgres_server.new_database()
    dbname = str(psycopg.conninfo.conninfo_to_dict(url)["dbname"])
    sock = str(postgres_server.socket_dir)
    monkeypatch.setenv("PGHOST", sock)
    monkeypatch.setenv("PGUSER", "postgres")
    keys_path, k = session_keys
    app = create_app(ServiceConfig(home=tmp_path / "home", keys=keys_path,
                                   db=f"postgresql:///{dbname}"))
    read = {"X-API-Key": k.reader}
    with TestClient(app, raise_server_exceptions=False) as c:
        assert c.get("/readyz").status_code == 200
        monkeypatch.setenv("PGUSER", ODD_USER)
        _cut(postgres_server.url, dbname)
        lost = c.get("/v1/ledger/head", headers=read)  # the cut connection
        ready = c.get("/readyz")  # the one new connection: its role refused
        again = c.get("/v1/ledger/head", headers=read)  # within the back-off
    for r in (lost, ready, again):
        assert r.status_code == 503, r.text
        for part in (ODD_USER, sock, dbname, "does not exist", "postgres", "FATAL"):
            assert part not in r.text, (part, r.text)
    assert lost.json()["error"]["type"] == "LedgerUnreachable" and lost.headers["Retry-After"]
    assert ready.json() == {"status": "unavailable",
                            "detail": "LedgerUnreachable (authentication failed)"}, ready.text
    said = again.json()["error"]["message"]
    assert "(authentication failed; not tried again within" in said, said


def test_a_lock_timeout_is_a_503_ledger_failed_and_readyz_says_so(
        postgres_url: str, tmp_path: Path, session_keys: tuple[Path, Keys]) -> None:
    keys_path, k = session_keys
    timed = postgres_url + "%20-clock_timeout%3D200"
    app = create_app(ServiceConfig(home=tmp_path / "home", keys=keys_path, db=timed))
    with TestClient(app, raise_server_exceptions=False) as c, \
            psycopg.connect(postgres_url) as other:
        assert c.get("/v1/ledger/head", headers={"X-API-Key": k.reader}).status_code == 200
        other.execute("LOCK TABLE ledger_entries IN ACCESS EXCLUSIVE MODE")
        r = c.get("/v1/ledger/head", headers={"X-API-Key": k.reader})
        ready = c.get("/readyz")
        other.rollback()
        assert c.get("/readyz").status_code == 200
    assert r.status_code == 503 and r.headers["Retry-After"], r.text
    error = r.json()["error"]
    assert error["type"] == "LedgerFailed", error
    assert "LockNotAvailable, SQLSTATE 55P03" in error["message"], error
    assert "damaged (" not in error["message"] and "lock timeout" not in r.text, error
    assert ready.status_code == 503 and ready.json()["detail"] == (
        "LedgerFailed (LockNotAvailable, SQLSTATE 55P03)"), ready.text


def test_a_failing_readyz_warns_once_per_change_of_state(
        postgres_url: str, tmp_path: Path, session_keys: tuple[Path, Keys]) -> None:
    """Probed four times while a lock is held: one WARNING (the error's text), then DEBUG;
    ready again: one INFO; failing again: a WARNING again."""
    import logging

    keys_path, _ = session_keys
    timed = postgres_url + "%20-clock_timeout%3D200"
    app = create_app(ServiceConfig(home=tmp_path / "home", keys=keys_path, db=timed))
    seen: list[tuple[int, str]] = []

    class Seen(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            if record.getMessage() in ("not ready", "ready again"):
                seen.append((record.levelno, record.getMessage()))

    logger = logging.getLogger("swarmvar.service")
    handler, level = Seen(level=logging.DEBUG), logger.level
    with TestClient(app, raise_server_exceptions=False) as c, \
            psycopg.connect(postgres_url) as other:
        logger.addHandler(handler)
        logger.setLevel(logging.DEBUG)
        try:
            assert c.get("/readyz").status_code == 200
            other.execute("LOCK TABLE ledger_entries IN ACCESS EXCLUSIVE MODE")
            codes = [c.get("/readyz").status_code for _ in range(4)]
            other.rollback()
            codes.append(c.get("/readyz").status_code)
            other.execute("LOCK TABLE ledger_entries IN ACCESS EXCLUSIVE MODE")
            codes.append(c.get("/readyz").status_code)
            other.rollback()
        finally:
            logger.removeHandler(handler)
            logger.setLevel(level)
    assert codes == [503, 503, 503, 503, 200, 503], codes
    assert seen == [(logging.WARNING, "not ready")] + [(logging.DEBUG, "not ready")] * 3 + [
        (logging.INFO, "ready again"), (logging.WARNING, "not ready")], seen
