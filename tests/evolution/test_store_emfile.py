"""Out of file descriptors is not damage: the variant store says "retry", never "move it away".

SQLite says "unable to open database file" (SQLITE_CANTOPEN) both when this process has
no descriptor left (EMFILE) and when the file is gone; neither is a damaged store.
"""

from __future__ import annotations

import os
import pickle
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

import swarmvar.evolution.db as db
from _fd_fill import PRELUDE  # tests/_fd_fill.py (on the path: tests/conftest.py)
from swarmvar.evolution import open_home
from swarmvar.evolution.errors import (
    CorruptStore,
    VariantStoreMissing,
    VariantStoreUnavailable,
)
from swarmvar.ledger import damage

#: The open-file limit the subprocesses set (bounds every loop filling it).
LIMIT = 64

_SCRIPT = """
from pathlib import Path
from swarmvar.evolution import open_home
home = Path(sys.argv[1])
for free in (0, 1, 2):
    held = fill({limit}, free)
    try:
        open_home(home).close()
        said = "opened"
    except Exception as exc:
        said = type(exc).__name__ + " | " + str(exc)
    release(held)
    print(free, said)
open_home(home).close()
print("after", "opened")
"""


def _at_the_limit(home: Path) -> list[str]:
    script = PRELUDE + _SCRIPT.format(limit=LIMIT)
    done = subprocess.run([sys.executable, "-c", script, str(home)], capture_output=True,
                          text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip().split("\n")


def test_no_descriptor_left_is_a_retry_not_a_damaged_store(tmp_path: Path) -> None:
    """A real EMFILE (the process at its open-file limit, 0, 1 or 2 descriptors free: the
    file, its -wal and -shm each fail in turn) on a whole store: VariantStoreUnavailable
    naming the store, never CorruptStore's "move it away"; the store opens once they are
    closed."""
    home = tmp_path / "home"
    open_home(home).close()
    lines = _at_the_limit(home)
    assert len(lines) == 4 and lines[-1] == "after opened", lines
    store = home / db.DB_FILE
    for line in lines[:2]:  # 0 and 1 free: not even the file's -wal can be opened
        kind, _, message = line.partition(" | ")
        assert kind.split(" ", 1)[1] == "VariantStoreUnavailable", line
        assert f"the variant store {store} cannot be opened now" in message, line
        assert "retry" in message and "move it away" not in message, line
    assert lines[0].endswith("(unable to open database file; this process has no file "
                             "descriptor left); nothing was changed and it is not damaged: "
                             "retry later (if this process keeps running out of file "
                             "descriptors, raise its limit, ulimit -n)"), lines[0]
    assert "CorruptStore" not in "\n".join(lines), lines


def test_a_fresh_home_at_the_limit_is_a_retry_too(tmp_path: Path) -> None:
    """No store yet and no descriptor to create it: not "gone" (the next open creates it)."""
    lines = _at_the_limit(tmp_path / "fresh")
    assert lines[0].startswith("0 VariantStoreUnavailable | "), lines
    assert lines[-1] == "after opened", lines


def test_a_store_that_cannot_be_created_is_missing_not_damaged(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """evolution.sqlite a link into a folder that is not there (SQLite cannot create it,
    with descriptors to spare): VariantStoreMissing naming the store and why."""
    home = tmp_path / "home"
    home.mkdir()
    store = home / db.DB_FILE
    store.symlink_to(tmp_path / "gone" / "evolution.sqlite")
    monkeypatch.setattr(db, "_OPEN_ATTEMPTS", 2)  # the racing creator's wait, not 2.5 s
    with pytest.raises(VariantStoreMissing) as got:
        open_home(home)
    message = str(got.value)
    assert message.startswith(f"the variant store {store} cannot be opened (No such file or "
                              "directory; SQLite: unable to open database file)"), message
    assert not isinstance(got.value, CorruptStore) and "move it away" not in message


def test_a_folder_it_may_not_write_is_named(tmp_path: Path,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    """The file there but its -wal/-shm not, in a folder this process may not write (as
    root every folder is writable: os.access answers as for another user): named, in both
    copies of the rule; with the -wal and -shm there the folder is not asked."""
    store = tmp_path / "x.sqlite"
    store.write_bytes(b"")
    monkeypatch.setattr(os, "access", lambda *a, **k: False)
    want = (f"its folder {tmp_path} may not be written by this process, and SQLite creates "
            "the file's -wal and -shm there")
    assert db._missing(str(store)) == want == damage.missing(store)
    for side in ("-wal", "-shm"):
        Path(f"{store}{side}").write_bytes(b"")
    assert db._missing(str(store)) is None and damage.missing(store) is None


def _errors(folder: Path) -> list[BaseException]:
    """SQLite's own lock wait and CANTOPEN, a damaged file's error, and coded variants."""
    path = folder / "locked.sqlite"
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("CREATE TABLE t (x)")
    holder.execute("BEGIN EXCLUSIVE")
    waiter = sqlite3.connect(path, timeout=0)
    found: list[BaseException] = []
    try:
        waiter.execute("SELECT * FROM t")
    except sqlite3.OperationalError as exc:
        found.append(exc)
    finally:
        waiter.close()
        holder.close()
    try:
        sqlite3.connect(folder / "no-such-folder" / "x.sqlite")
    except sqlite3.OperationalError as exc:
        found.append(exc)
    bad = folder / "bad.sqlite"
    bad.write_bytes(b"garbage " * 100)
    try:
        sqlite3.connect(bad).execute("SELECT * FROM sqlite_master")
    except sqlite3.DatabaseError as exc:
        found.append(exc)
    assert len(found) == 3, found
    for code, text in ((5, "database is busy"), (6, "database table is locked"),
                       (14, "unable to open database file"), (11, "malformed"),
                       (10, "disk I/O error"), (261, "extended busy")):
        e = sqlite3.OperationalError(text)
        e.sqlite_errorcode = code  # type: ignore[attr-defined]
        found.append(e)
    found += [sqlite3.OperationalError("database is locked"), ValueError("locked")]
    return found


def test_one_rule_for_a_lock_and_a_file_it_cannot_open(tmp_path: Path) -> None:
    """evolution.db keeps its own copy of ledger.damage's rules (engines do not import each
    other): the two answer alike on SQLite's real errors and on coded ones."""
    answers = []
    for exc in _errors(tmp_path):
        mine = (db._is_lock_wait(exc), db._cannot_open(exc))
        assert mine == (damage.is_lock_wait(exc), damage.cannot_open(exc)), exc
        answers.append(mine)
    assert answers[:3] == [(True, False), (False, True), (False, False)], answers
    assert (True, False) in answers[3:] and (False, True) in answers[3:]


def test_every_new_error_survives_a_pickle(tmp_path: Path) -> None:
    """Each is rebuilt whole (a worker process's error crossing to its parent)."""
    lock = _errors(tmp_path)[0]
    assert isinstance(lock, sqlite3.OperationalError)
    for err in (db.VariantStoreLocked("/h/evolution.sqlite", lock),
                db.VariantStoreLocked("/h/evolution.sqlite"),
                VariantStoreUnavailable("/h/evolution.sqlite", "unable to open database file"),
                VariantStoreMissing("/h/evolution.sqlite", "No such file or directory",
                                    "unable to open database file")):
        back = pickle.loads(pickle.dumps(err))
        assert type(back) is type(err) and str(back) == str(err), err
        assert back.__dict__ == err.__dict__ and back.path == "/h/evolution.sqlite"
    locked = pickle.loads(pickle.dumps(db.VariantStoreLocked("/h/e.sqlite", lock)))
    assert (locked.sqlite_errorcode, locked.sqlite_errorname) == (5, "SQLITE_BUSY")
    assert "database is locked" in str(locked)


def test_a_damaged_store_is_still_corrupt(tmp_path: Path) -> None:
    """What the new errors leave alone: garbage where the store goes is CorruptStore."""
    home = tmp_path / "home"
    home.mkdir()
    (home / db.DB_FILE).write_bytes(b"SQLite format 3\x00" + b"\xff" * 4000)
    with pytest.raises(CorruptStore, match="move it away"):
        open_home(home)
