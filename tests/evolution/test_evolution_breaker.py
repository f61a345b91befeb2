"""Circuit breaker: the state machine (with an injected clock), the reset-attempt
limit, listeners, thread safety and persistence, against both storages."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from swarmvar.errors import CircuitOpen
from swarmvar.evolution import (
    BreakerConfig,
    BreakerState,
    BreakerStorage,
    CircuitBreaker,
    Database,
    MemoryBreakerStorage,
    SqliteBreakerStorage,
)
from swarmvar.evolution.db import open_database

from .conftest import FakeClock

CLOSED, OPEN, HALF = BreakerState.CLOSED, BreakerState.OPEN, BreakerState.HALF_OPEN


@pytest.fixture(params=["memory", "sqlite", "postgres"])
def storage(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[BreakerStorage]:
    if request.param == "memory":
        yield MemoryBreakerStorage()
    else:
        db = Database(tmp_path) if request.param == "sqlite" else open_database(
            request.getfixturevalue("postgres_url"))
        yield SqliteBreakerStorage(db)
        db.close()


def boom() -> None:
    raise RuntimeError("model fit failed")


def fail(b: CircuitBreaker, times: int = 1) -> None:
    for _ in range(times):
        with pytest.raises(RuntimeError):
            b.call(boom)


def test_defaults_are_the_spec() -> None:
    assert BreakerConfig() == BreakerConfig(5, 30.0, 3)


def test_trips_after_five_consecutive_failures(storage: BreakerStorage, clock: FakeClock) -> None:
    b = CircuitBreaker("v1", storage, clock)
    fail(b, 4)
    assert b.call(lambda: 7) == 7  # a success resets the count
    fail(b, 4)
    assert b.state is CLOSED and b.snapshot.failures == 4
    fail(b)
    assert b.state is OPEN
    with pytest.raises(CircuitOpen, match=r"breaker v1 is OPEN; next reset attempt in 30.0 s"):
        b.call(lambda: 1)


def test_half_open_after_timeout_then_closes_on_success(storage, clock) -> None:
    b = CircuitBreaker("v1", storage, clock)
    fail(b, 5)
    clock.advance(29.9)
    with pytest.raises(CircuitOpen):
        b.allow()
    clock.advance(0.1)
    b.allow()
    assert b.state is HALF and b.snapshot.reset_attempts == 1
    b.record_success()
    assert b.snapshot == type(b.snapshot)()  # fully reset


def test_half_open_failure_reopens_and_limit_locks(storage, clock) -> None:
    b = CircuitBreaker("v1", storage, clock)
    fail(b, 5)
    for attempt in (1, 2, 3):
        clock.advance(30)
        assert b.state is OPEN
        b.allow()
        assert b.state is HALF and b.snapshot.reset_attempts == attempt
        b.record_failure()
        assert b.state is OPEN
    clock.advance(3600)  # however long: no fourth attempt
    with pytest.raises(CircuitOpen, match="after 3 failed reset attempts.*operator"):
        b.allow()
    assert b.state is OPEN and b.snapshot.locked(b.config)
    b.reset()
    assert b.state is CLOSED
    assert b.call(lambda: "ok") == "ok"


def test_excluded_errors_do_not_count(storage, clock) -> None:
    from swarmvar.errors import InvalidReturns

    def bad_input() -> None:
        raise InvalidReturns("NaN in returns")

    b = CircuitBreaker("v1", storage, clock, exclude=(InvalidReturns,))
    fail(b, 4)
    for _ in range(10):
        with pytest.raises(InvalidReturns):
            b.call(bad_input)
    assert b.state is CLOSED and b.snapshot.failures == 0


def test_listeners_see_every_change(storage, clock) -> None:
    seen: list[tuple[str, BreakerState, BreakerState]] = []
    b = CircuitBreaker("v9", storage, clock, listeners=(lambda *e: seen.append(e),))
    fail(b, 5)
    clock.advance(30)
    b.call(lambda: None)
    assert seen == [("v9", CLOSED, OPEN), ("v9", OPEN, HALF), ("v9", HALF, CLOSED)]


def test_state_persists_across_instances(tmp_path: Path, clock) -> None:
    b = CircuitBreaker("v1", SqliteBreakerStorage(Database(tmp_path)), clock)
    fail(b, 5)
    again = CircuitBreaker("v1", SqliteBreakerStorage(Database(tmp_path)), clock)
    assert again.state is OPEN and again.snapshot.opened_at == clock.now


def test_thread_safe_counting(storage, clock) -> None:
    b = CircuitBreaker("v1", storage, clock, BreakerConfig(failure_threshold=10_000))

    def worker() -> None:
        for _ in range(100):
            b.record_failure()

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert b.snapshot.failures == 800


# --- against an independent reference -------------------------------------


class Reference:
    """The issue's rules, written out plainly and separately from the product."""

    def __init__(self, threshold: int, timeout: float, attempts: int) -> None:
        self.t, self.timeout, self.max = threshold, timeout, attempts
        self.state, self.fails, self.tries, self.opened = "closed", 0, 0, 0.0

    def allow(self, now: float) -> bool:
        if self.state == "open":
            if self.tries < self.max and now - self.opened >= self.timeout:
                self.state, self.tries = "half", self.tries + 1
                return True
            return False
        return True

    def result(self, ok: bool, now: float) -> None:
        if ok:
            if self.state != "open":
                self.state, self.fails, self.tries = "closed", 0, 0
        elif self.state == "half":
            self.state, self.opened, self.fails = "open", now, self.fails + 1
        elif self.state == "open":
            self.fails += 1
        else:
            self.fails += 1
            if self.fails >= self.t:
                self.state, self.opened = "open", now


events = st.lists(st.one_of(st.just("ok"), st.just("fail"), st.just("reset"),
                            st.floats(min_value=0, max_value=40)), max_size=80)


@settings(max_examples=150, deadline=None)
@given(events)
def test_matches_reference_machine(seq: list[object]) -> None:
    clock = FakeClock()
    cfg = BreakerConfig(failure_threshold=3, reset_timeout_s=10.0, max_reset_attempts=2)
    b = CircuitBreaker("x", MemoryBreakerStorage(), clock, cfg)
    ref = Reference(3, 10.0, 2)
    names = {"closed": CLOSED, "open": OPEN, "half": HALF}
    for e in seq:
        if isinstance(e, float):
            clock.advance(e)
            continue
        if e == "reset":
            b.reset()
            ref.state, ref.fails, ref.tries = "closed", 0, 0
            continue
        allowed = ref.allow(clock.now)
        if allowed:
            b.allow()
            (b.record_success if e == "ok" else b.record_failure)()
            ref.result(e == "ok", clock.now)
        else:
            with pytest.raises(CircuitOpen):
                b.allow()
        snap = b.snapshot
        assert (snap.state, snap.failures, snap.reset_attempts) == (
            names[ref.state], ref.fails, ref.tries)


_FAILER = """
import sys
from swarmvar.evolution import BreakerConfig, CircuitBreaker, Database, SqliteBreakerStorage
b = CircuitBreaker("shared", SqliteBreakerStorage(Database(sys.argv[1])), lambda: 0.0,
                   BreakerConfig(failure_threshold=10_000))
for _ in range(int(sys.argv[2])):
    b.record_failure()
"""


def test_processes_share_one_breaker(tmp_path: Path) -> None:
    import subprocess
    import sys
    procs = [subprocess.Popen([sys.executable, "-c", _FAILER, str(tmp_path), "40"],
                              stderr=subprocess.PIPE, text=True) for _ in range(3)]
    errors = [p.communicate(timeout=120)[1] for p in procs]
    assert [p.returncode for p in procs] == [0, 0, 0], errors
    assert SqliteBreakerStorage(Database(tmp_path)).load("shared").failures == 120
