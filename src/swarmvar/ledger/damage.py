"""SQLite's own damage check on a ledger file, memoised per on-disk state.

``PRAGMA quick_check`` reads every page of the file (about 0.3 s per 10^6
entries), so it is memoised: :class:`DamageMemo` keeps the answer for the
state of the file it was computed on, identified by ``os.stat`` of the
ledger file (device, inode, size, modification and change times in ns) and
of its write-ahead log (the same without the change time: SQLite running
as root calls ``fchown`` on the WAL whenever a connection opens it, which moves
its change time while nothing is written). A second check of an unchanged file
costs two ``stat`` calls. A symbolic link is followed first: SQLite keeps the
WAL next to the link's target, so that is the WAL whose state counts. The memo
resolves each path it is given once and remembers where it led (a bounded table):
a path that is its own resolution (the store's, resolved when it opens) costs
nothing more; another path (a link) costs two more ``stat`` calls, which see a
link pointed elsewhere since (then it is resolved again).

Rules that keep a memoised "whole" honest:

* A state is memoised only if the file's newest timestamp is at least
  :data:`SETTLE_NS` old when it is read ("racily clean" files, as in git):
  a file system stamps times at a coarse granularity (a clock tick, or a
  whole second on some), so a write landing in the same tick as the last one
  would leave the stat unchanged; a file written that recently is not memoised.
* The state is read before and after the check; if they differ (the file
  changed during the check, or was replaced) the answer is not memoised.
* A memoised answer is dropped after :data:`MAX_AGE_NS` (10 minutes), so a
  long-running process re-reads even a ledger whose stat never changes.
* Only answers about the file are memoised: whole, ``quick_check``'s own
  findings, and errors SQLite classes as damage (``SQLITE_CORRUPT``,
  ``SQLITE_NOTADB``). A lock wait, a full file table ("unable to open
  database file" when out of descriptors) or another I/O error says nothing
  about the file: it is raised (``sqlite3.OperationalError``), never memoised.

How often one file is checked is capped: a file that keeps changing (a
writer appending every beat, a head signed every 0.25 s) is checked at most
once per ``max(5 s, 20 x the last check's duration)``; a changed state seen
sooner gets the last check's answer (bounding the time spent checking to
about 5% whatever the rate). The trade-off: damage is refused within that
bound (5 s on ledgers up to ~2.5 * 10^6 entries), not at the first head after it.
A file replaced by another (moved into place: a new inode) is always checked; one
rewritten in place (``cp`` over it), or deleted and made again where the file system
gives its inode number again, is the same file to the cap: within the gap it gets
the last answer, as any change does. Callers asking
about the same file while a check runs wait for it, then share its answer
through the cap (the memo, if the state settled); with the cap off
(``min_gap_ns=0, gap_factor=0``) each runs its own check after it. A check
someone asked for (:meth:`DamageMemo.check_now`, run by ``Ledger.verify_chain``)
skips the memo and the cap, and its answer is kept as any check's: damage it
finds is refused by the next head at once.

What the state key cannot see (a "whole" memoised for up to 10 minutes):
damage beneath the file system (a disk or controller fault: the stat is
unchanged), writes through a shared memory mapping to a page that is already
dirty (the times are updated only when a clean page is first written), and a
WAL rewritten with its size and modification time put back (``touch -d``,
``os.utime``): the WAL's change time is not in the key (SQLite running as root moves
it whenever a connection opens the WAL, each check's own), the ledger file's is, so the
same done to the ledger
file is seen (tested with ``os.utime``, both ways: damage written in place, a healthy
copy written back or moved into place). A write in the same timestamp tick as the
state checked cannot hide either: that state was not memoised (the settle rule).

The check runs on a fresh read-only connection: a long-lived connection's
page cache would keep showing the pages it read before bytes were
overwritten underneath it (in WAL mode SQLite only drops its cache when the
WAL changes).

``quick_check`` sees page structure and record formats, not the entries'
bytes: changed bytes inside an entry are found by ``Ledger.verify_chain``
(which recomputes every hash), never by this check.
"""

from __future__ import annotations

import os
import sqlite3
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

# The SQLite rules both stores share (one copy, in swarmvar.storerules): re-exported here,
# where the ledger's modules, the service and tests import them.
from ..storerules import (
    CANTOPEN,
    DAMAGE_CODES,
    DAMAGE_IOERR,
    DISK_FULL,
    FULL_BELOW,
    FULL_IOERR,
    IO_ERROR,
    LOCK_CODES,
    NO_DESCRIPTOR,
    OUTSIDE_CODES,
    OUTSIDE_TEXT,
    READ_ONLY,
    cannot_open,
    full_disk,
    is_damage,
    is_lock_wait,
    missing,
    never_opens,
    out_of_descriptors,
    outside,
)

__all__ = ["CANTOPEN", "DISK_FULL", "FULL_BELOW", "GAP_FACTOR", "IO_ERROR", "MAX_AGE_NS",
           "MEMO_STATES", "MIN_GAP_NS", "NO_DESCRIPTOR", "OUTSIDE_CODES", "OUTSIDE_TEXT",
           "PROCESS_MEMO", "READ_ONLY", "SETTLE_NS", "DAMAGE_CODES", "DAMAGE_IOERR",
           "FULL_IOERR", "LOCK_CODES", "DamageMemo", "FileState", "cannot_open",
           "file_state", "full_disk", "is_damage", "is_lock_wait", "missing", "never_opens",
           "open_read_only", "out_of_descriptors", "outside", "quick_check"]

#: Nanoseconds a file must stay unwritten before a check of it is memoised (2 s:
#: above the coarsest timestamp granularity of common Linux file systems, 1 s).
SETTLE_NS = 2_000_000_000
#: Most file states (and files) one memo remembers (least recently used dropped first).
MEMO_STATES = 64
#: A memoised answer older than this (ns, 10 minutes) is checked again.
MAX_AGE_NS = 600_000_000_000
#: A changed file is checked at most once per max(MIN_GAP_NS, GAP_FACTOR x the last
#: check's duration); sooner, the last answer stands (5 s; 20: ~5% of the time checking).
MIN_GAP_NS = 5_000_000_000
GAP_FACTOR = 20
#: Problems ``quick_check`` reports at most (the first one already means damaged).
_MAX_PROBLEMS = 20

#: (device, inode, size in bytes, mtime ns, ctime ns) of one file (ctime 0: not compared).
Stat = tuple[int, int, int, int, int]


@dataclass(frozen=True)
class FileState:
    """One on-disk state of a ledger: its file's and its WAL's stat.

    ``wal`` is None when the write-ahead log is missing or empty (both mean:
    no frames beyond the file itself).
    """

    main: Stat
    wal: Stat | None

    @property
    def newest_ns(self) -> int:
        """The latest modification or change time of the two files, in ns since the epoch."""
        stamps = [self.main[3], self.main[4]]
        if self.wal is not None:
            stamps += [self.wal[3], self.wal[4]]
        return max(stamps)


def _stat(path: Path, ctime: bool = True) -> Stat | None:
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return None
    return (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns if ctime else 0)


def file_state(path: Path) -> FileState | None:
    """The state of ledger file ``path`` and its ``-wal``; None if the file is gone.

    ``path`` must be resolved (``Path.resolve()``): SQLite keeps the WAL beside a
    symbolic link's target, and the ``-wal`` is looked for beside ``path`` as given.
    :meth:`DamageMemo.damage` resolves what it is given before calling this.
    """
    main = _stat(path)
    if main is None:
        return None
    wal = _stat(path.with_name(path.name + "-wal"), ctime=False)
    return FileState(main, wal if wal is not None and wal[2] > 0 else None)


def _gone(path: Path) -> str:
    return f"{path} is gone (deleted or moved away while the ledger was open)"


def _same_file(path: Path, resolved: Path) -> bool:
    """True if ``path`` (a symbolic link, followed) and ``resolved`` name one existing file."""
    try:
        a, b = os.stat(path), os.stat(resolved)
    except OSError:
        return False
    return (a.st_dev, a.st_ino) == (b.st_dev, b.st_ino)


def open_read_only(path: Path, timeout: float = 5.0) -> sqlite3.Connection:
    """A read-only connection to a ledger file, waiting at most ``timeout`` s for a lock
    (for checking or verifying it beside a writer, in this process or another)."""
    return sqlite3.connect(f"{Path(path).resolve().as_uri()}?mode=ro", uri=True,
                           timeout=timeout)


def quick_check(path: Path, timeout: float = 60.0) -> str | None:
    """Run ``PRAGMA quick_check`` on ``path`` over a fresh read-only connection.

    Returns what SQLite finds wrong (one line naming the file), or None if the
    file is whole. An error that says nothing about damage (a lock wait past
    ``timeout`` seconds, no file descriptor left, an I/O error) is raised as
    the ``sqlite3.OperationalError`` it is.
    """
    try:
        conn = open_read_only(path, timeout)
    except sqlite3.DatabaseError as exc:
        if not is_damage(exc):
            raise
        return f"{path} is damaged: {exc}"
    try:
        found = [r[0] for r in conn.execute(f"PRAGMA quick_check({_MAX_PROBLEMS})")]
    except (sqlite3.DatabaseError, UnicodeDecodeError) as exc:
        if not is_damage(exc):
            raise
        return f"{path} is damaged: {exc}"
    finally:
        conn.close()
    if found != ["ok"]:
        return f"{path} is damaged; SQLite's quick_check says: " + "; ".join(map(str, found))
    return None


@dataclass(frozen=True)
class _LastCheck:
    """The last check of one file: when it began and took (monotonic ns), its answer,
    the file it read (device, inode) and the state it is valid for (None: changed
    during the check)."""

    started: int
    duration: int
    answer: str | None
    file: tuple[int, int]
    state: FileState | None


class DamageMemo:
    """:func:`quick_check` answers by file state, at most ``capacity`` of them.

    Parameters
    ----------
    capacity : int
        File states (and files) remembered (least recently used dropped first).
    settle_ns : int
        A state is memoised only once its newest timestamp is this old (ns).
    clock : callable returning ns since the epoch
        The wall clock the settle rule compares file timestamps with.
    min_gap_ns, gap_factor : int
        A changed state of a file checked less than ``max(min_gap_ns, gap_factor x
        that check's duration)`` ago gets that check's answer (0, 0: no cap).
    max_age_ns : int
        A memoised answer older than this is checked again (ns).
    monotonic : callable returning ns
        The clock the gap and the age are measured with (never jumps back).

    Thread-safe: one check per file at a time; callers on the same file wait
    for it and get its answer through the cap (the table's lock is never held
    during a check).
    """

    def __init__(
        self,
        capacity: int = MEMO_STATES,
        settle_ns: int = SETTLE_NS,
        clock: Callable[[], int] = time.time_ns,
        *,
        min_gap_ns: int = MIN_GAP_NS,
        gap_factor: int = GAP_FACTOR,
        max_age_ns: int = MAX_AGE_NS,
        monotonic: Callable[[], int] = time.monotonic_ns,
    ):
        self.capacity = capacity
        self.settle_ns = settle_ns
        self.min_gap_ns = min_gap_ns
        self.gap_factor = gap_factor
        self.max_age_ns = max_age_ns
        self._clock = clock
        self._monotonic = monotonic
        self._lock = threading.Lock()
        #: state -> (answer, monotonic ns when memoised)
        self._known: OrderedDict[FileState, tuple[str | None, int]] = OrderedDict()
        self._last: OrderedDict[Path, _LastCheck] = OrderedDict()
        self._gates: OrderedDict[Path, threading.Lock] = OrderedDict()
        #: path given -> that path resolved (symbolic links followed)
        self._resolved: OrderedDict[Path, Path] = OrderedDict()
        #: quick_check runs so far (for tests and benchmarks).
        self.checks = 0

    def damage(self, path: Path, timeout: float = 60.0) -> str | None:
        """What ``quick_check`` finds wrong with ``path`` now (None: whole), memoised.

        ``path`` may be a symbolic link: it is resolved (its WAL is beside its target),
        once per path given (a bounded table; :meth:`_resolve`), so a head of
        :class:`~swarmvar.ledger.sqlite.SQLiteStore` (which passes the path it resolved
        when it opened) costs no ``resolve``.

        Raises
        ------
        sqlite3.OperationalError
            Not memoised: an error that says nothing about damage (a lock wait past
            ``timeout`` s, no descriptor left).
        """
        path = self._resolve(path)
        before = file_state(path)
        if before is None:  # deleted or moved away under an open ledger
            return _gone(path)
        hit = self._memoised(before, self._monotonic())
        if hit is not None:
            return hit[0]
        return self._check(path, timeout, capped=True)

    def check_now(self, path: Path, timeout: float = 60.0) -> str | None:
        """:meth:`damage` past the memo and the cap: ``quick_check`` runs now (after a
        check of the same file already running), for a verification someone asked for.

        Its answer is kept as any check's is (the cap's last answer for the file, and
        memoised if the state settled): damage a verification finds is refused by the
        next :meth:`damage` at once, not after the cap's gap.

        Raises
        ------
        sqlite3.OperationalError
            As :meth:`damage` raises it.
        """
        return self._check(self._resolve(path), timeout, capped=False)

    def _check(self, path: Path, timeout: float, *, capped: bool) -> str | None:
        """Run ``quick_check`` on resolved ``path`` (one per file at a time) and keep its
        answer; ``capped``: first answer from the memo or the cap if they have one."""
        with self._gate(path):  # one check per file; others wait, then re-read
            now = self._clock()
            start = self._monotonic()
            before = file_state(path)
            if before is None:
                return _gone(path)
            if capped:
                hit = self._memoised(before, start)
                if hit is not None:
                    return hit[0]
                with self._lock:
                    last = self._last.get(path)
                if (last is not None and last.file == before.main[:2]
                        and start - last.started < max(self.min_gap_ns,
                                                       self.gap_factor * last.duration)):
                    return last.answer  # the cap: this file was checked moments ago
            found = quick_check(path, timeout)
            end = self._monotonic()
            after = file_state(path)
            with self._lock:
                self.checks += 1
                self._last[path] = _LastCheck(start, end - start, found, before.main[:2],
                                              before if after == before else None)
                self._last.move_to_end(path)
                while len(self._last) > self.capacity:
                    self._last.popitem(last=False)
                if after == before and before.newest_ns <= now - self.settle_ns:
                    self._known[before] = (found, end)
                    while len(self._known) > self.capacity:
                        self._known.popitem(last=False)
        return found

    def _resolve(self, path: Path) -> Path:
        """``path`` with every symbolic link followed, remembered per path given (at most
        ``capacity`` paths, least recently used dropped first).

        A path remembered as its own resolution (the store's) is taken as is: no system
        call. Another (a link, a relative path) costs two ``stat`` calls to see that it
        still names the file it was resolved to; if not (the link points elsewhere now,
        or nothing is there), it is resolved again.
        """
        with self._lock:
            got = self._resolved.get(path)
            if got is not None:
                self._resolved.move_to_end(path)
        if got is not None and (got == path or _same_file(path, got)):
            return got
        got = Path(path).resolve()
        with self._lock:
            self._resolved[path] = got
            self._resolved.move_to_end(path)
            while len(self._resolved) > self.capacity:
                self._resolved.popitem(last=False)
        return got

    def _memoised(self, state: FileState, now: int) -> tuple[str | None] | None:
        """(the memoised answer,) for ``state``; None if none (or older than max_age_ns)."""
        with self._lock:
            got = self._known.get(state)
            if got is None:
                return None
            if now - got[1] > self.max_age_ns:
                del self._known[state]
                return None
            self._known.move_to_end(state)
            return (got[0],)

    def _gate(self, path: Path) -> threading.Lock:
        """The lock one check of ``path`` holds (bounded: a dropped gate only lets two
        checks of one file run at once, never a wrong answer)."""
        with self._lock:
            gate = self._gates.get(path)
            if gate is None:
                gate = self._gates[path] = threading.Lock()
                while len(self._gates) > self.capacity:
                    self._gates.popitem(last=False)
            self._gates.move_to_end(path)
            return gate

    def forget(self) -> None:
        """Drop every memoised answer and the cap's last checks (the next check of each
        file runs again)."""
        with self._lock:
            self._known.clear()
            self._last.clear()
            self._resolved.clear()

    def _after_fork(self) -> None:
        # a fork may copy a lock held by another thread (the table's or a check's)
        self._lock = threading.Lock()
        self._gates = OrderedDict()


#: The process's memo, shared by every ledger opened in it (a command that opens
#: the same unchanged file several times checks it once). Bounded (MEMO_STATES
#: states and files) and keyed by what is on disk: it never answers for another
#: file, and for another state of the same file only within the cap's gap.
PROCESS_MEMO = DamageMemo()
os.register_at_fork(after_in_child=PROCESS_MEMO._after_fork)
