"""The variant store made at the server's start: a damaged one fails only the variant routes,
and one deleted since is not made again empty by an observer checkpoint."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest

from swarmvar.evolution.db import DB_FILE
from swarmvar.service import ServiceConfig, create_app

from .conftest import Keys, TestClient, day, history


def test_a_damaged_variant_store_fails_only_the_variant_routes(
        tmp_path: Path, session_keys: tuple[Path, Keys],
        caplog: pytest.LogCaptureFixture) -> None:
    """Garbage bytes in ``evolution.sqlite``: the server starts (a warning logged), /healthz
    answers 200, GET /v1/variants a 500 CorruptStore (and the file is left as it was)."""
    path, k = session_keys
    home = tmp_path / "home"
    home.mkdir()
    garbage = b"not a database at all, garbage" * 10
    (home / DB_FILE).write_bytes(garbage)
    with caplog.at_level(logging.WARNING), \
            TestClient(create_app(ServiceConfig(home=home, keys=path)),
                       raise_server_exceptions=False) as c:
        assert c.get("/healthz").status_code == 200
        r = c.get("/v1/variants", headers={"X-API-Key": k.reader})
        assert r.status_code == 500, r.text
        assert r.json()["error"]["type"] == "CorruptStore", r.text
        assert c.app.state.evolution_made  # type: ignore[attr-defined]
    assert any("variant store not opened" in rec.getMessage() for rec in caplog.records)
    assert (home / DB_FILE).read_bytes() == garbage


def test_a_checkpoint_does_not_make_a_deleted_variant_store_again(
        tmp_path: Path, session_keys: tuple[Path, Keys],
        caplog: pytest.LogCaptureFixture) -> None:
    """The store deleted after the start: the arbiter's next checkpoint is skipped with a
    warning, and GET /v1/variants stays a 500 VariantStoreMissing, not ``[]``."""
    path, k = session_keys
    home = tmp_path / "home"
    cfg = ServiceConfig(home=home, keys=path, checkpoint_every=2)
    store = home / DB_FILE
    with TestClient(create_app(cfg)) as c:
        assert store.exists()  # made at the start
        r = c.post("/v1/portfolios", json={"name": "book", "history": history(60)},
                   headers={"X-API-Key": k.writer})
        assert r.status_code == 201, r.text
        for made in (store, Path(f"{store}-wal"), Path(f"{store}-shm")):
            made.unlink(missing_ok=True)
        rng = np.random.default_rng(3)
        returns = [{"date": day(i), "return": float(rng.normal(0, 0.01))} for i in range(4)]
        with caplog.at_level(logging.WARNING):
            r = c.post("/v1/portfolios/book/returns", json={"returns": returns},
                       headers={"X-API-Key": k.writer})
        assert r.status_code == 201, r.text
        assert any("checkpoint of book" in rec.getMessage() for rec in caplog.records)
        assert not store.exists()
        r = c.get("/v1/variants", headers={"X-API-Key": k.reader})
        assert r.status_code == 500, r.text
        assert r.json()["error"]["type"] == "VariantStoreMissing", r.text
