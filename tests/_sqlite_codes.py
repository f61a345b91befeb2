"""SQLite errors as the stores meet them, for the tests of the one "outside" rule that the
ledger (``swarmvar.ledger.damage.outside``) and the variant store
(``swarmvar.evolution.db._outside``) share, one copy in ``swarmvar.storerules``: ``coded``
makes an error with SQLite's code,
``outside_cases`` the codes and messages with the cause each rule must name. A test module
imports it as ``from _sqlite_codes import coded, outside_cases`` (``tests/`` is on the path:
``tests/conftest.py``)."""

from __future__ import annotations

import sqlite3


def coded(code: int | None, text: str) -> sqlite3.OperationalError:
    """An ``OperationalError`` saying ``text``, with ``sqlite_errorcode`` ``code`` (none
    when None: an error raised without one)."""
    exc = sqlite3.OperationalError(text)
    if code is not None:
        exc.sqlite_errorcode = code  # type: ignore[attr-defined]
    return exc


def outside_cases(disk_full: str, read_only: str, io_error: str
                  ) -> list[tuple[int | None, str, str | None]]:
    """(code, message, the cause the rule names or None): by the primary code (extended
    codes too), else the message; damage, a lock and an unknown error are none."""
    return [(13, "x", disk_full), (8, "x", read_only), (1032, "x", read_only),
            (10, "x", io_error), (3338, "x", io_error), (11, "disk I/O error", None),
            (26, "x", None), (5, "x", None), (None, "database or disk is full", disk_full),
            (None, "attempt to write a readonly database", read_only),
            (None, "disk I/O error", io_error),
            (None, "database disk image is malformed", None)]
