"""A store used after its ``close()`` (``LedgerClosed``, ``VariantStoreClosed``: the
server's own mistake, only while it shuts down) is a 500 without ``Retry-After``, never
the 503 "retry" of a server out of reach (tests/pg.py's real server for the ledger)."""

from __future__ import annotations

from pathlib import Path

from swarmvar.evolution.errors import VariantStoreClosed
from swarmvar.service import ServiceConfig, create_app

from .conftest import Keys, TestClient


def test_a_closed_ledger_store_is_a_500_without_retry_after(
        postgres_url: str, tmp_path: Path, session_keys: tuple[Path, Keys]) -> None:
    keys_path, k = session_keys
    app = create_app(ServiceConfig(home=tmp_path / "home", keys=keys_path, db=postgres_url))
    read = {"X-API-Key": k.reader}
    with TestClient(app, raise_server_exceptions=False) as c:
        assert c.get("/v1/ledger/head", headers=read).status_code == 200
        app.state.desk.ledger.store.close()
        r = c.get("/v1/ledger/head", headers=read)
    assert r.status_code == 500, r.text
    assert r.json()["error"]["type"] == "LedgerClosed", r.text
    assert "Retry-After" not in r.headers, r.headers


def test_a_closed_variant_store_is_a_500_without_retry_after(
        tmp_path: Path, session_keys: tuple[Path, Keys]) -> None:
    """Raised by a route of the test's own (the app's handler answers every route alike)."""
    keys_path, _ = session_keys
    app = create_app(ServiceConfig(home=tmp_path / "home", keys=keys_path))

    @app.get("/closed-variant-store")
    def closed() -> None:
        raise VariantStoreClosed("the variant store database is closed")

    with TestClient(app, raise_server_exceptions=False) as c:
        r = c.get("/closed-variant-store")
    assert r.status_code == 500, r.text
    assert r.json()["error"]["type"] == "VariantStoreClosed", r.text
    assert "Retry-After" not in r.headers, r.headers
