"""A batch of beats whose append's answer was lost is recognised as this process's.

The ledger store's append is wrapped: it lets the commit happen, then raises what psycopg
raises for a connection lost before the COMMIT's answer came (an ``OperationalError``).
The desk's path is the same on both backends (it compares the rows' text), so it runs on
SQLite and on a real PostgreSQL server (``postgres_url``). Whether the sync right after
the failed append finds the beats, or only a later one (that sync failing too), or they
never landed: the ledger holds each beat once, its chain verifies, the arbiter decides on
each beat once (in the ledger and in the desk's book), and the ingest or its resend says
the returns are stored; another process over the same ledger sees the same. Two failed
appends in a row at one ledger size (the first landing late), another process storing
the returns meanwhile, the decisions' own append failing after an adoption, and the
answers' words (a lost COMMIT's, a PostgreSQL ledger out of reach) are covered too.
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

import swarmvar.service.desk as desk_module
from swarmvar.arbiter import Arbiter
from swarmvar.errors import LedgerFailed, LedgerUnreachable, LedgerUnwritable
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
    assert desk._undecided == [] and desk._landings == ()
    assert desk._timer is None  # the decisions appended at once: no timer left set
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
    assert desk._undecided == [] and desk._landings == ()
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
    assert len(beats) == 2 and desk._landings == ()
    assert [d.seq for d in desk.decisions("s")] == [1, 2, 3, 4, 5]
    _check_once(ledger, tmp_path)
    desk.shutdown()

def _land_late(ledger: Ledger) -> tuple[list[Any], Callable[[], None]]:
    """Wrap the store's append: the first append of beats raises without committing (yet);
    ``land()`` commits it late, as a server that took the COMMIT after the client's next
    read. The list holds each append of beats tried."""
    store = ledger.store
    real_append = store.append
    tried: list[Any] = []

    def append(drafts: Any, **kw: Any) -> Any:
        if _is_beats(drafts):
            tried.append((drafts, kw))
            if len(tried) == 1:
                raise psycopg.OperationalError(LOST)
        return real_append(drafts, **kw)

    def land() -> None:
        drafts, kw = tried[0]
        assert real_append(drafts, **kw) is not None

    store.append = append  # type: ignore[method-assign]
    return tried, land


def _first_answer_lost(ledger: Ledger, home: Path
                       ) -> tuple[Desk, list[Any], Callable[[], None]]:
    """A desk over ``ledger`` with portfolio s whose first ingest of :data:`BATCH` raised,
    its append not committed yet (``_land_late``'s): the desk, the appends of beats tried
    and ``land``."""
    desk = _desk(ledger, home)
    desk.create("s", HIST, key_id="k")
    tried, land = _land_late(ledger)
    with pytest.raises(psycopg.OperationalError):
        desk.ingest("s", BATCH, key_id="k")
    return desk, tried, land


def test_two_lost_answers_in_a_row_the_first_landing_late(tmp_path: Path) -> None:
    """The first append of beats raises, not committed yet; the resend's append, at the
    same ledger size, raises too, while the first commits late: both batches are kept,
    the sync finds the first's rows and adopts it (its decisions made once), and the
    resend is answered as already recorded."""
    with Ledger.open(tmp_path) as ledger:
        desk, tried, land = _first_answer_lost(ledger, tmp_path)
        assert len(desk._landings) == 1
        store_append = ledger.store.append

        def second(drafts: Any, **kw: Any) -> Any:
            if _is_beats(drafts) and len(tried) == 1:
                tried.append((drafts, kw))
                land()  # the first commits now; the second's answer is lost (a conflict)
                raise psycopg.OperationalError(LOST)
            return store_append(drafts, **kw)

        ledger.store.append = second  # type: ignore[method-assign]
        got = desk.ingest("s", BATCH, key_id="k")
        assert [(r.seq, r.duplicate) for r in got] == [(i, True) for i in range(1, 6)]
        assert len(tried) == 2 and desk._landings == () and desk._undecided == []
        assert [d.seq for d in desk.decisions("s")] == [1, 2, 3, 4, 5]
        _check_once(ledger, tmp_path)
        desk.shutdown()


def test_a_late_landing_met_by_the_resend_compare_and_append(tmp_path: Path) -> None:
    """The first append's commit lands while the resend computes: the resend's
    compare-and-append is refused, its sync adopts the first batch, and the resend is
    answered as already recorded (nothing appended twice)."""
    with Ledger.open(tmp_path) as ledger:
        desk, tried, land = _first_answer_lost(ledger, tmp_path)
        real_run = desk_module.run_beats

        def run_then_land(*args: Any, **kw: Any) -> Any:
            out = real_run(*args, **kw)
            land()
            return out

        desk_module.run_beats = run_then_land  # type: ignore[assignment]
        try:
            got = desk.ingest("s", BATCH, key_id="k")
        finally:
            desk_module.run_beats = real_run
        assert [(r.seq, r.duplicate) for r in got] == [(i, True) for i in range(1, 6)]
        assert len(tried) == 2 and desk._landings == ()
        _check_once(ledger, tmp_path)
        desk.shutdown()


def test_another_process_stores_the_returns_while_the_batch_is_pending(
        tmp_path: Path) -> None:
    """The append raised and never landed; another process stores the same returns at that
    ledger size: its rows are not this process's batch (their text differs), so they are
    replayed as another process's (its decisions read back, none made here) and the
    pending batch is dropped; a resend is answered as already recorded."""
    with Ledger.open(tmp_path) as mine, Ledger.open(tmp_path) as theirs:
        desk = _desk(mine, tmp_path)
        desk.create("s", HIST, key_id="k")
        other = _desk(theirs, tmp_path)
        _land_late(mine)
        with pytest.raises(psycopg.OperationalError):
            desk.ingest("s", BATCH, key_id="k")
        assert len(desk._landings) == 1
        other.ingest("s", BATCH, key_id="k")
        assert desk.info("s").beats == 5  # replayed, not adopted
        assert desk._landings == () and desk._undecided == []
        assert [d.seq for d in desk.decisions("s")] == [1, 2, 3, 4, 5]  # read back
        assert all(r.duplicate for r in desk.ingest("s", BATCH, key_id="k"))
        _check_once(mine, tmp_path)
        desk.shutdown()
        other.shutdown()


def test_adopted_beats_whose_decisions_cannot_be_appended(tmp_path: Path) -> None:
    """The beats land (their answer lost) and the decisions' append meets a full disk: the
    ingest says the returns were stored and the decisions not (LedgerUnwritable kept); the
    resend appends the decisions and is answered as already recorded, the beats once."""
    with Ledger.open(tmp_path) as ledger:
        desk = _desk(ledger, tmp_path)
        desk.create("s", HIST, key_id="k")
        store = ledger.store
        real_append = store.append
        state = {"beats": 0, "full": True}

        def append(drafts: Any, **kw: Any) -> Any:
            if _is_beats(drafts):
                state["beats"] += 1
                assert real_append(drafts, **kw) is not None
                raise psycopg.OperationalError(LOST)
            if state["full"] and all(k == EntryKind.DECISION.value for k, _, _ in drafts):
                raise LedgerUnwritable(str(tmp_path), "disk full", "x", "append")
            return real_append(drafts, **kw)

        store.append = append  # type: ignore[method-assign]
        with pytest.raises(LedgerUnwritable, match=r"the returns were stored \(beats 1 to 5"):
            desk.ingest("s", BATCH, key_id="k")
        state["full"] = False
        again = desk.ingest("s", BATCH, key_id="k")
        assert all(r.duplicate for r in again) and state["beats"] == 1
        _check_once(ledger, tmp_path)
        desk.shutdown()


def test_a_lost_commit_not_found_is_answered_in_words_a_client_can_act_on(
        tmp_path: Path) -> None:
    """The store's LedgerUnreachable ``landed`` (a COMMIT whose answer was lost), the beats
    not found by the sync right after: the ingest answers LedgerUnreachable (503),
    ``landed``, saying the returns may have been stored and to resend them - not the
    store's "read the ledger's head". The resend computes and appends them once."""
    with Ledger.open(tmp_path) as ledger:
        desk = _desk(ledger, tmp_path)
        desk.create("s", HIST, key_id="k")
        store = ledger.store
        real_append = store.append
        beats: list[int] = []

        def append(drafts: Any, **kw: Any) -> Any:
            if _is_beats(drafts):
                beats.append(len(drafts))
                if len(beats) == 1:  # not landed, as the server may have aborted it
                    raise LedgerUnreachable("append", "server closed the connection",
                                            where="postgresql://u@h/d", landed=True)
            return real_append(drafts, **kw)

        store.append = append  # type: ignore[method-assign]
        with pytest.raises(LedgerUnreachable) as got:
            desk.ingest("s", BATCH, key_id="k")
        said = str(got.value)
        assert got.value.landed and "the returns may have been stored" in said, said
        assert "resend the same returns" in said and "ledger's head" not in said, said
        assert "postgresql://" not in said, said
        got_again = desk.ingest("s", BATCH, key_id="k")
        assert [(r.seq, r.duplicate) for r in got_again] == [(i, False) for i in range(1, 6)]
        assert len(beats) == 2
        _check_once(ledger, tmp_path)
        desk.shutdown()


def test_decisions_whose_ledger_is_unreachable_keep_the_class(tmp_path: Path) -> None:
    """The beats are stored and the decisions' append meets a PostgreSQL ledger out of
    reach: the answer stays a LedgerUnreachable (503, its class name in the body), saying
    the returns were stored and the decisions wait; the resend appends them."""
    with Ledger.open(tmp_path) as ledger:
        desk = _desk(ledger, tmp_path)
        desk.create("s", HIST, key_id="k")
        store = ledger.store
        real_append = store.append
        down = [True]

        def append(drafts: Any, **kw: Any) -> Any:
            if down[0] and all(k == EntryKind.DECISION.value for k, _, _ in drafts):
                raise LedgerUnreachable("append", "connection refused", where="x")
            return real_append(drafts, **kw)

        store.append = append  # type: ignore[method-assign]
        with pytest.raises(LedgerUnreachable) as got:
            desk.ingest("s", BATCH, key_id="k")
        said = str(got.value)
        assert type(got.value) is LedgerUnreachable and not got.value.landed
        assert said.startswith("the returns were stored (beats 1 to 5 of 's')"), said
        assert "cannot be reached (connection refused)" in said, said
        assert "nothing was written" not in said, said
        down[0] = False
        assert all(r.duplicate for r in desk.ingest("s", BATCH, key_id="k"))
        _check_once(ledger, tmp_path)
        desk.shutdown()


def _one_portfolio(ledger: Ledger, home: Path) -> Desk:
    desk = _desk(ledger, home)
    desk.create("s", HIST, key_id="k")
    return desk


def test_only_an_append_that_may_have_landed_is_kept_and_the_cap_is_logged(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """The store's own errors say the append was rolled back (a full disk, a server out of
    reach before the COMMIT): no batch kept for them. A lost COMMIT's answer, or an error
    the desk does not know, keeps one; at most eight at one ledger size, the oldest
    dropped with a warning naming it."""
    with Ledger.open(tmp_path) as ledger:
        desk = _one_portfolio(ledger, tmp_path)
        store = ledger.store
        real_append = store.append
        raised: list[BaseException] = []

        def append(drafts: Any, **kw: Any) -> Any:
            if _is_beats(drafts) and raised:
                raise raised[0]
            return real_append(drafts, **kw)

        store.append = append  # type: ignore[method-assign]
        for known in (LedgerUnwritable(str(tmp_path), "disk full", "x", "append"),
                      LedgerUnreachable("append", "connection refused", where="x"),
                      LedgerFailed("append", "LockNotAvailable, SQLSTATE 55P03", "x")):
            raised[:] = [known]
            with pytest.raises(type(known)):
                desk.ingest("s", BATCH, key_id="k")
            assert desk._landings == (), known
        raised[:] = [LedgerUnreachable("append", "connection closed", where="x",
                                       landed=True)]
        with pytest.raises(LedgerUnreachable):
            desk.ingest("s", BATCH, key_id="k")
        assert len(desk._landings) == 1
        raised[:] = [psycopg.OperationalError(LOST)]
        first = desk._landings[0]
        with caplog.at_level("WARNING", logger=desk_module.log.name):
            for i in range(8):  # bounded: eight more at the same size
                with pytest.raises(psycopg.OperationalError):
                    desk.ingest("s", BATCH[: 1 + i % 5], key_id="k")
        assert len(desk._landings) == 8 and first not in desk._landings
        dropped = [r for r in caplog.records if "no longer looked for" in r.getMessage()]
        assert len(dropped) == 1 and "'s'" in dropped[0].getMessage(), dropped
        raised.clear()
        assert [r.duplicate for r in desk.ingest("s", BATCH, key_id="k")] == [False] * 5
        _check_once(ledger, tmp_path)
        desk.shutdown()


def test_a_row_read_that_fails_while_looking_for_a_landing_looks_again(
        tmp_path: Path) -> None:
    """The batch lands late; the sync that looks for it fails reading its rows (once): the
    batch stays kept, so the next sync adopts it and the resend is answered as already
    recorded (not replayed as another process's beats, its decisions made once)."""
    with Ledger.open(tmp_path) as ledger:
        desk = _one_portfolio(ledger, tmp_path)
        _, land = _land_late(ledger)
        with pytest.raises(psycopg.OperationalError):
            desk.ingest("s", BATCH, key_id="k")
        land()
        store = ledger.store
        real_rows = store.rows
        fail = [True]

        def rows(start: int, end: int) -> Any:
            if fail[0]:
                fail[0] = False
                raise psycopg.OperationalError(LOST)
            return real_rows(start, end)

        store.rows = rows  # type: ignore[method-assign]
        with pytest.raises(psycopg.OperationalError):
            desk.info("s")
        assert not fail[0] and len(desk._landings) == 1  # kept for the next sync
        got = desk.ingest("s", BATCH, key_id="k")
        assert [(r.seq, r.duplicate) for r in got] == [(i, True) for i in range(1, 6)]
        assert desk._landings == () and desk._undecided == []
        _check_once(ledger, tmp_path)
        desk.shutdown()


def test_a_lost_commit_the_sync_proves_not_landed_says_not_stored(tmp_path: Path) -> None:
    """The beats' append raises LedgerUnreachable ``landed`` without landing, and another
    process appends at that ledger size meanwhile: the sync right after finds its rows
    where the beats would be, so the answer says the returns were not stored (not "may
    have been"), and a pickled copy (a worker's) keeps those words."""
    import pickle

    with Ledger.open(tmp_path) as mine, Ledger.open(tmp_path) as theirs:
        desk = _one_portfolio(mine, tmp_path)
        other = _desk(theirs, tmp_path)
        real_append = mine.store.append
        beats: list[int] = []

        def append(drafts: Any, **kw: Any) -> Any:
            if _is_beats(drafts):
                beats.append(len(drafts))
                if len(beats) == 1:
                    other.note("test.other", {"n": 1})  # the other process's row first
                    raise LedgerUnreachable("append", "connection closed", where="x",
                                            landed=True)
            return real_append(drafts, **kw)

        mine.store.append = append  # type: ignore[method-assign]
        with pytest.raises(LedgerUnreachable) as got:
            desk.ingest("s", BATCH, key_id="k")
        said = str(got.value)
        assert not got.value.landed and "the returns were not stored" in said, said
        assert "may have been stored" not in said and "resend the same returns" in said
        back = pickle.loads(pickle.dumps(got.value))
        assert type(back) is LedgerUnreachable and str(back) == said and not back.landed
        again = desk.ingest("s", BATCH, key_id="k")
        assert [(r.seq, r.duplicate) for r in again] == [(i, False) for i in range(1, 6)]
        assert len(beats) == 2
        _check_once(mine, tmp_path)
        desk.shutdown()
        other.shutdown()


def test_decisions_whose_ledger_refuses_keep_ledger_failed(tmp_path: Path) -> None:
    """The decisions' append meets LedgerFailed (a lock timeout on PostgreSQL): the answer
    stays a LedgerFailed (its own class, as LedgerUnreachable), saying the returns were
    stored and the decisions wait; the resend appends them."""
    with Ledger.open(tmp_path) as ledger:
        desk = _one_portfolio(ledger, tmp_path)
        real_append = ledger.store.append
        down = [True]

        def append(drafts: Any, **kw: Any) -> Any:
            if down[0] and all(k == EntryKind.DECISION.value for k, _, _ in drafts):
                raise LedgerFailed("append", "LockNotAvailable, SQLSTATE 55P03", "x")
            return real_append(drafts, **kw)

        ledger.store.append = append  # type: ignore[method-assign]
        with pytest.raises(LedgerFailed) as got:
            desk.ingest("s", BATCH, key_id="k")
        said = str(got.value)
        assert type(got.value) is LedgerFailed, got.value
        assert said.startswith("the returns were stored (beats 1 to 5 of 's')"), said
        assert "LockNotAvailable, SQLSTATE 55P03" in said, said
        down[0] = False
        assert all(r.duplicate for r in desk.ingest("s", BATCH, key_id="k"))
        _check_once(ledger, tmp_path)
        desk.shutdown()


def test_an_old_timer_does_not_erase_a_newer_ones_reference(tmp_path: Path) -> None:
    """A timer that fired while a newer one was set (it waited for the lock) leaves the
    newer one's reference, which the shutdown cancels; a timer's own run clears its own."""
    import threading

    with Ledger.open(tmp_path) as ledger:
        desk = _one_portfolio(ledger, tmp_path)
        newer = threading.Timer(600.0, lambda: None)
        desk._timer = newer
        old = threading.Thread(target=desk._flush_on_timer)  # not the newer timer
        old.start()
        old.join(timeout=30)
        assert desk._timer is newer
        own = threading.Timer(0.0, desk._flush_on_timer)
        desk._timer = own
        own.start()
        own.join(timeout=30)
        assert desk._timer is None
        desk.shutdown()
