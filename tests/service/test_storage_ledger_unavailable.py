"""The ledger engine's ``LedgerUnavailable`` (a lock past the timeout, no descriptor left) is
an ``sqlite3.OperationalError`` before it is a ``SwarmVarError``: the service answers it as
SQLite's own, a read's 503 with Retry-After, a write's 500 (whether a write may be sent
again is not known where it is caught), never the SwarmVarError handler's blanket 503."""

from __future__ import annotations

from pathlib import Path

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
