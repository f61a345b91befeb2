"""A batch of beats whose append's answer was lost is recognised as this process's.

The ledger store's append is wrapped: it lets the commit happen, then raises what psycopg
raises for a connection lost before the COMMIT's answer came (an ``OperationalError``).
The desk's path is the same on both backends (it compares the rows' text), so it runs on
SQLite and on a real PostgreSQL server (``postgres_url``). Whether the sync right after
the failed append finds the beats, or only a later one (that sync failing too), or they
never landed: the ledger holds each beat once, its chain verifies, the arbiter decides on
each beat once (in the ledger and in the desk's book), and the ingest or its resend says
the returns are stored; another process over the same ledger sees the same.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import psycopg
import pytest

from swarmvar.arbiter import Arbiter
from swarmvar.ledger import EntryKind, Ledger
from swarmvar.service.desk import DatedReturn, Desk

_RNG = np.random.default_rng(11)
HIST = [DatedReturn(date(2021, 1, 1) + timedelta(days=i), float(_RNG.normal(0, 0.01)))
        for i in range(60)]
BATCH = [DatedReturn(date(2023, 1, 2) + timedelta(days=i), 0.001 * (i % 5 - 2))
         for i in range(5)]
LOST = "consuming input failed: server closed the connection unexpectedly"


@pytest.fixture(params=["sqlite", "postgres"])
def ledger(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Ledger]:
    if request.param == "sqlite":
        opened = Ledger.open(tmp_path)
    else:
        opened = Ledger(request.getfixturevalue("postgres_url"))
    with opened:
        yield opened


def _is_beats(drafts: Any) -> bool:
    return any(k == EntryKind.ACTION.value and '"tick"' in text for k, text, _ in drafts)


def _lose_answers(ledger: Ledger, *, landed: bool = True, down: bool = False
                  ) -> tuple[list[int], Callable[[], None]]:
    """Wrap the store's append: the first append of beats commits (unless not ``landed``)
    and then raises psycopg's OperationalError of a lost connection; with ``down`` the
    ledger's size reads raise it too from then on (still out of reach) until ``back()``.
    The list counts the entries of each append of beats tried."""
    store = ledger.store
    real_append, real_size = store.append, store.size
    beats: list[int] = []
    unreachable: list[bool] = []

    def append(drafts: Any, **kw: Any) -> Any:
        if _is_beats(drafts):
            beats.append(len(drafts))
            if len(beats) == 1:
                if landed:
                    assert real_append(drafts, **kw) is not None
                unreachable[:] = [down]
                raise psycopg.OperationalError(LOST)
        return real_append(drafts, **kw)

    def size() -> int:
        if any(unreachable):
            raise psycopg.OperationalError(LOST)
        return real_size()

    def back() -> None:
        unreachable.clear()

    store.append = append  # type: ignore[method-assign]
    store.size = size  # type: ignore[method-assign]
    return beats, back


def _desk(ledger: Ledger, home: Path) -> Desk:
    desk = Desk(ledger, home, observers=(Arbiter(record_decisions=False),))
    desk.flush_every = 600.0  # the ingest's doing, not the timer's
    return desk


def _check_once(ledger: Ledger, home: Path) -> None:
    """One tick per beat 1..5 of 's', the chain verifies, one decision per beat; another
    process reading the ledger sees the beats and the decisions once."""
    rows = list(ledger.store.rows(0, ledger.store.size()))
    ticks = Counter(json.loads(r[3])["details"]["seq"] for r in rows
                    if r[2] == EntryKind.ACTION.value and '"tick"' in r[3])
    assert ticks == Counter({1: 1, 2: 1, 3: 1, 4: 1, 5: 1}), ticks
    decided = sorted(json.loads(r[3])["seq"] for r in rows if r[2] == EntryKind.DECISION.value)
    assert decided == [1, 2, 3, 4, 5], decided
    assert ledger.verify_chain().ok
    other = Desk(ledger, home, observers=(Arbiter(record_decisions=False),))
    assert other.info("s").beats == 5
    assert [d.seq for d in other.decisions("s")] == [1, 2, 3, 4, 5]
    other.shutdown()


def test_the_sync_at_once_finds_the_beats_and_the_ingest_says_stored(
        ledger: Ledger, tmp_path: Path) -> None:
    desk = _desk(ledger, tmp_path)
    desk.create("s", HIST, key_id="k")
    beats, _ = _lose_answers(ledger)
    got = desk.ingest("s", BATCH, key_id="k")
    assert [(r.seq, r.duplicate) for r in got] == [(i, False) for i in range(1, 6)]
    assert len(beats) == 1  # appended once, never again
    assert [d.seq for d in desk.decisions("s")] == [1, 2, 3, 4, 5]
    assert desk._undecided == [] and getattr(desk, "_landing", None) is None
    assert all(r.duplicate for r in desk.ingest("s", BATCH, key_id="k"))
    _check_once(ledger, tmp_path)
    desk.shutdown()


@pytest.mark.parametrize("found_by", ["resend", "read"])
def test_a_later_sync_finds_the_beats_and_the_resend_says_stored(
        ledger: Ledger, tmp_path: Path, found_by: str) -> None:
    """The sync right after the failed append fails too (the ledger still out of reach):
    the ingest raises the append's error; once the ledger is back, the next sync (the
    resend's, or a read's first) finds the beats, the observers decide then, and the
    resend is answered as already recorded."""
    desk = _desk(ledger, tmp_path)
    desk.create("s", HIST, key_id="k")
    beats, back = _lose_answers(ledger, down=True)
    with pytest.raises(psycopg.OperationalError, match="server closed the connection"):
        desk.ingest("s", BATCH, key_id="k")
    back()
    assert desk._books["s"].seq == 0  # not known yet: not taken as stored, nor replayed
    if found_by == "read":
        assert desk.info("s").beats == 5
        assert len(desk._undecided) == 5  # decided, waiting for their append
    got = desk.ingest("s", BATCH, key_id="k")
    assert [(r.seq, r.duplicate) for r in got] == [(i, True) for i in range(1, 6)]
    assert len(beats) == 1
    assert [d.seq for d in desk.decisions("s")] == [1, 2, 3, 4, 5]
    assert desk._undecided == [] and getattr(desk, "_landing", None) is None
    _check_once(ledger, tmp_path)
    desk.shutdown()


def test_beats_that_did_not_land_are_computed_and_appended_once(
        ledger: Ledger, tmp_path: Path) -> None:
    desk = _desk(ledger, tmp_path)
    desk.create("s", HIST, key_id="k")
    beats, _ = _lose_answers(ledger, landed=False)
    with pytest.raises(psycopg.OperationalError):
        desk.ingest("s", BATCH, key_id="k")
    assert desk.info("s").beats == 0
    got = desk.ingest("s", BATCH, key_id="k")
    assert [(r.seq, r.duplicate) for r in got] == [(i, False) for i in range(1, 6)]
    assert len(beats) == 2 and getattr(desk, "_landing", None) is None
    assert [d.seq for d in desk.decisions("s")] == [1, 2, 3, 4, 5]
    _check_once(ledger, tmp_path)
    desk.shutdown()
