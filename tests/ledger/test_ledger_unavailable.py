"""A ledger that cannot be opened *now* (no file descriptor left, a lock past the timeout)
is ``LedgerUnavailable``, not ``LedgerCorrupted``: at once, not after retries, and a command
prints it as a usage error ("retry, or raise ... ulimit -n"), not "this is a bug".

Each EMFILE case runs in a subprocess at RLIMIT_NOFILE 64 with every descriptor taken
(bounded: at most 64 opens), so the test process keeps its own limit.
"""

from __future__ import annotations

import pickle
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from _fd_fill import PRELUDE  # tests/_fd_fill.py (on the path: tests/conftest.py)
from swarmvar.errors import LedgerCorrupted, LedgerUnavailable, SwarmVarError
from swarmvar.ledger import Ledger

_FILL = PRELUDE + """
import os, time
from pathlib import Path
LIMIT = 64
"""


def _run(script: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", _FILL + script], capture_output=True,
                          text=True, timeout=120, check=False)


def test_opening_at_the_descriptor_limit_is_unavailable_at_once(tmp_path: Path) -> None:
    home = tmp_path / "home"
    Ledger.open(home).close()
    done = _run(f"""
from swarmvar.errors import LedgerUnavailable, LedgerCorrupted
from swarmvar.ledger import Ledger
home = Path({str(home)!r})
Ledger.open(home).close()  # imports done while descriptors are free
for free in (0, 1, 2, 3):
    held = fill(LIMIT, free)
    t = time.perf_counter()
    try:
        Ledger.open(home).close()
        said = "opened"
    except Exception as exc:
        said = type(exc).__name__ + "|" + str(exc)
    took = time.perf_counter() - t
    release(held)
    print(free, round(took, 3), said.replace(chr(10), " "))
""")
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert len(lines) == 4, done.stdout
    for line in lines:
        free, took, said = line.split(" ", 2)
        assert said == "opened" or said.startswith("LedgerUnavailable|"), line
        assert "LedgerCorrupted" not in said and "not a usable" not in said, line
        assert float(took) < 0.5, line  # no second of retries at the limit
    first = lines[0].split(" ", 2)[2]
    assert first.startswith("LedgerUnavailable|"), first  # nothing free: never opens
    assert "no file descriptor left" in first and "ulimit -n" in first, first
    assert "unable to open database file" in first, first


def test_a_command_at_the_descriptor_limit_is_a_usage_error(tmp_path: Path) -> None:
    home = tmp_path / "home"
    Ledger.open(home).close()
    done = _run(f"""
import sys
import swarmvar.cli.ledger  # the command's module, imported while descriptors are free
from swarmvar.cli import main
from swarmvar.ledger import Ledger
Ledger.open(Path({str(home)!r})).close()
sys.argv = ["swarmvar", "ledger", "head", "--home", {str(home)!r}]
try:
    main()  # once with descriptors free: every module the command needs is imported
except SystemExit as exc:
    assert exc.code in (0, None), exc.code
held = fill(LIMIT)
main()
""")
    assert done.returncode == 2, (done.returncode, done.stdout, done.stderr)
    assert "this is a bug" not in done.stderr and "Traceback" not in done.stderr, done.stderr
    assert "no file descriptor left" in done.stderr and "ulimit -n" in done.stderr, done.stderr


def test_a_lock_past_the_timeout_is_unavailable(tmp_path: Path) -> None:
    home = tmp_path / "home"
    led = Ledger.open(home)
    holder = sqlite3.connect(led.store.path, isolation_level=None)  # type: ignore[attr-defined]
    holder.execute("BEGIN EXCLUSIVE")
    try:
        led.store._timeout = 0.05  # type: ignore[attr-defined]
        led.store._conn.execute("PRAGMA busy_timeout = 50")  # type: ignore[attr-defined]
        with pytest.raises(LedgerUnavailable) as got:
            led.store.append([])  # type: ignore[attr-defined]
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert isinstance(got.value, sqlite3.OperationalError)
    assert not isinstance(got.value, LedgerCorrupted)
    assert "locked" in str(got.value) and "retry" in str(got.value), got.value
    assert got.value.sqlite_errorcode & 0xFF == 5  # type: ignore[attr-defined]
    led.close()


def test_ledger_unavailable_pickles_with_its_code() -> None:
    err = LedgerUnavailable("the ledger x cannot be opened now (unable to open database file)")
    err.sqlite_errorcode = 14  # type: ignore[attr-defined]
    back = pickle.loads(pickle.dumps(err))
    assert type(back) is LedgerUnavailable and str(back) == str(err)
    assert back.sqlite_errorcode == 14
    assert isinstance(back, SwarmVarError) and isinstance(back, sqlite3.OperationalError)
