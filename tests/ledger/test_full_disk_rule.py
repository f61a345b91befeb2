"""The full-disk reading of an I/O error (``swarmvar.ledger.damage.full_disk``, the variant
store's ``swarmvar.evolution.db._full_disk``) without a real full file system, so it runs as
any user: ``os.statvfs`` and ``os.geteuid`` are replaced, SQLite's errors made with their
codes (``tests/_sqlite_codes.py``). The real full file system (a tmpfs, root only) is
``tests/ledger/test_ledger_disk_open_full.py``; ``fill`` of ``tests/_full_fs.py`` is checked
here on a file system of large blocks.
"""

from __future__ import annotations

import errno
import os
from pathlib import Path
from typing import Any

import pytest

import swarmvar.evolution.db as db
import swarmvar.ledger.sqlite as sqlite_store
from _full_fs import fill  # tests/_full_fs.py (on the path: tests/conftest.py)
from _sqlite_codes import coded  # tests/_sqlite_codes.py
from swarmvar.errors import LedgerUnwritable
from swarmvar.evolution.errors import VariantStoreUnwritable
from swarmvar.ledger import damage
from swarmvar.ledger.damage import DISK_FULL, IO_ERROR


class _FakeFs:
    """What ``os.statvfs`` answers: ``f_frsize`` bytes per block, ``f_blocks`` of them,
    ``f_bfree`` free (root's reserve included), ``f_bavail`` free to other users."""

    def __init__(self, frsize: int, blocks: int, bfree: int, bavail: int) -> None:
        self.f_frsize = frsize
        self.f_bsize = frsize
        self.f_blocks = blocks
        self.f_bfree = bfree
        self.f_bavail = bavail


def test_fill_fills_a_file_system_of_64_kib_blocks(tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """A file system of 4 blocks of 64 KiB (a 64 KiB-page kernel's tmpfs) holds 64 writes
    of 4 KiB: ``fill`` writes until ENOSPC, not only ``f_blocks`` (4) + 16 times."""
    room = 4 * 64 * 1024
    written = {"bytes": 0, "calls": 0}

    def write(fd: int, data: Any) -> int:
        written["calls"] += 1
        if written["bytes"] + len(data) > room:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        written["bytes"] += len(data)
        return len(data)

    monkeypatch.setattr(os, "statvfs", lambda folder: _FakeFs(64 * 1024, 4, 4, 4))
    monkeypatch.setattr(os, "write", write)
    try:
        filler = fill(tmp_path)
    finally:
        monkeypatch.undo()  # os.write back at once (pytest's own output uses it)
    assert filler == tmp_path / "filler" and written["bytes"] == room, written
    assert written["calls"] == room // 4096 + 1, written


#: SQLITE_IOERR_SHMSIZE: the ``-shm`` could not grow (what an open on a full disk meets).
_SHMSIZE = 4874


@pytest.fixture
def there(tmp_path: Path) -> Path:
    """A database file with its ``-wal`` and ``-shm`` (so neither rule finds it gone)."""
    path = tmp_path / "there.sqlite"
    path.write_bytes(b"")
    for side in ("-wal", "-shm"):
        Path(f"{path}{side}").write_bytes(b"")
    return path


def _free(monkeypatch: pytest.MonkeyPatch, bfree: int, bavail: int, frsize: int = 4096) -> None:
    """``os.statvfs`` answers ``bfree`` blocks free (``bavail`` to other users than root)."""
    monkeypatch.setattr(os, "statvfs",
                        lambda folder: _FakeFs(frsize, 1_000_000, bfree, bavail))


def test_shmsize_on_a_nearly_full_file_system_is_disk_full(
        there: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """SQLITE_IOERR_SHMSIZE where 8 KiB are free: the ledger's error (a read's, an
    append's) and the variant store's are "disk full" with the bytes free, SQLite's
    message and code kept; the two rules' answers are the same."""
    _free(monkeypatch, 2, 2)
    exc = coded(_SHMSIZE, "disk I/O error")
    said = f"8192 bytes free on the file system of {there.parent}"
    assert damage.full_disk(exc, there) == db._full_disk(exc, there) == said
    for doing in ("", " to append"):
        err = sqlite_store._storage_error(exc, there, doing)
        assert isinstance(err, LedgerUnwritable) and err.cause == DISK_FULL, (doing, err)
        assert err.detail == f"disk I/O error; {said}" and err.sqlite_errorcode == _SHMSIZE
        assert "free space on its disk" in str(err) and "check its disk" not in str(err)
    store = db._store_error(str(there), exc, "damaged")
    assert isinstance(store, VariantStoreUnwritable) and store.cause == DISK_FULL, store
    assert store.detail == f"disk I/O error; {said}", store


def test_the_free_room_is_read_below_one_shm_region(
        there: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Under 32 KiB free (one ``-shm`` region) is full, 32 KiB is not: counted in bytes
    (blocks times ``f_frsize``)."""
    exc = coded(_SHMSIZE, "disk I/O error")
    for free, full in ((damage.FULL_BELOW - 1, True), (damage.FULL_BELOW, False)):
        _free(monkeypatch, free, free, frsize=1)
        for rule in (damage.full_disk, db._full_disk):
            assert (rule(exc, there) is not None) is full, (rule, free)
    _free(monkeypatch, 7, 7, frsize=4096)  # 28 KiB in blocks of 4 KiB
    assert damage.full_disk(exc, there) == db._full_disk(exc, there) == (
        f"28672 bytes free on the file system of {there.parent}")


@pytest.mark.parametrize(("uid", "full"), [(0, False), (1000, True)])
def test_root_counts_the_reserved_blocks_others_do_not(
        uid: int, full: bool, there: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """400 KiB free, of which 8 KiB to users other than root (the rest reserved for root):
    root (euid 0, which may write the reserve) has room, any other user's disk is full."""
    _free(monkeypatch, 100, 2)
    monkeypatch.setattr(os, "geteuid", lambda: uid)
    exc = coded(_SHMSIZE, "disk I/O error")
    for rule in (damage.full_disk, db._full_disk):
        said = rule(exc, there)
        assert (said is not None) is full, (rule, uid, said)
        if full:
            assert said == f"8192 bytes free on the file system of {there.parent}"
    err = sqlite_store._storage_error(exc, there)
    assert isinstance(err, LedgerUnwritable)
    assert err.cause == (DISK_FULL if full else IO_ERROR), (uid, err)


def test_no_statvfs_is_no_answer(there: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Where ``os`` has no ``statvfs`` (not POSIX) neither rule can ask the file system:
    no answer (an I/O error stays one), not an AttributeError."""
    monkeypatch.delattr(os, "statvfs")
    exc = coded(_SHMSIZE, "disk I/O error")
    assert damage.full_disk(exc, there) is None and db._full_disk(exc, there) is None
    err = sqlite_store._storage_error(exc, there, " to append")
    assert isinstance(err, LedgerUnwritable) and err.cause == IO_ERROR, err
    store = db._store_error(str(there), exc, "damaged")
    assert isinstance(store, VariantStoreUnwritable) and store.cause == IO_ERROR, store


def test_a_file_system_that_cannot_be_asked_is_no_answer(
        there: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """``os.statvfs`` failing (EACCES, say) is no answer either."""
    def refuse(folder: object) -> None:
        raise OSError(errno.EACCES, os.strerror(errno.EACCES))

    monkeypatch.setattr(os, "statvfs", refuse)
    exc = coded(_SHMSIZE, "disk I/O error")
    assert damage.full_disk(exc, there) is None and db._full_disk(exc, there) is None


#: SQLite's other I/O errors: IOERR_READ, _SHORT_READ, _WRITE, _FSYNC, _TRUNCATE, _ACCESS,
#: _SHMOPEN, _SHMMAP (a failing disk, not a full one: a write's ENOSPC is SQLITE_FULL).
_NOT_FULL = (266, 522, 778, 1034, 1546, 3338, 4618, 5386)


def test_only_the_codes_a_full_disk_gives_read_as_disk_full(
        there: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """On a file system with 8 KiB free, SQLITE_IOERR_SHMSIZE, a plain SQLITE_IOERR and an
    error without a code are "disk full"; a write's, an fsync's, a read's (and the other
    I/O errors) stay "I/O error" (check the disk), in the ledger and the variant store."""
    _free(monkeypatch, 2, 2)
    for code in (_SHMSIZE, 10, None, *_NOT_FULL):
        full = code in (_SHMSIZE, 10, None)
        exc = coded(code, "disk I/O error")
        for rule in (damage.full_disk, db._full_disk):
            assert (rule(exc, there) is not None) is full, (rule, code)
        cause = DISK_FULL if full else IO_ERROR
        err = sqlite_store._storage_error(exc, there, " to append")
        assert isinstance(err, LedgerUnwritable) and err.cause == cause, (code, err)
        store = db._store_error(str(there), exc, "damaged")
        assert isinstance(store, VariantStoreUnwritable) and store.cause == cause, (code, store)
