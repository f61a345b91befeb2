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
``check_state`` (the arbiter) whether it can take every state the home holds
of it, as a resume of ``swarmvar run`` does: an arbiter with other options
than its checkpoints were made under (``ArbiterOptionsMismatch``) refuses the
start, rather than replay every beat under the new options and so decide the
history again differently.
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


def saved_portfolios(home: Path, state_key: str) -> list[str]:
    """The portfolios whose state of observer ``state_key`` (``Arbiter.state_key``:
    ``"arbiter"``) ``home``'s state store holds, sorted, read without making or changing
    anything: none when the home has no store, or no state packs (a store made by the
    service's start, never checkpointed into).

    Raises
    ------
    VariantStoreLocked, VariantStoreUnavailable, VariantStoreMissing, CorruptStore
        The home's store cannot be read now, or is damaged.
    """
    from ..evolution import Database
    from ..evolution.db import DB_FILE

    if not (home / DB_FILE).is_file() or not (home / "states" / "objects").is_dir():
        return []
    prefix = f"{OBSERVER_PREFIX}{state_key}:"
    db = Database(home, create=False)
    try:
        rows = db.read("SELECT agent_id FROM state_current WHERE substr(agent_id, 1, ?) = ? "
                       "ORDER BY agent_id", (len(prefix), prefix))
    finally:
        db.close()
    return [str(r[0])[len(prefix):] for r in rows]


def saved_states(home: Path, state_key: str) -> dict[str, bytes]:
    """The states of observer ``state_key`` in ``home``'s state store by portfolio (each
    headed by its :class:`CheckpointMark`, or not: an older desk's), read without making or
    changing anything (:func:`saved_portfolios`).

    Raises
    ------
    VariantStoreLocked, VariantStoreUnavailable, VariantStoreMissing, CorruptStore
        The home's store cannot be read now, or is damaged.
    SwarmVarError
        A state's packs are damaged or gone (``CorruptState``), or it is encrypted.
    """
    from ..evolution import Database, StateStore

    names = saved_portfolios(home, state_key)
    if not names:
        return {}
    db = Database(home, create=False)
    try:
        store = StateStore(db)
        return {n: store.get(f"{OBSERVER_PREFIX}{state_key}:{n}") for n in names}
    finally:
        db.close()


def check_saved(observers: Sequence[BeatObserver], home: Path) -> None:
    """Refuse to start ``observers`` over ``home`` when one of them cannot take a state the
    home holds of it: each observer with a ``check_state`` (the arbiter's: it restores and
    writes nothing) is asked about each of its states there, whatever its mark. A state it
    cannot read (damaged) is left to the restore, which logs it and replays every beat; a
    store that cannot be read now is logged, likewise.

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
            saved = saved_states(home, key)
        except (SwarmVarError, OSError) as exc:
            log.warning("the checkpoints of the %s observer in %s cannot be read (%s); its "
                        "options are not checked against them", key, home, exc)
            continue
        for name, blob in saved.items():
            marked = CheckpointMark.split(blob)
            try:
                check(name, blob if marked is None else marked[1])
            except ResumeMismatch:
                raise
            except SwarmVarError:
                continue  # not a state it can take: the restore logs it, it replays


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
        #: portfolios whose observers' states the home holds (restored at the start) or
        #: this process checkpointed (or tried to); any other is checkpointed at its next
        #: beat here
        self._saved: set[str] = set()

    def check_saved(self) -> None:
        """:func:`check_saved` over this desk's observers and home: before the start's
        sync restores or replays anything.

        Raises
        ------
        ResumeMismatch
            ``ArbiterOptionsMismatch``: a state of the home was made under other options.
        """
        check_saved(self.observers, self.home)

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
        for i, attached in enumerate(self._attached):
            if again and report.seq <= self.restored.get((report.portfolio, i), 0):
                continue  # in the checkpoint it was restored from
            try:
                out.extend(attached(report, seconds, again))
            except SwarmVarError as exc:
                observer = type(self.observers[i]).__name__
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
        """Whether ``mark`` is beat ``mark.seq`` of ``name`` on this ledger: a tick entry of
        it at ``mark.index`` with hash ``mark.hash``."""
        if mark.index >= self.ledger.store.size():
            return False
        rows = list(self.ledger.store.rows(mark.index, mark.index + 1))
        if not rows or bytes(rows[0][5]).hex() != mark.hash:
            return False
        try:
            tick = json.loads(rows[0][3])
            details = tick["details"]
            return bool(tick.get("type") == "tick" and details.get("portfolio") == name
                        and int(details["seq"]) == mark.seq)
        except (ValueError, KeyError, TypeError, AttributeError):
            return False

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
