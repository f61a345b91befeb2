"""A ledger gone is named gone even at the descriptor limit (not "retry"). An append that
fails for another reason than damage (disk full, read-only, I/O error) is
``LedgerUnwritable``: tests/ledger/test_ledger_disk_errors.py."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from _fd_fill import PRELUDE  # tests/_fd_fill.py (on the path: tests/conftest.py)
from swarmvar.errors import LedgerUnavailable
from swarmvar.ledger import Ledger


@pytest.mark.parametrize("how", ["removed", "dangling link"])
def test_a_ledger_gone_is_named_gone_at_the_descriptor_limit(tmp_path: Path,
                                                             how: str) -> None:
    """No descriptor left in a subprocess (RLIMIT_NOFILE 64, all taken) and the ledger file
    removed, or a link to a folder that is gone, opened by the store (``Ledger.open`` says
    LedgerNotFound before): LedgerCorrupted naming "No such file", not LedgerUnavailable (a
    retry would never mend it)."""
    home = tmp_path / "home"
    Ledger.open(home).close()
    path = home / "ledger.sqlite"
    for made in (path, Path(f"{path}-wal"), Path(f"{path}-shm")):
        made.unlink(missing_ok=True)
    if how == "dangling link":
        path.symlink_to(tmp_path / "gone" / "ledger.sqlite")
    script = PRELUDE + f"""
from pathlib import Path
from swarmvar.errors import LedgerCorrupted, LedgerUnavailable
from swarmvar.ledger.sqlite import SQLiteStore
path = Path({str(path)!r})
def store():
    return SQLiteStore(path, "2026-01-01T00:00:00Z", create=False, timeout=1.0)
try:  # imports done while descriptors are free
    store()
except LedgerCorrupted:
    pass
held = fill(64)
try:
    store().close()
    said = "opened"
except Exception as exc:
    said = type(exc).__name__ + "|" + str(exc)
taken = len(held)
release(held)
print(taken, said.replace(chr(10), " "))
"""
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    held, said = done.stdout.strip().split(" ", 1)
    assert 0 < int(held) < 64, done.stdout  # the limit was reached
    assert said.startswith("LedgerCorrupted|"), said
    assert "No such file" in said, said
    assert LedgerUnavailable.__name__ not in said, said
