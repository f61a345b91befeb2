"""A variant store opened on a full file system is "disk full", not "I/O error": its
``-shm`` cannot grow there (SQLite's SQLITE_IOERR_SHMSIZE, "disk I/O error"), so an I/O
error met where the file system has no room left (``swarmvar.evolution.db._full_disk``,
the ledger's ``full_disk``: ``os.statvfs`` of the file's folder) is named a disk full.
Tested on a real full file system (a small tmpfs in a mount namespace of its own:
``tests/_full_fs.py``; skipped where it cannot be mounted), where the two copies of the
rule give the same answers; an I/O error with room to spare stays an I/O error.
"""

from __future__ import annotations

from pathlib import Path

import swarmvar.evolution.db as db
from _full_fs import run_full  # tests/_full_fs.py (on the path: tests/conftest.py)
from _sqlite_codes import coded  # tests/_sqlite_codes.py
from swarmvar.evolution.errors import DISK_FULL, IO_ERROR, VariantStoreUnwritable
from swarmvar.ledger import damage

_OPEN_FULL = """
import json, os
from pathlib import Path
from _sqlite_codes import coded
from swarmvar.evolution import db
from swarmvar.evolution.errors import VariantStoreUnwritable
from swarmvar.ledger import damage
folder = Path(sys.argv[1])
insert = "INSERT INTO agents (agent_id, body) VALUES (?, ?)"
with db.Database(folder / "home") as database:
    with database.transaction() as conn:
        conn.execute(insert, ("kept", "x"))
    path = database.path
filler = fill(folder)
out = {"free": os.statvfs(folder).f_bfree * os.statvfs(folder).f_frsize, "opened": []}
for create in (True, False):  # a first open, and one that may not create the file
    try:
        with db.Database(folder / "home", create=create):
            out["opened"].append(create)
    except VariantStoreUnwritable as exc:
        out.setdefault("errors", []).append(dict(cause=exc.cause, path=exc.path,
                                                 message=str(exc)))
out["rules"] = [[db._full_disk(coded(code, "disk I/O error"), path),
                 damage.full_disk(coded(code, "disk I/O error"), path)]
                for code in (4874, 266, 522, 10, None, 778, 1034)]
filler.unlink()
with db.Database(folder / "home", create=False) as database:
    with database.transaction() as conn:
        conn.execute(insert, ("after", "y"))
    out["agents"] = [r[0] for r in database.read("SELECT agent_id FROM agents ORDER BY 1")]
    out["check"] = database.read("PRAGMA quick_check")[0][0]
print(json.dumps(out))
"""


def test_an_open_on_a_full_file_system_is_disk_full(tmp_path: Path) -> None:
    """A store written, then its file system filled: opening it (creating or not) is
    VariantStoreUnwritable "disk full" naming the file and the bytes free, "not damaged",
    not "I/O error"; the ledger's rule and the store's copy agree there (a read's I/O
    error is none); once the room is freed the rows are kept and a write passes."""
    out = run_full(_OPEN_FULL, tmp_path / "full")
    path = str(tmp_path / "full" / "home" / db.DB_FILE)
    assert out["free"] < 32 * 1024 and out["opened"] == [], out
    assert len(out["errors"]) == 2, out
    for err in out["errors"]:
        said = err["message"]
        assert err["cause"] == DISK_FULL and err["path"] == path, err
        assert said.startswith(f"the variant store {path} cannot be written: disk full ("), said
        assert "not damaged" in said and "free space on its disk" in said, said
        if "disk I/O error" in said:  # SQLite said I/O error: the room is told
            assert "bytes free on the file system of" in said, said
    for ours, ledgers in out["rules"]:
        assert ours == ledgers, out["rules"]
    # SHMSIZE, a plain IOERR, no code: disk full; a read's, a write's, an fsync's: no
    assert [ours is None for ours, _ in out["rules"]] == [False, True, True, False, False,
                                                         True, True]
    assert out["agents"] == ["after", "kept"] and out["check"] == "ok", out


def test_an_io_error_with_room_to_spare_stays_an_io_error(empty_sqlite_files: Path) -> None:
    """SQLITE_IOERR_SHMSIZE (or another I/O error) where the file system has room is the
    store's "I/O error" (it may be intact: check the disk), as ever."""
    there = empty_sqlite_files
    for code in (4874, 10, 778, None):  # SHMSIZE, the primary code, IOERR_WRITE, no code
        exc = coded(code, "disk I/O error")
        assert db._full_disk(exc, there) is None and damage.full_disk(exc, there) is None
        err = db._store_error(str(there), exc, "damaged")
        assert isinstance(err, VariantStoreUnwritable) and err.cause == IO_ERROR, (code, err)
        assert err.detail == "disk I/O error" and "may be intact" in str(err)
