"""The observers' decisions on a batch's beats are appended after the beats (the observers
see beats in ledger order, so only once those are stored). When that second append meets
the ledger's disk full (a real SQLITE_FULL: ``PRAGMA max_page_count`` set once the beats
are in), the write is answered with what was stored (the beats) and what was not (their
decisions), never "nothing was written"; the decisions wait in the process, a new write
is refused whole while they cannot go in, and a resend of the same returns, once there is
room, is answered as already recorded and appends them, each once. A ledger whose append
says it is damaged is answered alike, as LedgerCorrupted (a 500), the decisions waiting."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from swarmvar.arbiter import Arbiter
from swarmvar.errors import LedgerCorrupted, LedgerUnwritable
from swarmvar.ledger import EntryKind, Ledger
from swarmvar.service.desk import DatedReturn, Desk

from .conftest import Keys, app_with_book, day

#: Returns in the batch (one beat, and one decision, each).
BEATS = 20
SEQS = list(range(1, BEATS + 1))


def _fill_after_beats(desk: Desk) -> Callable[[], None]:
    """Make the ledger's file full (no page more) at the observers' first call, that is
    once the batch's beats are appended and before their decisions are; return how to
    give it room again. (A batch's decisions, about 230 bytes each, need a new 4 KiB page
    when there are 20 of them.)"""
    conn = desk.ledger.store._conn  # type: ignore[attr-defined]
    real = desk.observing.observe
    full: list[bool] = []

    def observe(*args: Any, **kwargs: Any) -> Any:
        if not full:
            pages = conn.execute("PRAGMA page_count").fetchone()[0]
            conn.execute(f"PRAGMA max_page_count={pages}")
            full.append(True)
        return real(*args, **kwargs)

    desk.observing.observe = observe  # type: ignore[method-assign]
    return lambda: conn.execute("PRAGMA max_page_count=1073741823")


def _entries(ledger: Ledger, kind: EntryKind) -> list[dict[str, Any]]:
    size = ledger.store.size()
    return [json.loads(r[3]) for r in ledger.store.rows(0, size) if r[2] == kind.value]


def _ticks(ledger: Ledger) -> list[int]:
    return [int(d["details"]["seq"]) for d in _entries(ledger, EntryKind.ACTION)
            if d.get("type") == "tick"]


def test_decisions_that_cannot_be_appended_are_said_and_appended_by_a_resend(
        tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    hist = [DatedReturn(date(2021, 1, 1) + timedelta(days=i), float(rng.normal(0, 0.01)))
            for i in range(60)]
    batch = [DatedReturn(date(2023, 1, 2) + timedelta(days=i), float(rng.normal(0, 0.01)))
             for i in range(BEATS)]
    with Ledger.open(tmp_path) as ledger:
        desk = Desk(ledger, tmp_path, observers=(Arbiter(record_decisions=False),))
        desk.create("s", hist, key_id="k")
        room = _fill_after_beats(desk)
        with pytest.raises(LedgerUnwritable) as got:
            desk.ingest("s", batch, key_id="k")
        said = " ".join(str(got.value).split())
        for words in (f"the returns were stored (beats 1 to {BEATS} of 's')",
                      f"but not the observers' {BEATS} decisions on them", "disk full",
                      "this server process keeps the decisions",
                      "at its next ingest of any portfolio", "at its shutdown",
                      "a resend of the same returns to it is answered as already recorded",
                      "a resend reaching another worker or replica appends nothing"):
            assert words in said, said
        assert "nothing was written" not in said, said
        assert _ticks(ledger) == SEQS  # the beats are stored
        assert _entries(ledger, EntryKind.DECISION) == []  # their decisions are not
        size = ledger.store.size()
        # a new return while the decisions still cannot go in: refused whole
        later = [DatedReturn(date(2023, 2, 1), 0.001)]
        with pytest.raises(LedgerUnwritable, match="nothing of this request was stored") \
                as got:
            desk.ingest("s", later, key_id="k")
        assert "beats this server process stored before" in str(got.value)
        assert ledger.store.size() == size
        room()
        resent = desk.ingest("s", batch, key_id="k")
        assert [r.duplicate for r in resent] == [True] * BEATS
        assert sorted(d["seq"] for d in _entries(ledger, EntryKind.DECISION)) == SEQS
        assert ledger.store.size() == size + BEATS
        mine = desk.decisions("s")
        assert [d.seq for d in mine] == SEQS
        assert ledger.verify_chain(processes=1).ok
    with Ledger.open(tmp_path) as ledger:  # another process reads them back from the ledger
        other = Desk(ledger, tmp_path, observers=(Arbiter(record_decisions=False),))
        assert other.decisions("s") == mine


def test_the_service_answers_what_was_stored(
        tmp_path: Path, session_keys: tuple[Path, Keys]) -> None:
    """Through the app: a 503 with Retry-After saying the returns were stored and their
    decisions were not; the resend, once there is room, is 200 with both duplicates."""
    keys, k = session_keys
    with app_with_book(tmp_path, keys, k.writer) as c:
        desk = c.app.state.desk  # type: ignore[attr-defined]
        room = _fill_after_beats(desk)
        body = {"returns": [{"date": day(i), "return": 0.001 * (i % 7 - 3)}
                            for i in range(BEATS)]}
        h = {"X-API-Key": k.writer}
        r = c.post("/v1/portfolios/book/returns", headers=h, json=body)
        assert r.status_code == 503 and r.headers.get("Retry-After"), r.text
        err = r.json()["error"]
        assert err["type"] == "LedgerUnwritable", err
        assert f"the returns were stored (beats 1 to {BEATS} of 'book')" in err["message"], err
        r = c.get("/v1/portfolios/book/var", headers={"X-API-Key": k.reader})
        assert r.status_code == 200, r.text
        room()
        r = c.post("/v1/portfolios/book/returns", headers=h, json=body)
        assert r.status_code == 200 and r.json()["duplicates"] == BEATS, r.text
        assert sorted(d["seq"] for d in _entries(desk.ledger, EntryKind.DECISION)) == SEQS


def test_a_damaged_ledgers_answer_says_what_was_stored_and_keeps_the_advice(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The decisions' append meets SQLite's "SQL logic error" (LedgerCorrupted, "nothing was
    written" in the store's words): the answer is LedgerCorrupted (a 500) saying the returns
    were stored, without the store's "nothing was written", with where the decisions wait;
    a resend once the append passes appends them."""
    from swarmvar.service.app import _status

    rng = np.random.default_rng(2)
    hist = [DatedReturn(date(2021, 1, 1) + timedelta(days=i), float(rng.normal(0, 0.01)))
            for i in range(60)]
    batch = [DatedReturn(date(2023, 1, 2) + timedelta(days=i), 0.001 * (i % 5 - 2))
             for i in range(3)]
    with Ledger.open(tmp_path) as ledger:
        desk = Desk(ledger, tmp_path, observers=(Arbiter(record_decisions=False),))
        desk.create("s", hist, key_id="k")
        real = ledger.store.append
        broken = [True]

        def append(drafts: Any, **kw: Any) -> Any:
            if broken and any(k == EntryKind.DECISION.value for k, _, _ in drafts):
                raise LedgerCorrupted(f"{ledger.path}: cannot append: SQL logic error; "
                                      "nothing was written")
            return real(drafts, **kw)

        monkeypatch.setattr(ledger.store, "append", append)
        with pytest.raises(LedgerCorrupted) as got:
            desk.ingest("s", batch, key_id="k")
        said = str(got.value)
        assert _status(got.value) == 500
        assert "the returns were stored (beats 1 to 3 of 's'), but not the observers' 3 " \
            "decisions on them: " in said, said
        assert "SQL logic error" in said and "nothing was written" not in said, said
        assert "this server process keeps the decisions" in said, said
        assert "a resend of the same returns to it" in said, said
        assert _ticks(ledger) == [1, 2, 3] and _entries(ledger, EntryKind.DECISION) == []
        broken.clear()
        resent = desk.ingest("s", batch, key_id="k")
        assert [r.duplicate for r in resent] == [True] * 3
        assert sorted(d["seq"] for d in _entries(ledger, EntryKind.DECISION)) == [1, 2, 3]
