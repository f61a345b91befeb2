"""GET /v1/ledger/head over a ledger damaged while the service runs: HTTP 500 naming the
file, nothing signed; the service's own app (create_app), served by Starlette's
TestClient, with a real reader key in a real key file."""

from __future__ import annotations

import warnings
from collections.abc import Callable
from pathlib import Path

import pytest

from swarmvar.ledger import EntryKind, Ledger
from swarmvar.ledger.damage import PROCESS_MEMO, DamageMemo
from swarmvar.service import KeyFile, Role, ServiceConfig, create_app

with warnings.catch_warnings():  # starlette asks for httpx2 (not installed); httpx works
    warnings.filterwarnings("ignore", message=".*httpx2")
    from starlette.testclient import TestClient


def test_a_head_over_a_damaged_ledger_is_a_500_naming_the_file(
    tmp_path: Path, smash_page: Callable[[Path], None]
) -> None:
    home = tmp_path / "home"
    keys = tmp_path / "api-keys.json"
    _, reader = KeyFile(keys).create(Role.READER, rate=0)
    headers = {"X-API-Key": reader}
    path = home / "ledger.sqlite"
    with TestClient(create_app(ServiceConfig(home=home, keys=keys))) as client:
        assert path.exists()  # the service created its ledger at start
        # entries written beside the service (another process would do the same), through
        # a ledger with its own memo, so the service's first check is the one asked below
        with Ledger(home, damage_memo=DamageMemo()) as writer:
            writer.add_entries([(EntryKind.ESTIMATE, {"i": i, "pad": "y" * 100})
                                for i in range(150)])
        smash_page(path)  # a b-tree page's header, while the service runs
        for _ in range(2):  # and again: still refused (the damaged answer stands)
            r = client.get("/v1/ledger/head", headers=headers)
            assert r.status_code == 500, r.text
            error = r.json()["error"]
            assert error["type"] == "LedgerCorrupted"
            assert str(path) in error["message"] and "no head was signed" in error["message"]
            assert "signature" not in r.json()
        # the rest of the ledger API still answers (the entries before the damage read)
        assert client.get("/v1/ledger/entries/0", headers=headers).status_code == 200


def test_a_head_over_a_whole_ledger_is_signed(tmp_path: Path) -> None:
    """The same service and key over the same ledger left whole: a signed head (200),
    so the 500 above is the damage's, not the set-up's."""
    home = tmp_path / "home"
    keys = tmp_path / "api-keys.json"
    _, reader = KeyFile(keys).create(Role.READER, rate=0)
    with TestClient(create_app(ServiceConfig(home=home, keys=keys))) as client:
        with Ledger(home, damage_memo=DamageMemo()) as writer:
            writer.add_entries([(EntryKind.ESTIMATE, {"i": i, "pad": "y" * 100})
                                for i in range(150)])
        r = client.get("/v1/ledger/head", headers={"X-API-Key": reader})
        assert r.status_code == 200, r.text
        assert r.json()["size"] == 151 and r.json()["signature"]


def test_damage_the_verify_route_finds_makes_the_next_head_a_500(
    tmp_path: Path, smash_page: Callable[[Path], None], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Within the damage check's cap (here an hour, so timing cannot decide it) a head is
    signed over new damage (the documented trade-off); POST /v1/ledger/verify checks now,
    and its answer is kept: the next head is refused at once."""
    monkeypatch.setattr(PROCESS_MEMO, "min_gap_ns", 3600 * 10**9)  # the service's memo
    home = tmp_path / "home"
    keys = tmp_path / "api-keys.json"
    _, reader = KeyFile(keys).create(Role.READER, rate=0)
    headers = {"X-API-Key": reader}
    path = home / "ledger.sqlite"
    with TestClient(create_app(ServiceConfig(home=home, keys=keys))) as client:
        with Ledger(home, damage_memo=DamageMemo()) as writer:
            writer.add_entries([(EntryKind.ESTIMATE, {"i": i, "pad": "y" * 100})
                                for i in range(150)])
        assert client.get("/v1/ledger/head", headers=headers).status_code == 200
        smash_page(path)
        r = client.get("/v1/ledger/head", headers=headers)
        assert r.status_code == 200, r.text  # the cap: the check of moments ago stands
        v = client.post("/v1/ledger/verify", headers=headers)
        assert v.status_code == 200 and v.json()["ok"] is False, v.text
        assert str(path) in v.json()["reason"]
        r = client.get("/v1/ledger/head", headers=headers)
        assert r.status_code == 500 and "no head was signed" in r.json()["error"]["message"]
