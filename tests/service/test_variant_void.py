"""A promotion or rollback whose variant store's COMMIT fails after its ledger note was
appended is voided in the ledger: a ``variant.promote.void`` (``.rollback.void``) entry names
the note (index, hash) and the store's error, the chain verifies, the store is unchanged and
``swarmvar variants history`` shows the note VOIDED. The note's append is real; the COMMIT
raises SQLite's own ``OperationalError`` "disk I/O error" (SQLITE_IOERR) from the store's
connection, wrapped only at COMMIT, which then rolls back as SQLite does."""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from _commit_fails import fail_commit_after, stored  # tests/_commit_fails.py (tests/conftest.py)
from swarmvar.cli.variants import app as variants_app
from swarmvar.errors import LedgerUnreachable
from swarmvar.evolution import Variant, VariantStatus, new_variant, open_home
from swarmvar.ledger.entry import canonical_data
from swarmvar.models import registry
from swarmvar.service import ServiceConfig, create_app

from .conftest import Keys, make_keys


def add_variant(home: Path) -> Variant:
    constructors = {"NormalInverseGamma": registry.agent_class("nig").parameter_names()}
    param = constructors["NormalInverseGamma"][0]
    h = open_home(home)
    try:
        return h.variants.add(new_variant("NormalInverseGamma", {param: 2.0}, constructors,
                                          now=time.time(), description="x"))
    finally:
        h.close()


def history(home: Path) -> list[str]:
    res = CliRunner().invoke(variants_app, ["history", "--home", str(home)])
    assert res.exit_code == 0, (res.output, res.stderr)
    return res.output.splitlines()


def _client(tmp_path: Path) -> tuple[TestClient, Keys, Path]:
    keys = make_keys(tmp_path / "keys.json")
    home = tmp_path / "home"
    return TestClient(create_app(ServiceConfig(home=home, keys=tmp_path / "keys.json"))), \
        keys, home


def test_a_promotion_whose_commit_fails_after_its_note_is_voided(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    c, k, home = _client(tmp_path)
    with c:
        v = add_variant(home)
        ledger = c.app.state.desk.ledger
        size = ledger.size
        failed = fail_commit_after(monkeypatch, lambda: ledger.size > size)
        before = stored(home, v.id)
        r = c.post(f"/v1/variants/{v.id}/promote", headers={"X-API-Key": k.admin})
        assert failed == [1]
        assert r.status_code == 503, r.text
        assert r.json()["error"]["type"] == "VariantStoreUnwritable", r.text
        assert stored(home, v.id) == before  # the store unchanged
        note, void = ledger.entry(size), ledger.entry(size + 1)
        assert ledger.size == size + 2
        assert note.data["type"] == "variant.promote"
        assert void.data["type"] == "variant.promote.void"
        d = void.data["details"]
        assert d["voids"] == {"index": note.index, "hash": note.hash.hex()}
        assert d["action"] == "promote" and d["variant"] == v.id
        assert d["error"].startswith("VariantStoreUnwritable") and "I/O error" in d["error"]
        assert d["key_id"] == note.data["details"]["key_id"]
        assert ledger.verify_chain(processes=1).ok
        [line] = [x for x in history(home) if x.startswith(f"#{note.index} ")]
        assert f"VOIDED by #{void.index}" in line and v.id in line

        # the same request again, the COMMIT passing: it stands, and is not shown voided
        r = c.post(f"/v1/variants/{v.id}/promote", headers={"X-API-Key": k.admin})
        assert r.status_code == 200 and failed == [1], r.text
        assert stored(home, v.id)[0] is VariantStatus.ACTIVE
        assert ledger.entry(-1).data["type"] == "variant.promote"
        [line] = [x for x in history(home) if x.startswith(f"#{ledger.size - 1} ")]
        assert "promote" in line and "VOIDED" not in line

        # a rollback likewise
        size = ledger.size
        failed = fail_commit_after(monkeypatch, lambda: ledger.size > size)
        r = c.post(f"/v1/variants/{v.id}/rollback", headers={"X-API-Key": k.admin})
        assert r.status_code == 503 and failed == [1], r.text
        assert stored(home, v.id)[0] is VariantStatus.ACTIVE
        types = [ledger.entry(i).data["type"] for i in range(size, ledger.size)]
        assert types == ["variant.rollback", "variant.rollback.void"]
        assert ledger.entry(-1).data["details"]["voids"]["index"] == size
        assert ledger.verify_chain(processes=1).ok
        assert any(x.startswith(f"#{size} ") and "rollback" in x and "VOIDED" in x
                   for x in history(home))


def test_a_void_that_cannot_be_appended_is_logged_and_the_store_error_answered(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        caplog: pytest.LogCaptureFixture) -> None:
    """The ledger fills up between the note and the COMMIT (SQLite's real SQLITE_FULL from
    ``PRAGMA max_page_count``): no void, an error logged, the answer the store's."""
    c, k, home = _client(tmp_path)
    with c:
        v = add_variant(home)
        ledger = c.app.state.desk.ledger
        size = ledger.size
        conn = ledger.store._conn

        def grown_then_full() -> bool:
            if ledger.size == size:
                return False
            for _ in range(200):  # bounded: the ledger's file at its page limit
                pages = conn.execute("PRAGMA page_count").fetchone()[0]
                conn.execute(f"PRAGMA max_page_count={pages}")
                try:
                    ledger.add_entry("action", {"pad": "x" * 50})
                except Exception:
                    break
            return True

        fail_commit_after(monkeypatch, grown_then_full)
        before = stored(home, v.id)
        with caplog.at_level(logging.ERROR, logger="swarmvar.service"):
            r = c.post(f"/v1/variants/{v.id}/promote", headers={"X-API-Key": k.admin})
        conn.execute("PRAGMA max_page_count=1073741823")
        assert r.status_code == 503, r.text
        assert r.json()["error"]["type"] == "VariantStoreUnwritable", r.text
        assert stored(home, v.id) == before
        types = [ledger.entry(i).data.get("type") for i in range(size, ledger.size)]
        assert types[0] == "variant.promote" and set(types[1:]) <= {None}, types  # pads only
        assert ledger.verify_chain(processes=1).ok
        assert any(rec.levelno == logging.ERROR and "could not be appended" in rec.getMessage()
                   and f"ledger note #{size}" in rec.getMessage() for rec in caplog.records)


def test_a_commit_that_took_effect_before_its_error_is_answered_made(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        caplog: pytest.LogCaptureFixture) -> None:
    """A COMMIT whose answer is an error although it was made (as a server's lost answer):
    the store holds the promotion, so its note stands, unvoided, and the answer is the
    promotion (200), the lost answer logged as a warning (before: a 503 saying nothing was
    changed, while the promotion stood and a retry was refused)."""
    c, k, home = _client(tmp_path)
    with c:
        v = add_variant(home)
        ledger = c.app.state.desk.ledger
        size = ledger.size
        failed = fail_commit_after(monkeypatch, lambda: ledger.size > size, commit_first=True)
        with caplog.at_level(logging.WARNING, logger="swarmvar.service"):
            r = c.post(f"/v1/variants/{v.id}/promote", headers={"X-API-Key": k.admin})
        assert failed == [1]
        assert r.status_code == 200 and r.json()["status"] == "active", r.text
        assert stored(home, v.id)[0] is VariantStatus.ACTIVE
        assert ledger.size == size + 1 and ledger.entry(size).data["type"] == "variant.promote"
        assert "VOIDED" not in "\n".join(history(home))
        assert any(rec.levelno == logging.WARNING and "the change is stored" in rec.getMessage()
                   and f"#{size}" in rec.getMessage() for rec in caplog.records)


def test_a_note_whose_append_may_have_landed_is_voided_when_it_did(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The ledger's append commits, then its answer is lost (``LedgerUnreachable`` with
    ``landed``, as PostgreSQL's): the promotion is rolled back, and the note, found where
    it was appended (the same text), is voided; the answer (503) says nothing was made."""
    c, k, home = _client(tmp_path)
    with c:
        v = add_variant(home)
        desk = c.app.state.desk
        ledger = desk.ledger
        size = ledger.size
        real = ledger.store.append
        lost: list[int] = []

        def append(drafts: Any, *, if_size: int | None = None) -> Any:
            rows = real(drafts, if_size=if_size)
            if not lost and '"variant.promote"' in drafts[0][1]:
                lost.append(1)
                raise LedgerUnreachable("append", "connection lost", landed=True)
            return rows

        monkeypatch.setattr(ledger.store, "append", append)
        before = stored(home, v.id)
        r = c.post(f"/v1/variants/{v.id}/promote", headers={"X-API-Key": k.admin})
        assert lost == [1] and r.status_code == 503, r.text
        assert r.json()["error"]["type"] == "LedgerUnreachable", r.text
        assert "was not made" in r.json()["error"]["message"]
        assert stored(home, v.id) == before
        note, void = ledger.entry(size), ledger.entry(size + 1)
        assert ledger.size == size + 2 and note.data["type"] == "variant.promote"
        assert void.data["type"] == "variant.promote.void"
        assert void.data["details"]["voids"] == {"index": size, "hash": note.hash.hex()}
        assert void.data["details"]["request_id"] == note.data["details"]["request_id"]
        assert ledger.verify_chain(processes=1).ok
        assert any(x.startswith(f"#{size} ") and "VOIDED" in x for x in history(home))

        r = c.post(f"/v1/variants/{v.id}/promote", headers={"X-API-Key": k.admin})
        assert r.status_code == 200 and stored(home, v.id)[0] is VariantStatus.ACTIVE


def test_another_processs_note_where_the_note_was_tried_is_not_voided(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The note's append is lost before it lands, and another process's note (another
    request's promotion) is appended at that index: it is not this note (its text
    differs), so nothing is voided and the answer (503) says the note did not land."""
    c, k, home = _client(tmp_path)
    with c:
        v = add_variant(home)
        ledger = c.app.state.desk.ledger
        size = ledger.size
        real = ledger.store.append
        lost: list[int] = []
        other = canonical_data({"type": "variant.promote",
                                "details": {"variant": v.id, "request_id": "other"}})

        def append(drafts: Any, *, if_size: int | None = None) -> Any:
            if not lost and '"variant.promote"' in drafts[0][1]:
                lost.append(1)
                real([("action", other, drafts[0][2])])  # another process, first
                raise LedgerUnreachable("append", "connection lost", landed=True)
            return real(drafts, if_size=if_size)

        monkeypatch.setattr(ledger.store, "append", append)
        before = stored(home, v.id)
        r = c.post(f"/v1/variants/{v.id}/promote", headers={"X-API-Key": k.admin})
        assert lost == [1] and r.status_code == 503, r.text
        assert "it did not land" in r.json()["error"]["message"], r.text
        assert stored(home, v.id) == before
        assert ledger.size == size + 1
        assert ledger.entry(size).data["details"]["request_id"] == "other"
        assert "VOIDED" not in "\n".join(history(home))


def test_a_note_whose_commit_is_still_in_flight_is_waited_for_and_voided(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The note's append raises (its answer lost) while its COMMIT is still in flight on
    the old connection: the size read now does not show it, but ``Ledger.holds`` waits
    for it (PostgreSQL's: a read under ``LOCK TABLE ... IN SHARE MODE``; here the store's
    own ``holds`` lets the COMMIT land first): found and voided, never "it did not
    land" with a note that lands after."""
    c, k, home = _client(tmp_path)
    with c:
        v = add_variant(home)
        ledger = c.app.state.desk.ledger
        size = ledger.size
        real = ledger.store.append
        flying: list[tuple[Any, int | None]] = []

        def append(drafts: Any, *, if_size: int | None = None) -> Any:
            if not flying and '"variant.promote"' in drafts[0][1]:
                flying.append((drafts, if_size))  # committed later, not yet seen
                raise LedgerUnreachable("append", "connection lost", landed=True)
            return real(drafts, if_size=if_size)

        def holds(index: int, kind: str, text: str) -> bool:
            while flying:  # the lock wait: the append in flight lands first
                drafts, if_size = flying.pop()
                assert real(drafts, if_size=if_size) is not None
            row = next(iter(ledger.store.rows(index, index + 1)), None)
            return row is not None and (row[2], row[3]) == (kind, text)

        monkeypatch.setattr(ledger.store, "append", append)
        monkeypatch.setattr(ledger.store, "holds", holds, raising=False)
        r = c.post(f"/v1/variants/{v.id}/promote", headers={"X-API-Key": k.admin})
        assert r.status_code == 503 and f"landed as #{size}" in r.text, r.text
        assert ledger.size == size + 2
        assert ledger.entry(size + 1).data["type"] == "variant.promote.void"
        assert ledger.verify_chain(processes=1).ok
