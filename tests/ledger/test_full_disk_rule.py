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

from _full_fs import fill  # tests/_full_fs.py (on the path: tests/conftest.py)


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
