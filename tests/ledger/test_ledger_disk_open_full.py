"""A ledger opened on a full file system is "disk full", not "I/O error": SQLite's WAL index
(the ``-shm``) cannot grow there, which SQLite says as SQLITE_IOERR_SHMSIZE ("disk I/O
error"), so an I/O error met where the file system has no room left
(``swarmvar.ledger.damage.full_disk``: ``os.statvfs`` of the file's folder) is named a disk
full. Tested on a real full file system (a small tmpfs in a mount namespace of its own:
``tests/_full_fs.py``; skipped where it cannot be mounted); an I/O error with room to
spare, or a read's, stays an I/O error.
"""

from __future__ import annotations

from pathlib import Path

import swarmvar.ledger.sqlite as sqlite_store
from _full_fs import run_full  # tests/_full_fs.py (on the path: tests/conftest.py)
from _sqlite_codes import coded  # tests/_sqlite_codes.py
from swarmvar.errors import LedgerUnwritable
from swarmvar.ledger.damage import DISK_FULL, IO_ERROR, full_disk

_OPEN_FULL = """
import json, os
from pathlib import Path
from _sqlite_codes import coded
from swarmvar.errors import LedgerUnwritable
from swarmvar.ledger import Ledger
from swarmvar.ledger.damage import DamageMemo, full_disk
folder = Path(sys.argv[1])
home = folder / "home"
with Ledger(home) as led:
    led.add_entries([("action", {"i": i}) for i in range(5)])
    before = [led.entry(i).hash.hex() for i in range(led.size)]
path = home / "ledger.sqlite"
filler = fill(folder)
out = {"free": os.statvfs(folder).f_bfree * os.statvfs(folder).f_frsize, "opened": []}
for create in (True, False):  # a writer's open, and one that may not create the file
    try:
        with Ledger(home, create=create, damage_memo=DamageMemo()):
            out["opened"].append(create)
    except LedgerUnwritable as exc:
        out.setdefault("errors", []).append(dict(
            cause=exc.cause, doing=exc.doing, path=exc.path, message=str(exc),
            name=getattr(exc, "sqlite_errorname", None)))
out["read_io_error"] = full_disk(coded(266, "disk I/O error"), path)
out["write_io_error"] = full_disk(coded(778, "disk I/O error"), path)  # IOERR_WRITE
out["shm_io_error"] = full_disk(coded(4874, "disk I/O error"), path)
filler.unlink()
with Ledger(home, damage_memo=DamageMemo()) as led:
    out["kept"] = [led.entry(i).hash.hex() for i in range(led.size)] == before
    led.add_entry("action", {"after": True})
    out["verified"] = led.verify_chain(processes=1).ok and led.size == len(before) + 1
print(json.dumps(out))
"""


def test_an_open_on_a_full_file_system_is_disk_full(tmp_path: Path) -> None:
    """A ledger written, then its file system filled: opening it (a writer's open, and
    one that may not create) is LedgerUnwritable "disk full" naming the file and the bytes
    free ("free space on its disk"), not "I/O error"; once the room is freed the entries
    are unchanged, an append passes and the chain verifies."""
    out = run_full(_OPEN_FULL, tmp_path / "full")
    path = str(tmp_path / "full" / "home" / "ledger.sqlite")
    assert out["free"] < 32 * 1024 and out["opened"] == [], out
    assert len(out["errors"]) == 2, out
    for err in out["errors"]:
        assert err["cause"] == DISK_FULL and err["doing"] == "open" and err["path"] == path
        said = err["message"]
        assert said.startswith(f"the ledger {path} cannot be opened: disk full ("), said
        assert "free space on its disk" in said and "check its disk" not in said, said
        assert err["name"].startswith(("SQLITE_IOERR", "SQLITE_FULL")), err
        if err["name"].startswith("SQLITE_IOERR"):  # SQLite said I/O error: the room told
            assert "disk I/O error; " in said and "bytes free on the file system" in said
    assert out["read_io_error"] is None and out["shm_io_error"] is not None, out
    assert out["write_io_error"] is None, out  # a failing disk's error, even on a full one
    assert out["kept"] is True and out["verified"] is True, out


def test_an_io_error_with_room_to_spare_stays_an_io_error(empty_sqlite_files: Path) -> None:
    """SQLITE_IOERR_SHMSIZE (or another I/O error) where the file system has room is
    "I/O error" (check the disk), as ever, a read's or an append's (a full file system's
    read error is one too: the test above)."""
    there = empty_sqlite_files
    for code in (4874, 10, 778, None):  # SHMSIZE, the primary code, IOERR_WRITE, no code
        exc = coded(code, "disk I/O error")
        assert full_disk(exc, there) is None
        for doing in ("", " to append"):
            err = sqlite_store._storage_error(exc, there, doing)
            assert isinstance(err, LedgerUnwritable) and err.cause == IO_ERROR, (code, err)
            assert err.detail == "disk I/O error" and "bytes free" not in str(err)
