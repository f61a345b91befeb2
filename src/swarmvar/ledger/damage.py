"""SQLite's own damage check on a ledger file, run once per on-disk state.

``PRAGMA quick_check`` reads every page of the file (about 0.3 s per 10^6
entries), so it is memoised: :class:`DamageMemo` keeps the answer for the
state of the file it was computed on, identified by ``os.stat`` of the
ledger file (device, inode, size, modification and change times in ns) and
of its write-ahead log (the same without the change time: SQLite running
as root calls ``fchown`` on the WAL whenever a connection opens it, which moves
its change time while nothing is written). A second check of an unchanged file costs two
``stat`` calls; any write to either file (an append, another process's
commit, bytes overwritten by anything else) changes the state, and the
next check runs ``quick_check`` again.

Two rules keep a memoised "whole" honest:

* A state is memoised only if the file's newest timestamp is at least
  :data:`SETTLE_NS` old when it is read ("racily clean" files, as in git):
  a file system stamps times at a coarse granularity (a clock tick, or a
  whole second on some), so a write landing in the same tick as the last one
  would leave the stat unchanged; a file written that recently is checked
  every time instead.
* The state is read before and after the check; if they differ (the file
  changed during the check, or was replaced) the answer is not memoised.

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

#: Nanoseconds a file must stay unwritten before a check of it is memoised (2 s:
#: above the coarsest timestamp granularity of common Linux file systems, 1 s).
SETTLE_NS = 2_000_000_000
#: Most file states one memo remembers (least recently used dropped first).
MEMO_STATES = 64
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
    """The state of ledger file ``path`` and its ``-wal``; None if the file is gone."""
    main = _stat(path)
    if main is None:
        return None
    wal = _stat(path.with_name(path.name + "-wal"), ctime=False)
    return FileState(main, wal if wal is not None and wal[2] > 0 else None)


def quick_check(path: Path, timeout: float = 60.0) -> str | None:
    """Run ``PRAGMA quick_check`` on ``path`` over a fresh read-only connection.

    Returns what SQLite finds wrong (one line naming the file), or None if the
    file is whole. A lock wait past ``timeout`` seconds is raised as
    ``sqlite3.OperationalError`` (it says nothing about damage).
    """
    try:
        conn = sqlite3.connect(
            f"{path.resolve().as_uri()}?mode=ro", uri=True, timeout=timeout,
            isolation_level=None, check_same_thread=False,
        )
    except sqlite3.DatabaseError as exc:
        if "locked" in str(exc) or "busy" in str(exc):
            raise
        return f"{path} is damaged: {exc}"
    try:
        found = [r[0] for r in conn.execute(f"PRAGMA quick_check({_MAX_PROBLEMS})")]
    except (sqlite3.DatabaseError, UnicodeDecodeError) as exc:
        if isinstance(exc, sqlite3.OperationalError) and (
            "locked" in str(exc) or "busy" in str(exc)
        ):
            raise
        return f"{path} is damaged: {exc}"
    finally:
        conn.close()
    if found != ["ok"]:
        return f"{path} is damaged; SQLite's quick_check says: " + "; ".join(map(str, found))
    return None


class DamageMemo:
    """:func:`quick_check` answers by file state, at most ``capacity`` of them.

    Parameters
    ----------
    capacity : int
        File states remembered (least recently used dropped first).
    settle_ns : int
        A state is memoised only once its newest timestamp is this old (ns).
    clock : callable returning ns since the epoch
        The wall clock the settle rule compares file timestamps with.

    Thread-safe: the lock guards the table only; two threads checking the
    same new state may both run ``quick_check`` (same answer).
    """

    def __init__(
        self,
        capacity: int = MEMO_STATES,
        settle_ns: int = SETTLE_NS,
        clock: Callable[[], int] = time.time_ns,
    ):
        self.capacity = capacity
        self.settle_ns = settle_ns
        self._clock = clock
        self._lock = threading.Lock()
        self._known: OrderedDict[FileState, str | None] = OrderedDict()
        #: quick_check runs so far (for tests and benchmarks).
        self.checks = 0

    def damage(self, path: Path, timeout: float = 60.0) -> str | None:
        """What ``quick_check`` finds wrong with ``path`` now (None: whole), memoised."""
        now = self._clock()
        before = file_state(path)
        if before is not None:
            with self._lock:
                if before in self._known:
                    self._known.move_to_end(before)
                    return self._known[before]
        found = quick_check(path, timeout)
        with self._lock:
            self.checks += 1
        if before is None or before.newest_ns > now - self.settle_ns:
            return found  # gone, or written too recently for its stat to tell a new write
        if file_state(path) == before:
            with self._lock:
                self._known[before] = found
                while len(self._known) > self.capacity:
                    self._known.popitem(last=False)
        return found

    def forget(self) -> None:
        """Drop every memoised answer (the next check of each file runs again)."""
        with self._lock:
            self._known.clear()

    def _after_fork(self) -> None:
        self._lock = threading.Lock()  # a fork may copy the lock held by another thread


#: The process's memo, shared by every ledger opened in it (a command that opens
#: the same unchanged file several times checks it once). Bounded (MEMO_STATES
#: states) and keyed by what is on disk, so it cannot answer for another state.
PROCESS_MEMO = DamageMemo()
os.register_at_fork(after_in_child=PROCESS_MEMO._after_fork)
