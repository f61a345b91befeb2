"""The ledger engine's ``LedgerUnavailable`` (a lock past the timeout, no descriptor left) is
an ``sqlite3.OperationalError`` before it is a ``SwarmVarError``: the service answers it as
SQLite's own, a read's 503 with Retry-After, a write's 500 (whether a write may be sent
again is not known where it is caught), never the SwarmVarError handler's blanket 503.
Its subclass ``LedgerUnwritable`` (the ledger's disk full, read-only or an I/O error:
the append rolled back, nothing written) is a 503 with Retry-After for a read and a write
alike, its type and message in the body."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import pytest

from swarmvar.errors import LedgerUnavailable

from .conftest import Keys, TestClient, history


def _unavailable() -> LedgerUnavailable:
    err = LedgerUnavailable("the ledger /h/ledger.sqlite is locked by another connection "
                            "past the busy timeout (database is locked); nothing was "
                            "written: retry")
    err.sqlite_errorcode = 5  # type: ignore[attr-defined]
    return err


@pytest.fixture
def client(home_client: TestClient) -> TestClient:
    return home_client


def test_a_read_meeting_it_is_a_503(client: TestClient, session_keys: tuple[Path, Keys],
                                    monkeypatch: pytest.MonkeyPatch) -> None:
    _, k = session_keys
    err = _unavailable()

    def refuse() -> None:
        raise err

    monkeypatch.setattr(client.app.state.desk.ledger, "signed_head", refuse)
    r = client.get("/v1/ledger/head", headers={"X-API-Key": k.reader})
    assert r.status_code == 503 and r.json()["error"]["type"] == "LedgerUnavailable", r.text
    assert str(err) in r.json()["error"]["message"] and int(r.headers["Retry-After"]) > 0


def test_a_write_meeting_it_stays_a_500(client: TestClient, session_keys: tuple[Path, Keys],
                                        monkeypatch: pytest.MonkeyPatch) -> None:
    _, k = session_keys

    def refuse(*args: object, **kwargs: object) -> None:
        raise _unavailable()

    monkeypatch.setattr(client.app.state.desk, "create", refuse)
    r = client.post("/v1/portfolios", json={"name": "book", "history": history(60)},
                    headers={"X-API-Key": k.writer})
    assert r.status_code == 500 and r.json()["error"]["type"] == "InternalError", r.text
    assert "Retry-After" not in r.headers


# --- the ledger's disk errors: LedgerUnwritable, a 503 for a read and a write -------------

#: The rows' query of the SQLite store (what reading entries runs).
_ROWS = "SELECT IDX, TIMESTAMP, KIND, DATA"


class _Failing:
    """The ledger's connection with SQLite's I/O error (SQLITE_IOERR_READ) raised by the
    first statement starting with ``sql``: a failing disk has no real way in a test."""

    def __init__(self, conn: sqlite3.Connection, sql: str) -> None:
        self._conn, self._sql, self.raised = conn, sql, 0

    def execute(self, sql: str, *args: Any) -> Any:
        if not self.raised and sql.lstrip().upper().startswith(self._sql):
            self.raised += 1
            exc = sqlite3.OperationalError("disk I/O error")
            exc.sqlite_errorcode = 266  # type: ignore[attr-defined]
            raise exc
        return self._conn.execute(sql, *args)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._conn, name)


def _names_it(r: Any, path: Path, cause: str) -> str:
    """The 503's checks: the type, the cause and the file, Retry-After; its message."""
    assert r.status_code == 503, r.text
    body = r.json()["error"]
    assert body["type"] == "LedgerUnwritable", body
    said = body["message"]
    assert said.startswith(f"the ledger {path} cannot be ") and f": {cause} (" in said, said
    assert "nothing was" in said and "do not move it away" in said, said
    assert int(r.headers["Retry-After"]) > 0
    return str(said)


def test_an_append_meeting_a_full_disk_is_a_503_that_writes_nothing(
        client: TestClient, session_keys: tuple[Path, Keys]) -> None:
    """A real SQLITE_FULL (the desk's ledger may not grow past its pages): creating a
    portfolio is a 503 LedgerUnwritable naming "disk full" and the file, with Retry-After;
    nothing was written (the ledger's entries and the portfolios unchanged, the chain
    verifies); once there is room the same request passes."""
    _, k = session_keys
    writer, reader = {"X-API-Key": k.writer}, {"X-API-Key": k.reader}
    ledger = client.app.state.desk.ledger
    conn = ledger.store._conn
    before = [ledger.entry(i).hash for i in range(ledger.size)]
    pages = conn.execute("PRAGMA page_count").fetchone()[0]
    conn.execute(f"PRAGMA max_page_count={pages}")
    body = {"name": "book", "history": history(60)}
    try:
        r = client.post("/v1/portfolios", json=body, headers=writer)
        said = _names_it(r, ledger.path, "disk full")
        assert "cannot be appended to" in said and "nothing was written" in said, said
    finally:
        conn.execute("PRAGMA max_page_count=1073741823")
    assert [ledger.entry(i).hash for i in range(ledger.size)] == before
    assert client.get("/v1/portfolios", headers=reader).json() == []
    assert client.post("/v1/portfolios", json=body, headers=writer).status_code == 201
    assert ledger.size > len(before) and ledger.verify_chain(processes=1).ok
    assert [ledger.entry(i).hash for i in range(len(before))] == before


def test_a_read_meeting_an_io_error_is_a_503(client: TestClient,
                                            session_keys: tuple[Path, Keys]) -> None:
    """Reading entries meets SQLITE_IOERR_READ: a 503 LedgerUnwritable "I/O error", not the
    500 of a damaged ledger; the next read passes."""
    _, k = session_keys
    reader = {"X-API-Key": k.reader}
    store = client.app.state.desk.ledger.store
    real = store._conn
    failing = _Failing(real, _ROWS)
    store._conn = failing
    try:
        r = client.get("/v1/ledger/entries", headers=reader)
        said = _names_it(r, store.path, "I/O error")
        assert "cannot be read" in said and "check its disk" in said, said
        assert failing.raised == 1
    finally:
        store._conn = real
    r = client.get("/v1/ledger/entries", headers=reader)
    assert r.status_code == 200 and r.json()[0]["index"] == 0, r.text


def test_the_routes_document_it(client: TestClient) -> None:
    """A reader route's 503 names LedgerUnwritable; a writer's names it too (an append)."""
    paths = client.app.openapi()["paths"]
    read = paths["/v1/ledger/entries"]["get"]["responses"]["503"]["description"]
    write = paths["/v1/portfolios/{name}/returns"]["post"]["responses"]["503"]["description"]
    variant = paths["/v1/variants/{variant_id}/promote"]["post"]["responses"]["503"][
        "description"]
    assert "LedgerUnwritable" in read and "disk full, read-only or an I/O error" in read
    assert "LedgerUnwritable" in write and "rolled back" in write, write
    assert "LedgerUnreachable" in write and "LedgerUnreachable" in read, write
    assert "returns were stored" in write, write  # an ingest's decisions may wait
    assert "VariantStoreUnwritable" in variant and "LedgerUnwritable" in variant, variant
