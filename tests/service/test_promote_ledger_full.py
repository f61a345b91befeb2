"""A promotion or rollback stands only with its ledger note: the note is written inside
the variant store's transaction, so a ledger that cannot take it (its disk full: a real
SQLITE_FULL from ``PRAGMA max_page_count``) leaves the variant as it was, the answer's
"nothing changed" true, and the same request succeeds once the ledger takes writes."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient

from swarmvar.evolution import VariantStatus, new_variant, open_home
from swarmvar.models import registry
from swarmvar.service import ServiceConfig, create_app

from .conftest import make_keys


def _fill(ledger: Any) -> None:
    """The ledger's file at its page limit: the next entry needs a page it cannot have."""
    conn = ledger.store._conn
    for _ in range(200):  # bounded: a few pages of padding
        conn.execute(f"PRAGMA max_page_count={conn.execute('PRAGMA page_count').fetchone()[0]}")
        try:
            ledger.add_entry("action", {"pad": "x" * 50})
        except Exception:
            break
    conn.execute(f"PRAGMA max_page_count={conn.execute('PRAGMA page_count').fetchone()[0]}")


def _status(home: Path, vid: str) -> VariantStatus:
    h = open_home(home)
    try:
        return h.variants.get(vid).status
    finally:
        h.close()


def test_a_promotion_whose_note_cannot_be_written_is_rolled_back(tmp_path: Path) -> None:
    k = make_keys(tmp_path / "keys.json")
    home = tmp_path / "home"
    with TestClient(create_app(ServiceConfig(home=home, keys=tmp_path / "keys.json"))) as c:
        constructors = {"NormalInverseGamma": registry.agent_class("nig").parameter_names()}
        param = constructors["NormalInverseGamma"][0]
        h = open_home(home)
        try:
            v = h.variants.add(new_variant("NormalInverseGamma", {param: 2.0}, constructors,
                                           now=time.time(), description="x"))
        finally:
            h.close()
        before = _status(home, v.id)
        ledger = c.app.state.desk.ledger
        _fill(ledger)
        size = ledger.size
        r = c.post(f"/v1/variants/{v.id}/promote", headers={"X-API-Key": k.admin})
        assert r.status_code == 503 and r.json()["error"]["type"] == "LedgerUnwritable", r.text
        assert _status(home, v.id) == before and ledger.size == size  # nothing changed
        ledger.store._conn.execute("PRAGMA max_page_count=1073741823")
        r = c.post(f"/v1/variants/{v.id}/promote", headers={"X-API-Key": k.admin})
        assert r.status_code == 200, r.text
        assert _status(home, v.id) is VariantStatus.ACTIVE
        notes = [ledger.entry(i).data for i in range(size, ledger.size)]
        assert [n["type"] for n in notes] == ["variant.promote"], notes
        # a rollback likewise: refused whole while the ledger is full
        _fill(ledger)
        size = ledger.size
        r = c.post(f"/v1/variants/{v.id}/rollback", headers={"X-API-Key": k.admin})
        assert r.status_code == 503, r.text
        assert _status(home, v.id) is VariantStatus.ACTIVE and ledger.size == size
        ledger.store._conn.execute("PRAGMA max_page_count=1073741823")
        r = c.post(f"/v1/variants/{v.id}/rollback", headers={"X-API-Key": k.admin})
        assert r.status_code == 200 and _status(home, v.id) is not VariantStatus.ACTIVE, r.text
        assert ledger.verify_chain(processes=1).ok
