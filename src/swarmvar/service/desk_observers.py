"""The desk's observers (the arbiter): their calls on each beat, their checkpoints, their restore.

:class:`Observing` holds the observers a :class:`~swarmvar.service.desk.Desk`
was given. Each observer's calls are looked up once, when it is attached
(``observe``, and ``replay`` for recorded beats; whether each takes
``beat_seconds=``). Every ``checkpoint_every`` beats of a portfolio, the
states of the observers that have one (``state_key``, ``checkpoint_state``,
``restore_state``) go into the home's state store under
``desk-observer:<state_key>:<portfolio>``, each headed by its
:class:`CheckpointMark` (the beat, and the ledger index and hash of its tick
entry): one stored value, so a state and the beat it was taken at are never
read apart. A desk starting on that home restores each observer at its own
mark when the mark stands on the ledger, and replays it only over the later
beats; any other state (not on this ledger, no mark, unreadable) is logged
and left: that observer replays every beat, which is exact, as the ledger is
the source of truth. A portfolio the home holds no state of (new, or beaten
before the observer was on) is checkpointed at the first beat this process
runs of it, so the options its history was decided with are on record from
then.

Before anything is restored, :func:`check_saved` asks each observer with a
``check_state`` (the arbiter) whether it can take each state the home holds
of it for this ledger (its mark on the ledger, or no mark), as a resume of
``swarmvar run`` does: an arbiter with other options than its checkpoints were
made under (``ArbiterOptionsMismatch``) refuses the start, rather than replay
every beat under the new options and so decide the history again differently.
A state whose mark is not on this ledger is not checked, as it is not restored;
one that cannot be read is logged, and the others are checked all the same.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from ..errors import ResumeMismatch, SwarmVarError
from ..ledger import Ledger
from ..ledger.store import Row
from ..swarm.runtime import (
    Attached,
    BeatObserver,
    observer_instructions,
    stateful_observers,
)
from ..types import BeatReport, Decision

log = logging.getLogger("swarmvar.service")

#: State-store key prefix of the desk's checkpoints: ``<prefix><state_key>:<portfolio>``
#: holds an observer's state, its :class:`CheckpointMark` on the first line. (Desks before
#: this one also wrote a ``desk-mark:<portfolio>`` key repeating the mark; it is ignored.)
OBSERVER_PREFIX = "desk-observer:"
_HEX64 = re.compile(r"[0-9a-f]{64}")
#: Why an observer skipped a beat: it raised an error (a fault to investigate).
FAULT = "fault"


@dataclass(frozen=True)
class CheckpointMark:
    """Where a checkpointed observer state stands: after beat ``seq`` of its portfolio,
    whose tick entry is at ledger ``index`` with hash ``hash`` (hex). Stored as the first
    line of the state (one JSON object), so state and mark are written and read as one."""

    seq: int
    index: int
    hash: str

    def line(self) -> bytes:
        """The mark as the state's first line (without its newline)."""
        return json.dumps({"seq": self.seq, "index": self.index, "hash": self.hash},
                          sort_keys=True).encode()

    @classmethod
    def split(cls, blob: bytes) -> tuple[CheckpointMark, bytes] | None:
        """The mark a stored state starts with and the observer's bytes after it; None
        when the blob does not start with a mark line (a state written before states
        carried their mark: its beat is unknown)."""
        head, newline, body = blob.partition(b"\n")
        try:
            d = json.loads(head) if newline else None
        except ValueError:
            return None
        if not isinstance(d, dict) or set(d) != {"seq", "index", "hash"}:
            return None
        seq, index, digest = d["seq"], d["index"], d["hash"]
        if not all(isinstance(v, int) and not isinstance(v, bool) and v >= 0
                   for v in (seq, index)) or not isinstance(digest, str) \
                or not _HEX64.fullmatch(digest):
            return None
        return cls(seq, index, digest), body


#: Whether a checkpoint's mark stands on the ledger: ``(portfolio, mark) -> bool``.
OnLedger = Callable[[str, CheckpointMark], bool]


def mark_on_ledger(ledger: Ledger, name: str, mark: CheckpointMark) -> bool:
    """Whether ``mark`` is beat ``mark.seq`` of ``name`` on ``ledger``: a tick entry of it
    at ``mark.index`` with hash ``mark.hash`` (read only).

    Raises
    ------
    SwarmVarError
        The ledger cannot be read now (``LedgerUnavailable``, ...).
    """
    if mark.index >= ledger.store.size():
        return False
    rows = list(ledger.store.rows(mark.index, mark.index + 1))
    if not rows or bytes(rows[0][5]).hex() != mark.hash:
        return False
    try:
        tick = json.loads(rows[0][3])
        details = tick["details"]
        return bool(tick.get("type") == "tick" and details.get("portfolio") == name
                    and int(details["seq"]) == mark.seq)
    except (ValueError, KeyError, TypeError, AttributeError):
        return False


def saved_portfolios(home: Path, state_key: str) -> list[str]:
    """The portfolios whose state of observer ``state_key`` (``Arbiter.state_key``:
    ``"arbiter"``) ``home``'s state store lists in its index, sorted, read without making
    anything: none when the home has no store (its packs are not looked at: an index that
    lists a state whose packs are gone still lists it).

    Raises
    ------
    VariantStoreLocked, VariantStoreUnavailable, VariantStoreMissing, CorruptStore
        The home's store cannot be read now, or is damaged.
    """
    from ..evolution import Database
    from ..evolution.db import DB_FILE

    if not (home / DB_FILE).is_file():
        return []
    prefix = f"{OBSERVER_PREFIX}{state_key}:"
    db = Database(home, create=False)
    try:
        rows = db.read("SELECT agent_id FROM state_current WHERE substr(agent_id, 1, ?) = ? "
                       "ORDER BY agent_id", (len(prefix), prefix))
    finally:
        db.close()
    return [str(r[0])[len(prefix):] for r in rows]


def saved_states(home: Path, state_key: str) -> tuple[dict[str, bytes], dict[str, str]]:
    """The states of observer ``state_key`` in ``home``'s state store by portfolio (each
    headed by its :class:`CheckpointMark`, or not: an older desk's), and apart, each
    portfolio whose state cannot be read (its packs damaged or gone, encrypted) with why:
    each is read on its own, so one damaged state hides no other. Read without making or
    changing anything (:func:`saved_portfolios`).

    Raises
    ------
    VariantStoreLocked, VariantStoreUnavailable, VariantStoreMissing, CorruptStore
        The home's store cannot be read now, or is damaged.
    """
    from ..evolution import Database, StateStore

    names = saved_portfolios(home, state_key)
    if not names:
        return {}, {}
    if not (home / "states" / "objects").is_dir():  # (a StateStore would make the folder)
        return {}, {n: f"its packs folder {home / 'states' / 'objects'} is gone"
                    for n in names}
    states: dict[str, bytes] = {}
    unreadable: dict[str, str] = {}
    db = Database(home, create=False)
    try:
        store = StateStore(db)
        for n in names:
            try:
                states[n] = store.get(f"{OBSERVER_PREFIX}{state_key}:{n}")
            except (SwarmVarError, OSError) as exc:  # CorruptState, UnknownState, a key...
                unreadable[n] = str(exc)
    finally:
        db.close()
    return states, unreadable


#: What :class:`~swarmvar.ledger.postgres.PostgresStore` raises (a ``LedgerCorrupted``)
#: opening, without creating, a database that holds no ledger yet (a new database).
_NO_PG_LEDGER = "holds no swarmvar ledger tables"


def ledger_reader(home: Path, db: str | None) -> tuple[OnLedger, Callable[[], None]]:
    """Whether a mark stands on the ledger the service over ``home`` (``db``: a PostgreSQL
    URL) opens, and how to close it: the ledger is opened at the first question (a home
    without checkpoints never opens it), read without creating or changing it. No ledger
    there (deleted, never made, a new PostgreSQL database without its tables): no mark
    stands on it, as the desk, which makes it, finds none. A ledger that cannot be opened
    now (locked, damaged, unreachable) is logged (naming the file, or the URL without its
    password), and every mark is taken as standing on it (so every state is checked: the
    desk's start meets that ledger's error anyway)."""
    from ..errors import LedgerCorrupted
    from ..ledger import LedgerNotFound

    opened: list[Ledger | bool] = []  # the ledger; False: none there; True: unreadable

    def on_ledger(name: str, mark: CheckpointMark) -> bool:
        if not opened:
            try:
                opened.append(Ledger(db or home, create=False))
            except LedgerNotFound:
                opened.append(False)
            except LedgerCorrupted as exc:
                if db and _NO_PG_LEDGER in str(exc):
                    opened.append(False)  # a new database: the desk makes its tables
                else:
                    _unreadable(home, db, exc)
                    opened.append(True)
            except (SwarmVarError, OSError) as exc:
                _unreadable(home, db, exc)
                opened.append(True)
        ledger = opened[0]
        return ledger if isinstance(ledger, bool) else mark_on_ledger(ledger, name, mark)

    def close() -> None:
        if opened and isinstance(opened[0], Ledger):
            opened[0].close()

    return on_ledger, close


def _unreadable(home: Path, db: str | None, exc: BaseException) -> None:
    """Log that the ledger of ``home`` (``db``: its URL, shown without its password)
    cannot be read."""
    if db:
        from ..ledger.postgres import shown  # (psycopg: only with a database)

        where = shown(db)
    else:
        where = f"of {home}"
    log.warning("the ledger %s cannot be read (%s); every checkpoint of the home is checked "
                "against the observers' options, whatever its mark", where, exc)


def _standing(on_ledger: OnLedger, name: str, mark: CheckpointMark) -> bool:
    """``on_ledger(name, mark)``; a ledger that cannot be read now: True (checked)."""
    try:
        return on_ledger(name, mark)
    except (SwarmVarError, OSError) as exc:
        log.warning("the ledger cannot tell whether the checkpoint of %s stands on it (%s); "
                    "it is checked", name, exc)
        return True


def check_saved(observers: Sequence[BeatObserver], home: Path, on_ledger: OnLedger) -> None:
    """Refuse to start ``observers`` over ``home`` when one of them cannot take a state the
    home holds of it for this ledger: each observer with a ``check_state`` (the arbiter's: it
    restores and writes nothing) is asked about each of its states there whose mark stands
    on this ledger (``on_ledger``: :meth:`Observing._on_ledger`, or :func:`ledger_reader`'s),
    or that has no mark (an older desk's). A state whose mark is not on this ledger (the
    ledger deleted, another ``--db``) is not checked: the restore logs it and ignores it,
    and the observer replays this ledger's every beat under its options now. Each state is
    read on its own: one that cannot be read (damaged) is logged and left to the restore,
    which logs it too and replays every beat; the others are checked. A store that cannot be
    read now is logged, likewise.

    Raises
    ------
    ResumeMismatch
        ``ArbiterOptionsMismatch``: a state was made under other options than the
        observer's now (each named "saved X, now Y", and how to go on: the options it ran
        with, or another home); nothing was restored or written.
    """
    for _, key, obs in stateful_observers(tuple(observers)):
        check = getattr(obs, "check_state", None)
        if check is None:
            continue
        try:
            saved, unreadable = saved_states(home, key)
        except (SwarmVarError, OSError) as exc:
            log.warning("the checkpoints of the %s observer in %s cannot be read (%s); its "
                        "options are not checked against them", key, home, exc)
            continue
        for name, why in unreadable.items():
            log.warning("the %s checkpoint of %s in %s cannot be read (%s); its options are "
                        "not checked (the restore replays every beat)", key, name, home, why)
        for name, blob in saved.items():
            marked = CheckpointMark.split(blob)
            if marked is not None and not _standing(on_ledger, name, marked[0]):
                log.info("the %s checkpoint of %s (beat %d) is not on this ledger; its "
                         "options are not checked (it is not restored)", key, name,
                         marked[0].seq)
                continue
            try:
                check(name, blob if marked is None else marked[1])
            except ResumeMismatch:
                raise
            except SwarmVarError:
                continue  # not a state it can take: the restore logs it, it replays


def held_portfolios(home: Path, state_key: str, on_ledger: OnLedger) -> list[str]:
    """The portfolios whose state of observer ``state_key`` ``home``'s store lists and
    that may be of this ledger's history: all but those whose state is read and whose mark
    is not on this ledger (``on_ledger``); a state that cannot be read, or has no mark, is
    counted (it cannot be told apart). Sorted; read without making anything.

    Raises
    ------
    VariantStoreLocked, VariantStoreUnavailable, VariantStoreMissing, CorruptStore
        The home's store cannot be read now, or is damaged.
    """
    saved, unreadable = saved_states(home, state_key)
    held = set(unreadable)
    for name, blob in saved.items():
        marked = CheckpointMark.split(blob)
        if marked is None or _standing(on_ledger, name, marked[0]):
            held.add(name)
    return sorted(held)


class Observing:
    """A desk's observers: their instructions, their decisions on each beat, and the
    checkpoints of their states in ``home``'s state store (not thread-safe: the desk
    calls it under its lock).

    Parameters
    ----------
    observers : :class:`~swarmvar.swarm.BeatObserver` objects, in the order they decide.
    ledger : the desk's ledger (a checkpoint's mark must stand on it to be restored).
    home : path whose state store holds the checkpoints.
    checkpoint_every : beats of a portfolio between checkpoints (>= 1, checked by the desk).
    clock : wall time of the stored states.
    create_store : make the home's store if it is missing (default); False when it was made
        at the process's start (the server): a store deleted since is then not made again
        empty, its checkpoint is skipped with a warning (VariantStoreMissing).
    """

    def __init__(self, observers: Sequence[BeatObserver], ledger: Ledger, home: Path, *,
                 checkpoint_every: int, clock: Callable[[], datetime],
                 create_store: bool = True):
        self.observers = tuple(observers)
        self.ledger = ledger
        self.home = home
        self.checkpoint_every = checkpoint_every
        self.create_store = create_store
        self._clock = clock
        self._attached = tuple(Attached.of(obs) for obs in self.observers)
        self._on_skip: list[Callable[[str, str], None]] = []
        self._on_timed: list[Callable[[BeatReport, float], None]] = []
        #: Observers whose state is checkpointed: (position, ``state_key``, observer).
        self.stateful: tuple[tuple[int, str, Any], ...] = tuple(
            stateful_observers(self.observers))
        #: (portfolio, observer's position) -> the seq its restored state stands at (the
        #: initial sync replays that observer only after it)
        self.restored: dict[tuple[str, int], int] = {}
        #: which observer made each decision of the last live :meth:`observe` (by id)
        self._made_by: dict[int, str] = {}
        #: portfolios whose observers' states the home holds (restored at the start) or
        #: this process checkpointed (or tried to); any other is checkpointed at its next
        #: beat here
        self._saved: set[str] = set()

    def check_saved(self) -> None:
        """:func:`check_saved` over this desk's observers, home and ledger: before the
        start's sync restores or replays anything.

        Raises
        ------
        ResumeMismatch
            ``ArbiterOptionsMismatch``: a state of the home was made under other options.
        """
        check_saved(self.observers, self.home, self._on_ledger)

    def instructions(self, name: str) -> tuple[frozenset[str], dict[str, float]]:
        """The observers' quarantine and weight factors for the next beat of ``name``."""
        return observer_instructions(self.observers, name)

    def observe(self, report: BeatReport, seconds: float | None, *, again: bool = False
                ) -> tuple[Decision, ...]:
        """The observers' decisions on a beat, given its measured seconds where they take
        them (the arbiter's PID). ``again``: a recorded beat replayed (their ``replay``
        when they have one; an observer restored from a checkpoint past it skips it)."""
        if not again and seconds is not None:
            for timed in self._on_timed:
                timed(report, seconds)
        out: list[Decision] = []
        if not again:
            self._made_by = {}
        for i, attached in enumerate(self._attached):
            if again and report.seq <= self.restored.get((report.portfolio, i), 0):
                continue  # in the checkpoint it was restored from
            observer = type(self.observers[i]).__name__
            try:
                made = attached(report, seconds, again)
                out.extend(made)
                if not again:
                    self._made_by.update((id(d), observer) for d in made)
            except SwarmVarError as exc:
                # a fault (levels differing, a non-finite value, an unknown agent, a bad
                # state; the arbiter itself decides nothing on a beat with no levels yet):
                # logged as an error and counted. Not raised: the beat is in the ledger
                # already, and a raise here would answer a stored write with an error or
                # stop a sync between a beat and its ledger position (the next sync would
                # replay it twice)
                log.error("observer %s failed on beat %d of %s: %s", observer, report.seq,
                          report.portfolio, exc)
                reason = FAULT
                for cb in self._on_skip:
                    cb(observer, reason)
        return tuple(out)

    def author(self, decision: Decision) -> str:
        """The class name of the observer that made ``decision`` in the last beat this
        process ran (the only observer when it is not known, else ``"observer"``): asked
        when the decision is made (the desk keeps it with a decision that waits)."""
        name = self._made_by.get(id(decision))
        if name is None:
            name = type(self.observers[0]).__name__ if len(self.observers) == 1 \
                else "observer"
        return name

    def fault(self, observer: str, what: str) -> None:
        """An observer's fault met outside its call (a decision the ledger refuses):
        logged as an error and counted as its skipped beat (reason :data:`FAULT`)."""
        log.error("observer %s: %s", observer, what)
        for cb in self._on_skip:
            cb(observer, FAULT)

    def on_skip(self, callback: Callable[[str, str], None]) -> None:
        """Call ``callback(observer class name, reason)`` on each beat an observer skips
        (reason :data:`FAULT`: it raised an error)."""
        self._on_skip.append(callback)

    def on_timed(self, callback: Callable[[BeatReport, float], None]) -> None:
        """Call ``callback(report, seconds)`` on each beat this process runs (not on a
        recorded beat replayed), with its measured wall time, before the observers."""
        self._on_timed.append(callback)

    @contextmanager
    def _state_store(self) -> Iterator[Any]:
        """The home's state store (opened for one checkpoint or one restore)."""
        from ..evolution import Database, StateStore

        db = Database(self.home, create=self.create_store)
        try:
            yield StateStore(db)
        finally:
            db.close()

    def checkpoint(self, name: str, seq: int, row: Row) -> None:
        """Store the observers' states of ``name`` after its beat ``seq`` (every
        ``checkpoint_every`` beats, and at the first beat this process runs of a portfolio
        the home holds no state of), each headed by its mark: the ledger index and hash of
        the beat's tick entry ``row``. A failed write is logged: the ledger can replay them."""
        if not self.stateful or (seq % self.checkpoint_every and name in self._saved):
            return
        self._saved.add(name)  # tried once: a failed write waits for the rhythm's next
        mark = CheckpointMark(seq, int(row[0]), bytes(row[5]).hex()).line()
        states = {f"{OBSERVER_PREFIX}{key}:{name}": mark + b"\n" + obs.checkpoint_state(name)
                  for _, key, obs in self.stateful}
        try:
            with self._state_store() as store:
                store.put_many(states, now=self._clock().timestamp())
                for key in states:
                    store.prune(key, keep=2)
        except (SwarmVarError, OSError) as exc:
            log.warning("checkpoint of %s's observers at beat %d failed (%s); a restart "
                        "replays them from the ledger", name, seq, exc)

    def _on_ledger(self, name: str, mark: CheckpointMark) -> bool:
        """Whether ``mark`` is beat ``mark.seq`` of ``name`` on this ledger
        (:func:`mark_on_ledger`)."""
        return mark_on_ledger(self.ledger, name, mark)

    def restore(self, name: str, agents: Sequence[str]) -> None:
        """Restore each observer's state of portfolio ``name`` (its ``agents``) from the
        home's last checkpoint of it (at the start), at the beat its own mark names, if
        that mark stands on this ledger. An observer not restored replays every beat.

        Raises
        ------
        ResumeMismatch
            ``ArbiterOptionsMismatch``: the state was made under other options (refused by
            :meth:`check_saved` at the start already, unless written since).
        """
        from ..evolution import UnknownState

        blobs: dict[int, bytes] = {}
        try:
            with self._state_store() as store:
                for i, key, _ in self.stateful:
                    try:
                        blobs[i] = store.get(f"{OBSERVER_PREFIX}{key}:{name}")
                    except UnknownState:
                        continue  # never checkpointed here
        except (SwarmVarError, OSError) as exc:
            log.warning("the checkpoints of %s's observers cannot be read (%s); they replay "
                        "every beat", name, exc)
            return
        for i, key, obs in self.stateful:
            if i not in blobs:
                continue
            marked = CheckpointMark.split(blobs[i])
            if marked is None:
                log.warning("the %s state of %s has no checkpoint mark (written by an older "
                            "desk, or damaged); it replays every beat", key, name)
                continue
            mark, state = marked
            try:
                standing = self._on_ledger(name, mark)
            except (SwarmVarError, OSError) as exc:
                log.warning("the checkpoint of %s's %s state cannot be checked (%s); it "
                            "replays every beat", name, key, exc)
                continue
            if not standing:
                log.warning("the %s state of %s (beat %d) is not on this ledger; it replays "
                            "every beat", key, name, mark.seq)
                continue
            try:
                obs.restore_state(name, state, agents=tuple(agents))
            except ResumeMismatch:  # other options: refused, not replayed under the new
                raise  # (checked before the start's sync: met only if written since)
            except SwarmVarError as exc:  # (a bad blob is refused before any change)
                log.warning("the %s state of %s cannot be restored (%s); it replays every "
                            "beat", key, name, exc)
                continue
            self.restored[name, i] = mark.seq
        if self.stateful and all((name, i) in self.restored for i, _, _ in self.stateful):
            self._saved.add(name)
