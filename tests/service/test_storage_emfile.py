"""The service's answers when a store cannot be opened: no descriptor left is a 503 (retry),
a store gone a 500 naming it, and each route documents the answers of the store it reads."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

import swarmvar.evolution.db as evolution_db
from _fd_fill import PRELUDE  # tests/_fd_fill.py (on the path: tests/conftest.py)

from .conftest import Keys, TestClient

#: The open-file limit of the subprocess (bounds the loop filling it).
LIMIT = 256

_SCRIPT = """
import warnings
from pathlib import Path
warnings.filterwarnings("ignore")
from starlette.testclient import TestClient
from swarmvar.service import ServiceConfig, create_app
home, keys, reader = Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3]
headers = {{"X-API-Key": reader}}
with TestClient(create_app(ServiceConfig(home=home, keys=keys)),
                raise_server_exceptions=False) as c:
    print(c.get("/v1/variants", headers=headers).status_code)  # creates the store
    held = fill({limit})
    r = c.get("/v1/variants", headers=headers)
    release(held)
    body = r.json()["error"]
    print(r.status_code, body["type"], r.headers.get("Retry-After"))
    print(body["message"])
    print(c.get("/v1/variants", headers=headers).status_code)
"""


@pytest.fixture
def client(home_client: TestClient) -> TestClient:
    return home_client


def test_no_descriptor_left_on_the_variant_store_is_a_503(
        tmp_path: Path, session_keys: tuple[Path, Keys]) -> None:
    """A real EMFILE (the server process at its open-file limit) on GET /v1/variants: a 503
    VariantStoreUnavailable naming the store with Retry-After, not a 500 CorruptStore
    telling the operator to move a whole store away; it passes once descriptors are free."""
    keys, k = session_keys
    home = tmp_path / "home"
    script = PRELUDE + _SCRIPT.format(limit=LIMIT)
    done = subprocess.run([sys.executable, "-c", script, str(home), str(keys), k.reader],
                          capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.strip().split("\n")
    assert len(lines) == 4 and lines[0] == "200" and lines[3] == "200", lines
    assert lines[1] == "503 VariantStoreUnavailable 5", lines
    store = home / evolution_db.DB_FILE
    assert lines[2].startswith(f"the variant store {store} cannot be opened now (unable to "
                               "open database file"), lines[2]
    assert "move it away" not in lines[2] and "retry" in lines[2]


def test_a_variant_store_gone_is_a_500_naming_it(
        client: TestClient, session_keys: tuple[Path, Keys],
        monkeypatch: pytest.MonkeyPatch) -> None:
    """evolution.sqlite a link into a folder that is not there: SQLite cannot create it,
    with descriptors to spare; a retry would meet it again."""
    _, k = session_keys
    home = client.app.state.config.home
    store = home / evolution_db.DB_FILE
    for made in (store, Path(f"{store}-wal"), Path(f"{store}-shm")):  # made at the start
        made.unlink(missing_ok=True)
    store.symlink_to(home / "gone" / "evolution.sqlite")
    monkeypatch.setattr(evolution_db, "_OPEN_ATTEMPTS", 2)  # the racing creator's wait
    r = client.get("/v1/variants", headers={"X-API-Key": k.reader})
    assert r.status_code == 500, r.text
    body = r.json()["error"]
    assert body["type"] == "VariantStoreMissing", body
    assert body["message"].startswith(f"the variant store {store} cannot be opened (No such "
                                      "file or directory"), body
    assert "Retry-After" not in r.headers and "move it away" not in body["message"]


class _Planted:
    """The ledger's connection, with SQLite's CANTOPEN raised by its next SELECT."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn
        self.raised = 0

    def execute(self, sql: str, *args: Any) -> Any:
        if self.raised == 0 and sql.lstrip().upper().startswith("SELECT"):
            self.raised += 1
            exc = sqlite3.OperationalError("unable to open database file")
            exc.sqlite_errorcode = 14  # type: ignore[attr-defined]
            raise exc
        return self._conn.execute(sql, *args)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._conn, name)


def test_a_ledger_read_meeting_cantopen_is_a_503_not_damage(
        client: TestClient, session_keys: tuple[Path, Keys]) -> None:
    """CANTOPEN on the ledger's open connection (a temporary file under EMFILE), the file
    there: the store lets it through, the service answers 503 LedgerUnavailable, not a
    500 LedgerCorrupted ("run ledger verify")."""
    _, k = session_keys
    store: Any = client.app.state.desk.ledger.store
    planted = _Planted(store._conn)
    store._conn = planted
    try:
        r = client.get("/v1/ledger/entries", headers={"X-API-Key": k.reader})
    finally:
        store._conn = planted._conn
    assert planted.raised == 1
    assert r.status_code == 503, r.text
    assert r.json()["error"]["type"] == "LedgerUnavailable" and r.headers["Retry-After"]
    assert client.get("/v1/ledger/entries", headers={"X-API-Key": k.reader}).status_code == 200


def test_each_route_documents_the_answers_of_the_store_it_reads(client: TestClient) -> None:
    """/v1/variants (and the admins' promote and rollback) document the variant store's
    503 and 500, not the ledger's LedgerMissing; the ledger's reader routes the ledger's,
    not the variant store's."""
    paths = client.get("/openapi.json").json()["paths"]
    variant_ops = [paths["/v1/variants"]["get"],
                   paths["/v1/variants/{variant_id}/promote"]["post"],
                   paths["/v1/variants/{variant_id}/rollback"]["post"]]
    for op in variant_ops:
        r500 = op["responses"]["500"]["description"]
        r503 = op["responses"]["503"]["description"]
        assert "CorruptStore" in r500 and "VariantStoreMissing" in r500, op["summary"]
        assert "LedgerMissing" not in r500 and "LedgerUnavailable" not in r503
        assert "VariantStoreUnavailable" in r503 and "VariantStoreLocked" in r503
    for path in ("/v1/ledger/entries", "/v1/ledger/head", "/v1/portfolios"):
        op = paths[path]["get"]
        assert "LedgerMissing" in op["responses"]["500"]["description"], path
        r503 = op["responses"]["503"]["description"]
        assert "LedgerUnavailable" in r503 and "variant store" not in r503, path


def test_a_variant_store_deleted_after_the_start_is_not_made_again(
        client: TestClient, session_keys: tuple[Path, Keys]) -> None:
    """The server makes its variant store at its start; deleted since, GET /v1/variants is a
    500 naming it, not ``[]`` from a new empty store that would then take promotions."""
    _, k = session_keys
    home = client.app.state.config.home
    store = home / evolution_db.DB_FILE
    assert store.exists()  # made at the start
    assert client.get("/v1/variants", headers={"X-API-Key": k.reader}).status_code == 200
    for made in (store, Path(f"{store}-wal"), Path(f"{store}-shm")):
        made.unlink(missing_ok=True)
    r = client.get("/v1/variants", headers={"X-API-Key": k.reader})
    assert r.status_code == 500, r.text
    assert r.json()["error"]["type"] == "VariantStoreMissing", r.text
    assert not store.exists()
