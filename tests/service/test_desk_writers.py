"""A batch's beats run without the desk's lock, one computation (a batch, a fit) at a time
per process: while one is computed, reads of every portfolio go on and other writes wait
their turn; a beat another process recorded of the same portfolio meanwhile makes the
batch be computed again on the new state, and another process's append to another
portfolio does not (nothing lost, nothing twice, the same numbers and the same arbiter
state as a replay).

A batch is held inside its first beat (a fit inside ``open_book``) by a gate (an event),
so nothing here is timed."""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import swarmvar.service.desk as desk_module
from swarmvar.arbiter import Arbiter
from swarmvar.ledger import EntryKind, Ledger
from swarmvar.service.desk import DatedReturn, Desk
from swarmvar.service.desk_book import decision_record
from swarmvar.swarm import PortfolioSwarm

WAIT = 60.0  # seconds: a bound, never expected to be reached


def _desk(home: Path) -> Desk:
    return Desk(Ledger.open(home), home, observers=(Arbiter(record_decisions=False),))


def _day(i: int) -> date:
    return date(2024, 1, 1) + timedelta(days=i)


def _history() -> list[DatedReturn]:
    rng = np.random.default_rng(5)
    return [DatedReturn(date(2020, 1, 1) + timedelta(days=i), float(rng.standard_t(5) * 0.01))
            for i in range(60)]


class Gate:
    """Holds the next beat of portfolio ``a`` (once armed) until opened."""

    def __init__(self) -> None:
        self.armed = False
        self.entered = threading.Event()
        self.open = threading.Event()


@pytest.fixture
def gate(monkeypatch: pytest.MonkeyPatch) -> Iterator[Gate]:
    g = Gate()
    real = PortfolioSwarm.beat

    def gated(self: PortfolioSwarm, tick: Any) -> Any:
        if g.armed and self.config.portfolio == "a":
            g.armed = False
            g.entered.set()
            assert g.open.wait(WAIT), "the gate was never opened"
        return real(self, tick)

    monkeypatch.setattr(PortfolioSwarm, "beat", gated)
    yield g
    g.open.set()  # never leave a thread waiting


@pytest.fixture
def computed(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The portfolio of each batch the desk computes (``run_beats`` calls)."""
    calls: list[str] = []
    real = desk_module.run_beats  # type: ignore[attr-defined]

    def counted(trial: Any, *args: Any, **kwargs: Any) -> Any:
        calls.append(trial.name)
        return real(trial, *args, **kwargs)

    monkeypatch.setattr(desk_module, "run_beats", counted)
    return calls


def _start(tmp_path: Path) -> Desk:
    desk = _desk(tmp_path)
    desk.create("a", _history(), key_id="k")
    desk.create("b", _history(), key_id="k")
    return desk


def _same_arbiter(desk: Desk, rival: Desk, names: Sequence[str]) -> None:
    rival.sync()
    ours, theirs = desk.observers[0], rival.observers[0]
    assert isinstance(ours, Arbiter) and isinstance(theirs, Arbiter)
    for name in names:
        assert ours.checkpoint_state(name) == theirs.checkpoint_state(name), name


def test_reads_go_on_during_a_batch_and_writes_wait_their_turn(tmp_path: Path,
                                                               gate: Gate) -> None:
    desk = _start(tmp_path)
    batch = [DatedReturn(_day(i), 0.001 * i) for i in range(3)]
    with ThreadPoolExecutor(3) as pool:
        gate.armed = True
        first = pool.submit(desk.ingest, "a", batch, key_id="k")
        assert gate.entered.wait(WAIT)
        # the batch is inside its first beat; the desk answers meanwhile
        other = pool.submit(desk.ingest, "b", [DatedReturn(_day(0), 0.002)], key_id="k")
        second = pool.submit(desk.ingest, "a", [DatedReturn(_day(3), 0.004)], key_id="k")
        assert desk.info("a").beats == 0 and desk.info("b").beats == 0
        assert [p.seq for p in desk.points("a")] == [0]
        assert [p.name for p in desk.portfolios()] == ["a", "b"]
        assert not other.done() and not second.done()  # one computation at a time
        gate.open.set()
        assert [r.seq for r in first.result(WAIT)] == [1, 2, 3]
        assert [r.seq for r in second.result(WAIT)] == [4]
        assert [r.seq for r in other.result(WAIT)] == [1]
    assert desk.info("a").beats == 4
    replay = _desk(tmp_path)  # the ledger replays to the same state
    assert replay.latest("a").consensus == desk.latest("a").consensus
    assert replay.points("a") == desk.points("a") and replay.points("b") == desk.points("b")


def test_reads_go_on_during_a_fit_and_writes_wait_their_turn(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    desk = _start(tmp_path)
    entered, opened = threading.Event(), threading.Event()
    real = desk_module.open_book  # type: ignore[attr-defined]

    def gated(details: Any, home: Path) -> Any:
        if details["portfolio"] == "c" and not entered.is_set():
            entered.set()
            assert opened.wait(WAIT), "the gate was never opened"
        return real(details, home)

    monkeypatch.setattr(desk_module, "open_book", gated)
    with ThreadPoolExecutor(2) as pool:
        try:
            made = pool.submit(desk.create, "c", _history(), key_id="k")
            assert entered.wait(WAIT)
            write = pool.submit(desk.ingest, "a", [DatedReturn(_day(0), 0.001)], key_id="k")
            # the fit runs without the desk's lock: reads answer, the write waits
            assert [p.name for p in desk.portfolios()] == ["a", "b"]
            assert desk.info("a").beats == 0 and desk.latest("b").seq == 0
            assert not made.done() and not write.done()
        finally:
            opened.set()
        assert made.result(WAIT).name == "c"
        assert [r.seq for r in write.result(WAIT)] == [1]
    assert [p.name for p in _desk(tmp_path).portfolios()] == ["a", "b", "c"]


def test_another_process_beat_meanwhile_is_computed_again(tmp_path: Path, gate: Gate,
                                                          computed: list[str]) -> None:
    desk = _start(tmp_path)
    rival = _desk(tmp_path)  # another process on the same ledger
    with ThreadPoolExecutor(1) as pool:
        gate.armed = True
        mine = pool.submit(desk.ingest, "a", [DatedReturn(_day(1), 0.003),
                                              DatedReturn(_day(2), -0.001)], key_id="k")
        assert gate.entered.wait(WAIT)
        theirs = rival.ingest("a", [DatedReturn(_day(0), 0.01)], key_id="rival")
        assert [r.seq for r in theirs] == [1]
        gate.open.set()
        assert [r.seq for r in mine.result(WAIT)] == [2, 3]  # recomputed after theirs
    assert computed == ["a", "a", "a"]  # rival's batch, mine, mine again
    assert [p.as_of for p in desk.points("a")][1:] == [_day(0), _day(1), _day(2)]
    rival.sync()
    assert rival.latest("a").consensus == desk.latest("a").consensus
    assert rival.points("a") == desk.points("a")
    _same_arbiter(desk, rival, ["a", "b"])
    assert desk.decisions("a") == rival.decisions("a")
    with Ledger.open(tmp_path, create=False) as led:
        assert led.verify_chain().ok
        ticks = [e for e in led.entries(0, led.size)
                 if e.data.get("type") == "tick"]
    assert [t.data["details"]["seq"] for t in ticks] == [1, 2, 3]  # each beat once


def test_another_process_append_to_another_portfolio_is_not_computed_again(
        tmp_path: Path, gate: Gate, computed: list[str]) -> None:
    desk = _start(tmp_path)
    rival = _desk(tmp_path)
    with ThreadPoolExecutor(1) as pool:
        gate.armed = True
        mine = pool.submit(desk.ingest, "a", [DatedReturn(_day(1), 0.003),
                                              DatedReturn(_day(2), -0.001)], key_id="k")
        assert gate.entered.wait(WAIT)
        # the rival beats "b" (its tick, then its decisions: two appends), and a decision
        # on portfolio a's beat 0 lands after the desk copied a's book
        assert [r.seq for r in rival.ingest("b", [DatedReturn(_day(0), 0.01)],
                                            key_id="rival")] == [1]
        late = replace(rival.decisions("b")[-1], portfolio="a", seq=0)
        rival._append_retrying([(EntryKind.DECISION, decision_record(late))])
        gate.open.set()
        assert [r.seq for r in mine.result(WAIT)] == [1, 2]
    assert computed == ["a", "b"]  # the desk's batch of a was computed once
    assert [(d.portfolio, d.seq) for d in desk.decisions("a")] == [("a", 0), ("a", 1), ("a", 2)]
    assert desk.info("b").beats == 1
    _same_arbiter(desk, rival, ["a", "b"])
    assert rival.points("a") == desk.points("a") and rival.points("b") == desk.points("b")
    assert _desk(tmp_path).decisions("a") == desk.decisions("a")  # as the ledger replays


def test_a_beat_between_the_check_and_the_append_is_computed_again(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, computed: list[str]) -> None:
    desk = _start(tmp_path)
    rival = _desk(tmp_path)
    store = desk.ledger.store
    real = store.append
    fired: list[bool] = []

    def append(drafts: Any, *, if_size: int | None = None) -> Any:
        # the desk checked that "a" has not moved; the rival beats it just before the write
        if not fired and any('"tick"' in text for _, text, _ in drafts):
            fired.append(True)
            assert [r.seq for r in rival.ingest("a", [DatedReturn(_day(0), 0.01)],
                                                key_id="rival")] == [1]
        return real(drafts, if_size=if_size)

    monkeypatch.setattr(store, "append", append)
    got = desk.ingest("a", [DatedReturn(_day(1), 0.003), DatedReturn(_day(2), -0.001)],
                      key_id="k")
    assert [r.seq for r in got] == [2, 3] and fired == [True]
    assert computed == ["a", "a", "a"]  # mine, the rival's, mine again on its beat
    _same_arbiter(desk, rival, ["a"])
    assert rival.points("a") == desk.points("a")
    assert rival.latest("a").consensus == desk.latest("a").consensus
