"""Decisions kept after a failed append (``Desk._undecided``) never block the desk for good.

A decision the ledger can never take (a non-finite signal, an entry over 1 MiB) is logged
and dropped when it is made, counted as its observer's fault: every later ingest passes.
While decisions wait (the ledger's disk full), an unknown portfolio is
still a 404 and a conflicting value a 409; the decisions are appended by the timer (bounded:
its tries stop), by the next ingest of any portfolio and at the app's shutdown. They are
held in the process that stored their beats only: a resend reaching another process over
the same ledger appends nothing (the limit docs/operations.md states). An append whose commit
landed but whose answer was lost (a PostgreSQL connection lost: LedgerCorrupted) is not
appended again; only entries the ledger refuses are dropped (any other error, a failing
sync included, keeps them waiting), and a dropped decision is not served either."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from swarmvar.arbiter import Arbiter
from swarmvar.errors import (
    ConflictingInput,
    InvalidEntry,
    InvalidParameter,
    LedgerCorrupted,
    LedgerUnwritable,
    UnknownPortfolio,
)
from swarmvar.ledger import EntryKind, Ledger
from swarmvar.service.desk import DatedReturn, Desk
from swarmvar.types import Action, BeatReport, Decision

from .conftest import Keys, app_with_book, day

_RNG = np.random.default_rng(7)
HIST = [DatedReturn(date(2021, 1, 1) + timedelta(days=i), float(_RNG.normal(0, 0.01)))
        for i in range(60)]
BATCH = [DatedReturn(date(2023, 1, 2) + timedelta(days=i), 0.001 * (i % 5 - 2))
         for i in range(5)]


class Poison:
    """An observer whose decision on beat 1 of each portfolio the ledger cannot take."""

    def __init__(self, bad: dict[str, Any]) -> None:
        self.bad = bad

    def excluded(self, name: str) -> frozenset[str]:
        return frozenset()

    def weight_factors(self, name: str) -> dict[str, float]:
        return {}

    def observe(self, report: BeatReport) -> tuple[Decision, ...]:
        if report.seq != 1:
            return ()
        return (Decision(action=Action.ALERT, portfolio=report.portfolio, seq=report.seq,
                         **self.bad),)


class Silent:
    """An observer that decides nothing (so that a decision's author must be known)."""

    def excluded(self, name: str) -> frozenset[str]:
        return frozenset()

    def weight_factors(self, name: str) -> dict[str, float]:
        return {}

    def observe(self, report: BeatReport) -> tuple[Decision, ...]:
        return ()


def _until(desk: Desk, done: Callable[[], bool], seconds: float = 5.0) -> bool:
    """Poll ``done()`` under the desk's lock (the timer's thread sets its fields under it)
    until it holds or ``seconds`` pass: whether it held."""
    deadline = time.monotonic() + seconds
    while True:
        with desk._lock:
            if done():
                return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.01)


def _decisions(ledger: Ledger) -> list[dict[str, Any]]:
    size = ledger.store.size()
    return [json.loads(r[3]) for r in ledger.store.rows(0, size)
            if r[2] == EntryKind.DECISION.value]


def _full(desk: Desk) -> Callable[[bool], None]:
    """``full(True)``: the ledger's appends of decisions fail as on a full disk
    (LedgerUnwritable, as the store raises on SQLITE_FULL: test_desk_decisions_commit has
    the real one); ``full(False)``: room again."""
    store = desk.ledger.store
    real = store.append
    on: list[bool] = []

    def append(drafts: Any, **kw: Any) -> Any:
        if on and any(k == EntryKind.DECISION.value for k, _, _ in drafts):
            raise LedgerUnwritable(str(desk.ledger.path), "disk full",
                                   "database or disk is full", "append")
        return real(drafts, **kw)

    store.append = append  # type: ignore[method-assign]

    def full(now: bool) -> None:
        on[:] = [True] if now else []

    return full


def _fail_decisions(desk: Desk, full: Callable[[bool], None]) -> None:
    """Ingest BATCH into 's' with the disk full once its beats are in: LedgerUnwritable,
    the beats stored, their decisions waiting."""
    real = desk.observing.observe
    once: list[bool] = []

    def observe(*args: Any, **kwargs: Any) -> Any:
        if not once:
            full(True)
            once.append(True)
        return real(*args, **kwargs)

    desk.observing.observe = observe  # type: ignore[method-assign]
    try:
        with pytest.raises(LedgerUnwritable, match="the returns were stored"):
            desk.ingest("s", BATCH, key_id="k")
    finally:
        desk.observing.observe = real  # type: ignore[method-assign]


@pytest.mark.parametrize("bad", [{"signals": {"x": float("nan")}},
                                 {"reason": "x" * (1 << 20)}], ids=["nan", "over-1MiB"])
def test_a_decision_that_can_never_be_written_is_dropped_and_blocks_nothing(
        tmp_path: Path, bad: dict[str, Any], caplog: pytest.LogCaptureFixture) -> None:
    skipped: list[tuple[str, str]] = []
    with Ledger.open(tmp_path) as ledger:
        desk = Desk(ledger, tmp_path, observers=(Arbiter(record_decisions=False),
                                                 Poison(bad)),
                    on_skip=lambda obs, why: skipped.append((obs, why)))
        desk.create("s", HIST, key_id="k")
        desk.create("t", HIST, key_id="k")
        with caplog.at_level("ERROR", logger="swarmvar.service"):
            for i, name in enumerate(["s", "t", "t", "s"]):  # each passes
                got = desk.ingest(name, [DatedReturn(date(2023, 1, 2) + timedelta(days=i),
                                                     0.001)], key_id="k")
                assert [g.duplicate for g in got] == [False]
        assert skipped == [("Poison", "fault"), ("Poison", "fault")]  # beat 1 of s, of t
        assert sum("cannot be written to the ledger" in r.getMessage()
                   for r in caplog.records) == 2, caplog.text
        stored = _decisions(ledger)
        assert stored and all(len(d["reason"]) < 1000 for d in stored)  # the Arbiter's
        assert all(np.isfinite(v) for d in stored for v in d["signals"].values())
        # the desk serves what the ledger holds: the dropped one is not served either
        mine = {n: [d.seq for d in desk.decisions(n)] for n in ("s", "t")}
        assert mine == {n: sorted(d["seq"] for d in stored if d["portfolio"] == n)
                        for n in ("s", "t")}
        assert desk._undecided == []


def test_while_decisions_wait_a_404_and_a_409_come_first(tmp_path: Path) -> None:
    with Ledger.open(tmp_path) as ledger:
        desk = Desk(ledger, tmp_path, observers=(Arbiter(record_decisions=False),))
        desk.create("s", HIST, key_id="k")
        full = _full(desk)
        _fail_decisions(desk, full)
        waiting = len(desk._undecided)
        assert waiting == len(BATCH)
        with pytest.raises(UnknownPortfolio):
            desk.ingest("nope", BATCH[:1], key_id="k")
        with pytest.raises(ConflictingInput, match="recorded returns are never changed"):
            desk.ingest("s", [DatedReturn(BATCH[0].as_of, 0.5)], key_id="k")
        with pytest.raises(LedgerUnwritable, match="nothing of this request was stored"):
            desk.ingest("s", [DatedReturn(date(2023, 3, 1), 0.001)], key_id="k")
        assert len(desk._undecided) == waiting and _decisions(ledger) == []
        full(False)
        desk.create("t", HIST, key_id="k")  # a create does not append them
        assert _decisions(ledger) == []
        desk.ingest("t", [DatedReturn(date(2023, 3, 1), 0.001)], key_id="k")  # any portfolio
        assert sorted(d["seq"] for d in _decisions(ledger) if d["portfolio"] == "s") == \
            [1, 2, 3, 4, 5]


def test_the_timer_appends_them(tmp_path: Path) -> None:
    """No ingest after the failure: the timer's next try once there is room appends them."""
    with Ledger.open(tmp_path) as ledger:
        desk = Desk(ledger, tmp_path, observers=(Arbiter(record_decisions=False),))
        desk.create("s", HIST, key_id="k")
        desk.flush_every, desk.flush_tries = 0.02, 100
        full = _full(desk)
        _fail_decisions(desk, full)
        with desk._lock:
            assert desk._timer is not None
        full(False)
        assert _until(desk, lambda: not desk._undecided and desk._timer is None)
        assert sorted(d["seq"] for d in _decisions(ledger)) == [1, 2, 3, 4, 5]
        desk.shutdown()


def test_the_timers_tries_are_bounded(tmp_path: Path,
                                      monkeypatch: pytest.MonkeyPatch) -> None:
    with Ledger.open(tmp_path) as ledger:
        desk = Desk(ledger, tmp_path, observers=(Arbiter(record_decisions=False),))
        desk.create("s", HIST, key_id="k")
        desk.flush_every, desk.flush_tries = 0.02, 3
        full = _full(desk)
        tries: list[int] = []
        real = ledger.store.append

        def append(drafts: Any, **kw: Any) -> Any:
            if any(k == EntryKind.DECISION.value for k, _, _ in drafts):
                tries.append(len(drafts))
            return real(drafts, **kw)

        monkeypatch.setattr(ledger.store, "append", append)
        _fail_decisions(desk, full)
        # the ingest's try and the timer's 3; then its tries are spent: no timer is set
        assert _until(desk, lambda: len(tries) >= 4 and desk._timer is None), tries
        with desk._lock:
            assert desk._flush_left == 0 and desk._timer is None and tries == [5] * 4, tries
        assert desk.flush_undecided() is False and desk._timer is None  # spent: none set
        assert _decisions(ledger) == []
        full(False)
        assert desk.flush_undecided() is True
        assert sorted(d["seq"] for d in _decisions(ledger)) == [1, 2, 3, 4, 5]


def test_the_apps_shutdown_appends_them(tmp_path: Path,
                                         session_keys: tuple[Path, Keys]) -> None:
    keys, k = session_keys
    home = tmp_path / "home"
    with app_with_book(home, keys, k.writer) as c:
        desk = c.app.state.desk  # type: ignore[attr-defined]
        desk.flush_every = 600.0  # not the timer's doing
        full = _full(desk)
        real = desk.observing.observe
        once: list[bool] = []

        def observe(*args: Any, **kwargs: Any) -> Any:
            if not once:
                full(True)
                once.append(True)
            return real(*args, **kwargs)

        desk.observing.observe = observe
        r = c.post("/v1/portfolios/book/returns", headers={"X-API-Key": k.writer},
                   json={"returns": [{"date": day(i), "return": 0.001 * (i - 1)}
                                     for i in range(3)]})
        assert r.status_code == 503 and "this server process keeps the decisions" in \
            r.json()["error"]["message"], r.text
        assert _decisions(desk.ledger) == []
        full(False)
    assert desk._timer is None
    with Ledger.open(home, create=False) as ledger:
        assert sorted(d["seq"] for d in _decisions(ledger)) == [1, 2, 3]


def test_a_resend_reaching_another_process_appends_nothing(tmp_path: Path) -> None:
    """The limit of holding them in the process: B (another worker over the same ledger)
    answers the resend as duplicates and appends no decision; A's next ingest does."""
    with Ledger.open(tmp_path) as la, Ledger.open(tmp_path) as lb:
        a = Desk(la, tmp_path, observers=(Arbiter(record_decisions=False),))
        a.create("s", HIST, key_id="k")
        a.create("t", HIST, key_id="k")
        b = Desk(lb, tmp_path, observers=(Arbiter(record_decisions=False),))
        a.flush_every = 600.0
        full = _full(a)
        _fail_decisions(a, full)
        full(False)
        assert all(r.duplicate for r in b.ingest("s", BATCH, key_id="k"))
        assert _decisions(lb) == [] and b.decisions("s") == []
        a.ingest("t", [DatedReturn(date(2023, 3, 1), 0.001)], key_id="k")
        assert sorted(d["seq"] for d in _decisions(lb) if d["portfolio"] == "s") == \
            [1, 2, 3, 4, 5]
        assert [d.seq for d in b.decisions("s")] == [1, 2, 3, 4, 5]
        a.shutdown()


@pytest.mark.parametrize("landed", [True, False], ids=["committed", "not-committed"])
def test_an_append_whose_answer_was_lost_is_not_appended_twice(tmp_path: Path,
                                                                landed: bool) -> None:
    """The decisions' append raises LedgerCorrupted (PostgreSQL's lost connection) after
    the commit (``landed``) or before it: the next try appends each decision once, and the
    desk serves each once."""
    with Ledger.open(tmp_path) as ledger:
        desk = Desk(ledger, tmp_path, observers=(Arbiter(record_decisions=False),))
        desk.flush_every = 600.0  # the next ingest's doing, not the timer's
        desk.create("s", HIST, key_id="k")
        real = ledger.store.append
        once: list[bool] = []

        def append(drafts: Any, **kw: Any) -> Any:
            if not once and any(k == EntryKind.DECISION.value for k, _, _ in drafts):
                once.append(True)
                rows = real(drafts, **kw) if landed else None
                assert rows is not None or not landed
                raise LedgerCorrupted("ledger database error (append): server closed the "
                                      "connection unexpectedly")
            return real(drafts, **kw)

        ledger.store.append = append  # type: ignore[method-assign]
        with pytest.raises(LedgerCorrupted, match="the returns were stored"):
            desk.ingest("s", BATCH, key_id="k")
        assert len(desk._undecided) == len(BATCH)
        assert all(r.duplicate for r in desk.ingest("s", BATCH, key_id="k"))
        assert sorted(d["seq"] for d in _decisions(ledger)) == [1, 2, 3, 4, 5]
        assert [d.seq for d in desk.decisions("s")] == [1, 2, 3, 4, 5]
        assert desk._undecided == [] and desk._undecided_from is None
        desk.shutdown()


def test_the_timer_recognises_a_commit_whose_answer_was_lost(tmp_path: Path) -> None:
    with Ledger.open(tmp_path) as ledger:
        desk = Desk(ledger, tmp_path, observers=(Arbiter(record_decisions=False),))
        desk.create("s", HIST, key_id="k")
        desk.flush_every, desk.flush_tries = 0.02, 100
        real = ledger.store.append
        calls: list[int] = []

        def append(drafts: Any, **kw: Any) -> Any:
            if any(k == EntryKind.DECISION.value for k, _, _ in drafts):
                calls.append(len(drafts))
                if len(calls) == 1:
                    real(drafts, **kw)
                    raise LedgerCorrupted("server closed the connection unexpectedly")
            return real(drafts, **kw)

        ledger.store.append = append  # type: ignore[method-assign]
        with pytest.raises(LedgerCorrupted):
            desk.ingest("s", BATCH, key_id="k")
        assert _until(desk, lambda: not desk._undecided)
        assert calls == [5]  # the timer's sync found them: nothing appended again
        assert sorted(d["seq"] for d in _decisions(ledger)) == [1, 2, 3, 4, 5]
        assert [d.seq for d in desk.decisions("s")] == [1, 2, 3, 4, 5]
        desk.shutdown()


def test_a_refused_append_drops_them_from_the_book_blaming_their_observer(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """The ledger refuses the waiting entries (InvalidEntry: never met, they are checked
    when made): dropped, each counted as the fault of the observer that made it (not a
    made-up one), and no longer served."""
    skipped: list[tuple[str, str]] = []
    with Ledger.open(tmp_path) as ledger:
        desk = Desk(ledger, tmp_path, observers=(Arbiter(record_decisions=False), Silent()),
                    on_skip=lambda obs, why: skipped.append((obs, why)))
        desk.create("s", HIST, key_id="k")
        real = ledger.store.append

        def append(drafts: Any, **kw: Any) -> Any:
            if any(k == EntryKind.DECISION.value for k, _, _ in drafts):
                raise InvalidEntry("entry refused")
            return real(drafts, **kw)

        ledger.store.append = append  # type: ignore[method-assign]
        with caplog.at_level("ERROR", logger="swarmvar.service"):
            got = desk.ingest("s", BATCH, key_id="k")  # the beats stored, nothing waits
        assert [g.duplicate for g in got] == [False] * len(BATCH)
        assert skipped == [("Arbiter", "fault")] * len(BATCH)
        assert "they are dropped" in caplog.text
        assert desk._undecided == [] and desk.decisions("s") == [] and _decisions(ledger) == []


def test_a_failing_sync_keeps_them_waiting(tmp_path: Path,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    """The retry's sync raises (another process's create this one cannot open): the
    decisions wait, no observer is blamed; once it can, they are appended."""
    from swarmvar.service import desk as desk_module

    skipped: list[tuple[str, str]] = []
    with Ledger.open(tmp_path) as la, Ledger.open(tmp_path) as lb:
        a = Desk(la, tmp_path, observers=(Arbiter(record_decisions=False),),
                 on_skip=lambda obs, why: skipped.append((obs, why)))
        a.flush_every = 600.0
        a.create("s", HIST, key_id="k")
        full = _full(a)
        _fail_decisions(a, full)
        full(False)
        Desk(lb, tmp_path).create("t", HIST, key_id="k")  # another process's create
        real = desk_module.open_book

        def refuse(*args: Any, **kwargs: Any) -> Any:
            raise InvalidParameter("this process cannot open it")

        monkeypatch.setattr(desk_module, "open_book", refuse)
        assert a.flush_undecided() is False
        assert len(a._undecided) == len(BATCH) and skipped == []
        assert [d.seq for d in a._books["s"].decisions] == [1, 2, 3, 4, 5]
        assert _decisions(la) == []
        monkeypatch.setattr(desk_module, "open_book", real)
        assert a.flush_undecided() is True
        assert sorted(d["seq"] for d in _decisions(la)) == [1, 2, 3, 4, 5]
        assert [d.seq for d in a.decisions("s")] == [1, 2, 3, 4, 5]
        a.shutdown()


def test_after_the_shutdown_no_timer_is_set_and_the_words_say_so(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    with Ledger.open(tmp_path) as ledger:
        desk = Desk(ledger, tmp_path, observers=(Arbiter(record_decisions=False),))
        desk.create("s", HIST, key_id="k")
        desk.flush_every = 600.0
        full = _full(desk)
        _fail_decisions(desk, full)
        caplog.clear()
        with caplog.at_level("ERROR", logger="swarmvar.service"):
            desk.shutdown()
        said = caplog.text
        assert "lost from the ledger" in said and "at its shutdown" not in said, said
        assert desk._timer is None and len(desk._undecided) == len(BATCH)
        caplog.clear()
        with caplog.at_level("ERROR", logger="swarmvar.service"):
            assert desk.flush_undecided() is False
        assert "the desk is shut down" in caplog.text and desk._timer is None, caplog.text
        full(False)  # the ledger stays open: a later try appends them
        assert desk.flush_undecided() is True
        assert sorted(d["seq"] for d in _decisions(ledger)) == [1, 2, 3, 4, 5]


def test_the_apps_shutdown_closes_the_ledger_when_the_desks_raises(
        tmp_path: Path, session_keys: tuple[Path, Keys]) -> None:
    keys, k = session_keys
    closed: list[bool] = []
    with pytest.raises(RuntimeError, match="shutdown failed"):
        with app_with_book(tmp_path / "home", keys, k.writer) as c:
            desk = c.app.state.desk  # type: ignore[attr-defined]
            real_close = desk.ledger.close

            def shutdown() -> None:
                raise RuntimeError("shutdown failed")

            def close() -> None:
                closed.append(True)
                real_close()

            desk.shutdown = shutdown
            desk.ledger.close = close
    assert closed == [True]
