"""A circuit breaker per variant, with a limit on reset attempts.

CLOSED -> OPEN after ``failure_threshold`` consecutive failures; OPEN ->
HALF_OPEN once ``reset_timeout_s`` has passed (each such move is one reset
attempt); HALF_OPEN -> CLOSED on a success, -> OPEN on a failure. After
``max_reset_attempts`` failed attempts the breaker stays OPEN until an
operator calls :meth:`CircuitBreaker.reset`. pybreaker has no such limit, so
the machine is written out here: pure transition functions on a frozen
:class:`BreakerSnapshot`, persisted through a narrow storage interface with an
in-memory and a SQLite implementation (pybreaker's habit). Each transition is
read-modify-write inside the storage's lock or transaction, so threads and
processes sharing a breaker see one history.
"""

from __future__ import annotations

import threading
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, replace
from enum import Enum
from typing import ParamSpec, TypeVar

from ..errors import CircuitOpen
from .config import BreakerConfig, Clock
from .db import Database

P = ParamSpec("P")
T = TypeVar("T")


class BreakerState(Enum):
    """The three states of a circuit breaker."""

    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


@dataclass(frozen=True)
class BreakerSnapshot:
    """Everything a breaker remembers; ``opened_at`` is seconds since the epoch."""

    state: BreakerState = BreakerState.CLOSED
    failures: int = 0
    reset_attempts: int = 0
    opened_at: float | None = None

    def locked(self, config: BreakerConfig) -> bool:
        """True when OPEN with no reset attempts left (operator reset needed)."""
        return (self.state is BreakerState.OPEN
                and self.reset_attempts >= config.max_reset_attempts)


# --- the machine, as pure functions ---------------------------------------


def admit(s: BreakerSnapshot, now: float, cfg: BreakerConfig) -> tuple[BreakerSnapshot, bool]:
    """Before a call: the new snapshot and whether the call may run."""
    if s.state is BreakerState.OPEN:
        if s.locked(cfg):
            return s, False
        if s.opened_at is not None and now - s.opened_at >= cfg.reset_timeout_s:
            return replace(s, state=BreakerState.HALF_OPEN,
                           reset_attempts=s.reset_attempts + 1), True
        return s, False
    return s, True


def succeeded(s: BreakerSnapshot) -> BreakerSnapshot:
    """After a successful call."""
    if s.state is BreakerState.OPEN:  # a call admitted before the trip: no say
        return s
    return BreakerSnapshot()


def failed(s: BreakerSnapshot, now: float, cfg: BreakerConfig) -> BreakerSnapshot:
    """After a failed call."""
    if s.state is BreakerState.HALF_OPEN:
        return replace(s, state=BreakerState.OPEN, failures=s.failures + 1, opened_at=now)
    if s.state is BreakerState.OPEN:
        return replace(s, failures=s.failures + 1)
    failures = s.failures + 1
    if failures >= cfg.failure_threshold:
        return replace(s, state=BreakerState.OPEN, failures=failures, opened_at=now)
    return replace(s, failures=failures)


# --- storage ----------------------------------------------------------------

Update = Callable[[BreakerSnapshot], BreakerSnapshot]


class BreakerStorage(ABC):
    """Where breaker snapshots live, with an atomic read-modify-write."""

    @abstractmethod
    def load(self, name: str) -> BreakerSnapshot:
        """The stored snapshot (a fresh CLOSED one if never stored)."""

    @abstractmethod
    def update(self, name: str, change: Update) -> tuple[BreakerSnapshot, BreakerSnapshot]:
        """Apply ``change`` atomically; return (old, new)."""


class MemoryBreakerStorage(BreakerStorage):
    """Snapshots in a dict behind a lock (one process)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._rows: dict[str, BreakerSnapshot] = {}

    def load(self, name: str) -> BreakerSnapshot:
        with self._lock:
            return self._rows.get(name, BreakerSnapshot())

    def update(self, name: str, change: Update) -> tuple[BreakerSnapshot, BreakerSnapshot]:
        with self._lock:
            old = self._rows.get(name, BreakerSnapshot())
            new = change(old)
            self._rows[name] = new
            return old, new


class SqliteBreakerStorage(BreakerStorage):
    """Snapshots in the ``breakers`` table, updated in ``BEGIN IMMEDIATE`` transactions."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def load(self, name: str) -> BreakerSnapshot:
        row = self.db.read_one(
            "SELECT state, failures, reset_attempts, opened_at FROM breakers WHERE name=?",
            (name,))
        if row is None:
            return BreakerSnapshot()
        state, failures, attempts, opened = row
        return BreakerSnapshot(BreakerState(state), int(failures), int(attempts),
                               None if opened is None else float(opened))

    def update(self, name: str, change: Update) -> tuple[BreakerSnapshot, BreakerSnapshot]:
        with self.db.transaction() as conn:
            old = self.load(name)
            new = change(old)
            if new != old:
                conn.execute(
                    "INSERT INTO breakers VALUES (?,?,?,?,?) ON CONFLICT(name) DO UPDATE SET "
                    "state=excluded.state, failures=excluded.failures, "
                    "reset_attempts=excluded.reset_attempts, opened_at=excluded.opened_at",
                    (name, new.state.value, new.failures, new.reset_attempts, new.opened_at))
            return old, new

    def names(self) -> list[str]:
        """Every breaker that has left its initial state."""
        return [str(r[0]) for r in self.db.read("SELECT name FROM breakers ORDER BY name")]


# --- the breaker ------------------------------------------------------------

Listener = Callable[[str, BreakerState, BreakerState], None]


class CircuitBreaker:
    """The circuit breaker of one variant.

    Parameters
    ----------
    name : str
        What it guards (a variant id).
    storage : BreakerStorage
        Where its state lives; share a SQLite storage to share the breaker
        between processes.
    clock : Callable[[], float]
        Wall time in seconds since the epoch (``time.time`` at the edge; a
        fake clock in tests).
    listeners : sequence of callables ``(name, old_state, new_state)``
        Called after each committed state change, outside any lock.
    exclude : tuple of exception types
        Exceptions from :meth:`call` that are the caller's fault (bad input),
        not the variant's: they pass through without counting as failures.
    """

    def __init__(self, name: str, storage: BreakerStorage, clock: Clock,
                 config: BreakerConfig | None = None,
                 listeners: tuple[Listener, ...] = (),
                 exclude: tuple[type[Exception], ...] = ()) -> None:
        self.name = name
        self.storage = storage
        self.clock = clock
        self.config = config or BreakerConfig()
        self._listeners = list(listeners)
        self.exclude = exclude
        self._lock = threading.Lock()

    def add_listener(self, listener: Listener) -> None:
        """Call ``listener(name, old, new)`` on every state change."""
        with self._lock:
            self._listeners.append(listener)

    @property
    def snapshot(self) -> BreakerSnapshot:
        return self.storage.load(self.name)

    @property
    def state(self) -> BreakerState:
        return self.snapshot.state

    def allow(self) -> None:
        """Admit one call, or raise ``CircuitOpen`` saying when to retry."""
        now = self.clock()
        verdict: list[bool] = []

        def change(s: BreakerSnapshot) -> BreakerSnapshot:
            new, ok = admit(s, now, self.config)
            verdict.append(ok)
            return new

        old, new = self.storage.update(self.name, change)
        self._notify(old, new)
        if not verdict[-1]:
            if new.locked(self.config):
                raise CircuitOpen(
                    f"breaker {self.name} is OPEN after {new.reset_attempts} failed reset "
                    f"attempts; it stays open until an operator resets it "
                    f"(swarmvar variants breaker reset {self.name})")
            wait = self.config.reset_timeout_s - (now - (new.opened_at or now))
            raise CircuitOpen(f"breaker {self.name} is OPEN; next reset attempt in {wait:.1f} s")

    def record_success(self) -> None:
        """Report a call that worked."""
        self._notify(*self.storage.update(self.name, succeeded))

    def record_failure(self) -> None:
        """Report a call that failed."""
        now = self.clock()
        self._notify(*self.storage.update(self.name, lambda s: failed(s, now, self.config)))

    def call(self, fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        """Run ``fn`` through the breaker: refused when open, its outcome recorded."""
        self.allow()
        try:
            result = fn(*args, **kwargs)
        except self.exclude:
            self.record_success()  # the variant answered; the input was wrong
            raise
        except Exception:
            self.record_failure()
            raise
        self.record_success()
        return result

    def reset(self) -> None:
        """Operator reset: back to CLOSED with no failures or attempts counted."""
        self._notify(*self.storage.update(self.name, lambda s: BreakerSnapshot()))

    def _notify(self, old: BreakerSnapshot, new: BreakerSnapshot) -> None:
        if old.state is not new.state:
            with self._lock:
                listeners = list(self._listeners)
            for listener in listeners:
                listener(self.name, old.state, new.state)
