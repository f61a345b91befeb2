"""The service over a PostgreSQL ledger whose connection is cut (pg_terminate_backend from
another connection, as a server restart or a failover does): a read and a write are
answered 503 ``LedgerUnreachable`` with ``Retry-After``, their bodies naming "the ledger
database" and no part of its URL (socket folder, database, user), which the server's log
keeps; the next request is served on a new connection."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import psycopg
import pytest

from swarmvar.service import ServiceConfig, create_app

from .conftest import Keys, Server, TestClient, history, start_server


def _cut(url: str) -> int:
    """End every other connection to ``url``'s database; how many were ended."""
    with psycopg.connect(url, autocommit=True) as admin:
        rows = admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid <> pg_backend_pid()").fetchall()
    return sum(1 for (ended,) in rows if ended)


def test_a_cut_connection_is_a_503_without_the_url_then_reconnects(
        postgres_server: Any, tmp_path: Path, session_keys: tuple[Path, Keys],
        caplog: pytest.LogCaptureFixture) -> None:
    url = postgres_server.new_database()
    params = psycopg.conninfo.conninfo_to_dict(url)
    hidden = (str(params["host"]), str(params["dbname"]), "postgresql", "postgres@")
    keys_path, k = session_keys
    app = create_app(ServiceConfig(home=tmp_path / "home", keys=keys_path, db=url))
    read, write = {"X-API-Key": k.reader}, {"X-API-Key": k.writer}
    with TestClient(app, raise_server_exceptions=False) as c:
        assert c.get("/v1/ledger/head", headers=read).status_code == 200
        answers = []
        with caplog.at_level(logging.WARNING, logger="swarmvar.ledger"):
            for method, path, body, headers in (
                    ("GET", "/v1/ledger/head", None, read),
                    ("POST", "/v1/portfolios", {"name": "p", "history": history(60)}, write)):
                assert _cut(url) >= 1
                answers.append(c.request(method, path, json=body, headers=headers))
                # the next call opens a new connection: served
                assert c.get("/v1/ledger/entries", headers=read).status_code == 200
        for r in answers:
            assert r.status_code == 503 and r.headers["Retry-After"], r.text
            error = r.json()["error"]
            assert error["type"] == "LedgerUnreachable", error
            message = error["message"]
            assert message.startswith("the ledger database cannot be "), message
            assert "nothing was" in message and "not move it away" in message, message
            for part in hidden:
                assert part not in message, (part, message)
        # the server's log keeps the URL (without its password) and psycopg's words
        logged = " ".join(rec.getMessage() for rec in caplog.records)
        assert str(params["host"]) in logged and str(params["dbname"]) in logged, logged


@pytest.mark.parametrize("failed", [False, True])
def test_serve_check_says_unreachable_not_repair(
        postgres_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str], failed: bool) -> None:
    """``serve --db``'s check: a ledger database lost after its first connection is said
    to be out of reach (retry), not "not usable ... repair or restore it"; so is one whose
    open meets a lock timeout (``LedgerFailed``: neither damaged nor intact)."""
    import typer

    import swarmvar.ledger
    from swarmvar.cli.serve import _check_db
    from swarmvar.errors import LedgerFailed, LedgerUnreachable

    def gone(*args: object, **kwargs: object) -> None:
        if failed:
            raise LedgerFailed("open", "LockNotAvailable, SQLSTATE 55P03")
        raise LedgerUnreachable("open", "connection refused")

    monkeypatch.setattr(swarmvar.ledger, "Ledger", gone)
    with pytest.raises(typer.Exit) as got:
        _check_db(postgres_url, tmp_path, "--home")
    said = capsys.readouterr().err
    assert got.value.exit_code == 2
    assert said.startswith("error: --db: the ledger database cannot be opened now"), said
    assert "repair" not in said, said
    assert ("neither damaged nor intact" if failed else "damaged (do not move it away)"
            ) in said, said


def test_a_real_server_logs_the_url_its_503_leaves_out(
        postgres_server: Any, tmp_path: Path, session_keys: tuple[Path, Keys],
        server_factory: list[Server]) -> None:
    """``swarmvar serve --db``: the 503 body names "the ledger database"; the server's log
    has a JSON line of the logger ``swarmvar.ledger`` naming the database's URL."""
    import httpx

    url = postgres_server.new_database()
    dbname = str(psycopg.conninfo.conninfo_to_dict(url)["dbname"])
    keys_path, k = session_keys
    home = tmp_path / "home"
    home.mkdir()
    server = start_server(home, keys_path, "--db", url)
    server_factory.append(server)
    assert _cut(url) >= 1
    r = httpx.get(server.url + "/v1/ledger/head", headers={"X-API-Key": k.reader}, timeout=60)
    assert r.status_code == 503 and r.json()["error"]["type"] == "LedgerUnreachable", r.text
    assert dbname not in r.text and str(postgres_server.socket_dir) not in r.text, r.text
    server.stop()
    lines = [json.loads(line) for line in server.log.read_text().splitlines()
             if line.startswith("{")]
    ledger = [x for x in lines if x.get("logger") == "swarmvar.ledger"]
    assert ledger and dbname in ledger[0]["msg"] and "LedgerUnreachable" in ledger[0]["msg"], lines
