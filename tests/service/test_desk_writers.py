"""A batch's beats run without the desk's lock: while one portfolio's batch is computed,
reads of every portfolio and writes to others go on, a second write to the same portfolio
waits its turn, and a beat another process recorded meanwhile makes the batch be computed
again on the new state (nothing lost, nothing twice, the same numbers as a replay).

The batch is held inside its first beat by a gate (an event), so nothing here is timed."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from swarmvar.arbiter import Arbiter
from swarmvar.ledger import Ledger
from swarmvar.service.desk import DatedReturn, Desk
from swarmvar.swarm import PortfolioSwarm

WAIT = 60.0  # seconds: a bound, never expected to be reached


def _desk(home: Path) -> Desk:
    return Desk(Ledger.open(home), home, observers=(Arbiter(record_decisions=False),))


def _day(i: int) -> date:
    return date(2024, 1, 1) + timedelta(days=i)


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


def _start(tmp_path: Path) -> Desk:
    rng = np.random.default_rng(5)
    hist = [DatedReturn(date(2020, 1, 1) + timedelta(days=i), float(rng.standard_t(5) * 0.01))
            for i in range(60)]
    desk = _desk(tmp_path)
    desk.create("a", hist, key_id="k")
    desk.create("b", hist, key_id="k")
    return desk


def test_reads_and_other_portfolios_go_on_during_a_batch(tmp_path: Path, gate: Gate) -> None:
    desk = _start(tmp_path)
    batch = [DatedReturn(_day(i), 0.001 * i) for i in range(3)]
    with ThreadPoolExecutor(3) as pool:
        gate.armed = True
        first = pool.submit(desk.ingest, "a", batch, key_id="k")
        assert gate.entered.wait(WAIT)
        # the batch is inside its first beat; the desk answers meanwhile
        assert desk.info("a").beats == 0 and desk.info("b").beats == 0
        assert [p.seq for p in desk.points("a")] == [0]
        other = desk.ingest("b", [DatedReturn(_day(0), 0.002)], key_id="k")
        assert [r.seq for r in other] == [1]
        second = pool.submit(desk.ingest, "a", [DatedReturn(_day(3), 0.004)], key_id="k")
        assert not second.done()  # its turn comes after the first batch
        gate.open.set()
        assert [r.seq for r in first.result(WAIT)] == [1, 2, 3]
        assert [r.seq for r in second.result(WAIT)] == [4]
    assert desk.info("a").beats == 4
    replay = _desk(tmp_path)  # the ledger replays to the same state
    assert replay.latest("a").consensus == desk.latest("a").consensus
    assert replay.points("a") == desk.points("a") and replay.points("b") == desk.points("b")


def test_another_process_beat_meanwhile_is_computed_again(tmp_path: Path, gate: Gate) -> None:
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
    assert [p.as_of for p in desk.points("a")][1:] == [_day(0), _day(1), _day(2)]
    rival.sync()
    assert rival.latest("a").consensus == desk.latest("a").consensus
    assert rival.points("a") == desk.points("a")
    with Ledger.open(tmp_path, create=False) as led:
        assert led.verify_chain().ok
        ticks = [e for e in led.entries(0, led.size)
                 if e.data.get("type") == "tick"]
    assert [t.data["details"]["seq"] for t in ticks] == [1, 2, 3]  # each beat once
